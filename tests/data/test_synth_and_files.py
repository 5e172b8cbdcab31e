"""Synthetic music is deterministic music-like stereo; file discovery, sidecars and manifests."""

from __future__ import annotations

import json

import pytest
import torch

from heartcodec_lab.data.files import find_audio_files, items_from_folder, read_manifest, sidecar_text
from heartcodec_lab.data.synth import compose, synth_music, write_synth_folder


def test_synth_is_deterministic_and_seed_dependent():
    a = synth_music(2.0, seed=3)
    assert a.shape == (2, 96000) and a.dtype == torch.float32
    assert torch.equal(a, synth_music(2.0, seed=3))
    assert not torch.allclose(a, synth_music(2.0, seed=4))
    assert abs(float(a.abs().max()) - 0.8) < 1e-6


def test_synth_is_music_like():
    a = synth_music(4.0, seed=1)
    mono = a.mean(0)
    # Survives a mono downmix (chorus off) and has energy across several octaves.
    assert float(mono.pow(2).mean()) > 0.25 * float(a.pow(2).mean())
    spec = torch.stft(mono, 4096, window=torch.hann_window(4096), return_complex=True).abs().pow(2).mean(1)
    freqs = torch.fft.rfftfreq(4096, 1 / 48000)
    bands = [(40, 200), (200, 1000), (1000, 4000), (4000, 12000)]
    energy = [float(spec[(freqs >= lo) & (freqs < hi)].sum()) for lo, hi in bands]
    assert all(e > 1e-6 * sum(energy) for e in energy)
    notes, programs = compose(4.0, seed=1)
    assert len({n.channel for n in notes}) == 4 and len(programs) == 3


def test_write_synth_folder_and_discovery(tmp_path):
    paths = write_synth_folder(tmp_path / "music", n=2, seconds=1.0, seed=7)
    (tmp_path / "music" / "sub").mkdir()
    (tmp_path / "music" / "sub" / "b.WAV").write_bytes(paths[0].read_bytes())
    (tmp_path / "music" / ".hidden.wav").write_bytes(b"x")
    (tmp_path / "music" / "readme.md").write_text("x")
    found = find_audio_files(tmp_path / "music")
    assert [p.relative_to(tmp_path / "music").as_posix() for p in found] == [
        "song_000.flac",
        "song_001.flac",
        "sub/b.WAV",
    ]
    items = items_from_folder(tmp_path / "music")
    assert items[0].tags and "instrumental" in items[0].tags and items[0].lyrics is None
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        find_audio_files(tmp_path / "missing")


def test_sidecars(tmp_path):
    audio = tmp_path / "song.mp3"
    (tmp_path / "song.txt").write_text("  pop, piano \n")
    (tmp_path / "song.lyrics").write_text("   \n")
    assert sidecar_text(audio, ".txt") == "pop, piano"
    assert sidecar_text(audio, ".lyrics") is None


def test_manifests_jsonl_and_csv(tmp_path):
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"path": "a.wav", "tags": "rock", "lyrics": "[verse]\nla"})
        + "\n\n"
        + json.dumps({"path": "/abs/b.wav", "bpm": 120})
        + "\n"
    )
    items = read_manifest(tmp_path / "m.jsonl")
    assert items[0].path == tmp_path / "a.wav" and items[0].tags == "rock" and items[0].lyrics == "[verse]\nla"
    assert str(items[1].path) == "/abs/b.wav" and items[1].tags is None and items[1].extra == {"bpm": 120}
    (tmp_path / "m.csv").write_text("path,tags,lyrics\nc.flac,jazz,\n")
    (c,) = read_manifest(tmp_path / "m.csv")
    assert c.path == tmp_path / "c.flac" and c.tags == "jazz" and c.lyrics is None
    (tmp_path / "bad.jsonl").write_text('{"path": "a.wav"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not valid JSON"):
        read_manifest(tmp_path / "bad.jsonl")
    (tmp_path / "nopath.jsonl").write_text('{"tags": "x"}\n')
    with pytest.raises(ValueError, match="row 1 has no 'path'"):
        read_manifest(tmp_path / "nopath.jsonl")
