"""A moved tokenized dataset is re-pointed in one command (multidatabackend.json paths, the audio link)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from heartcodec_lab.audio import save_audio
from heartcodec_lab.tokenize.relocate import RelocateError, relocate
from heartcodec_lab.tokenize.simpletuner import check_dataset, multidatabackend


def make_dataset(tmp_path):
    """A folder-input dataset laid out as heartcodec-tokenize writes it: out/audio -> music/."""
    import torch

    music, out = tmp_path / "music", tmp_path / "ds"
    save_audio(music / "a" / "song.wav", 0.1 * torch.randn(2, 4800), 48000)
    (out / "tokens" / "a").mkdir(parents=True)
    np.save(out / "tokens" / "a" / "song.wav.npy", np.random.default_rng(0).integers(0, 8192, (8, 9)).astype(np.int16))
    os.symlink(music, out / "audio", target_is_directory=True)
    row = {
        "file_name": "audio/a/song.wav",
        "audio_tokens_path": "tokens/a/song.wav.npy",
        "tags": "pop",
        "lyrics": "[Instrumental]",
        "sample_rate": 48000,
        "duration_s": 0.1,
        "channels": 2,
        "num_samples": 4800,
    }
    (out / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    (out / "multidatabackend.json").write_text(json.dumps(multidatabackend(out.resolve(), "my-id"), indent=2))
    check_dataset(out)
    return music, out


def test_moved_dataset_and_music_are_repointed(tmp_path):
    music, out = make_dataset(tmp_path)
    new_out, new_music = tmp_path / "elsewhere" / "ds2", tmp_path / "archive" / "music2"
    new_out.parent.mkdir()
    new_music.parent.mkdir()
    shutil.move(out, new_out)
    shutil.move(music, new_music)
    with pytest.raises(RelocateError, match="is broken: pass audio_root="):
        relocate(new_out)
    result = relocate(new_out, audio_root=new_music)
    assert result["links_changed"] == 1 and result["unresolved_audio"] == 0
    assert result["previous_dirs"] == [str(out.resolve())]
    (backend,) = json.loads((new_out / "multidatabackend.json").read_text())
    assert backend["id"] == "my-id"  # everything else kept
    assert backend["instance_data_dir"] == str(new_out.resolve())
    assert backend["parquet"]["path"] == str(new_out.resolve() / "metadata.jsonl")
    assert os.readlink(new_out / "audio") == str(new_music.resolve())
    assert [s["file_name"] for s in check_dataset(new_out)] == ["audio/a/song.wav"]


def test_manifest_links_and_the_command(tmp_path):
    music, out = make_dataset(tmp_path)
    # a manifest input: one link per file under audio/
    (out / "audio").unlink()
    (out / "audio" / "a").mkdir(parents=True)
    os.symlink(music / "a" / "song.wav", out / "audio" / "a" / "song.wav")
    new_music = tmp_path / "music_moved"
    shutil.move(music, new_music)
    cmd = [sys.executable, "-m", "heartcodec_lab.cli.tokenize_relocate", f"output={out}"]
    failed = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert failed.returncode == 2 and "song.wav" in failed.stderr and "audio_root=" in failed.stderr
    done = subprocess.run([*cmd, f"audio_root={new_music}"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 audio link(s) re-pointed; 0 audio file(s) unresolved" in done.stdout
    assert (out / "audio" / "a" / "song.wav").resolve() == (new_music / "a" / "song.wav").resolve()
    check_dataset(out)


def test_not_a_dataset(tmp_path):
    with pytest.raises(RelocateError, match="multidatabackend.json: not found"):
        relocate(tmp_path)
