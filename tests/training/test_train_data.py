"""Training data: resumable rank-aware sampling, deterministic crops, resampling, channel policy, folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from heartcodec_lab.data.datasets import (
    FixedClipDataset,
    RandomCropDataset,
    crop_samples_for,
    read_segment,
    synth_folder,
)
from heartcodec_lab.training.datamodule import AudioDataModule, ResumableSampler


def _write(path, audio: np.ndarray, sr: int):
    """audio [C, S] -> file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio.T, sr)
    return path


def _tone(seconds: float, sr: int, freq: float, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rows = [0.3 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    return np.stack(rows).astype(np.float32)


def test_sampler_numbers_samples_globally_across_ranks_and_resume():
    def ranks(start, world=2):
        return [list(ResumableSampler(3, 2, lambda: start, lambda r=r: r, lambda: world)) for r in range(world)]

    r0, r1 = ranks(0)
    assert r0 == [0, 1, 4, 5, 8, 9] and r1 == [2, 3, 6, 7, 10, 11]
    # resuming after one batch continues where the uninterrupted run would be
    assert ranks(1) == [r0[2:], r1[2:]]
    # the next epoch starts at batch 3 and runs to batch 6
    assert ranks(3)[0] == [12, 13, 16, 17, 20, 21]
    # one process with the same global batch covers the same samples
    single = list(ResumableSampler(3, 4, lambda: 0))
    assert sorted(r0 + r1) == single


def test_random_crops_are_deterministic_in_seed_and_index(tmp_path):
    files = [_write(tmp_path / f"f{i}.wav", _tone(3.0, 48000, 200 + 50 * i), 48000) for i in range(3)]
    ds = RandomCropDataset(files, crop_seconds=0.5, samples_per_epoch=10, seed=3)
    assert ds.crop_samples == 3840 * 6 == crop_samples_for(0.5)
    a, b = ds[7]["audio"], ds[7]["audio"]
    assert a.shape == (2, ds.crop_samples) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(ds[7]["audio"], ds[8]["audio"])
    other_seed = RandomCropDataset(files, crop_seconds=0.5, samples_per_epoch=10, seed=4)
    assert not torch.equal(ds[7]["audio"], other_seed[7]["audio"])
    assert ds[123]["audio"].shape == a.shape  # any global index is valid


def test_segments_are_resampled_to_48k_and_made_stereo(tmp_path):
    mono = _write(tmp_path / "mono44k.wav", _tone(2.0, 44100, 440, channels=1), 44100)
    seg = read_segment(mono, 0.5, 9600)
    assert seg.shape == (2, 9600) and torch.equal(seg[0], seg[1])
    # the same samples as decoding and resampling the whole file (away from the edges)
    from heartcodec_lab.audio import load_audio

    full, sr = load_audio(mono, sample_rate=48000)
    assert sr == 48000
    ref = full[:, 24000:33600]
    assert torch.allclose(seg[:, 200:-200], ref[:, 200:-200], atol=2e-3)


def test_mono_policy_downmixes_and_short_files_are_padded(tmp_path):
    stereo = _write(tmp_path / "st.wav", _tone(0.1, 48000, 300), 48000)
    seg = read_segment(stereo, 0.0, 9600, channels="mono")
    assert torch.equal(seg[0], seg[1])
    raw = torch.from_numpy(sf.read(str(stereo), dtype="float32", always_2d=True)[0].T)
    assert torch.allclose(seg[0, :4800], raw.mean(0), atol=1e-6)
    assert seg[:, 4800:].abs().max() == 0  # padded past the end
    with pytest.raises(ValueError, match="channels"):
        read_segment(stereo, 0.0, 100, channels="surround")


def test_fixed_clips_do_not_change(tmp_path):
    files = [_write(tmp_path / f"v{i}.wav", _tone(4.0, 48000, 500 + i), 48000) for i in range(3)]
    ds = FixedClipDataset(files, clip_seconds=1.0, num_clips=2, offset_seconds=2.0)
    assert len(ds) == 2
    x = ds[1]["audio"]
    assert torch.equal(x, ds[1]["audio"])
    expected = torch.from_numpy(_tone(4.0, 48000, 501))[:, 96000 : 96000 + x.shape[-1]]
    assert torch.allclose(x, expected, atol=1e-4)


def test_datamodule_folder_manifest_and_holdout(tmp_path):
    root = tmp_path / "songs"
    files = [_write(root / f"a/s{i}.flac", _tone(1.5, 48000, 220 + 10 * i), 48000) for i in range(5)]
    dm = AudioDataModule(
        train_dir=str(root), crop_seconds=0.32, val_seconds=0.32, num_val_clips=2, batch_size=2, samples_per_epoch=6
    )
    dm.setup("fit")
    assert [p.name for p in dm.val_set.files] == ["s3.flac", "s4.flac"]
    assert len(dm.train_set.files) == 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape == (2, 2, crop_samples_for(0.32)) and batch["index"].tolist() == [0, 1]
    assert len(dm.train_dataloader()) == 3

    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"path": str(f)}) + "\n" for f in files[:2]))
    dm2 = AudioDataModule(train_manifest=str(manifest), val_dir=str(root / "a"), num_val_clips=1)
    dm2.setup("fit")
    assert dm2.train_set.files == files[:2] and len(dm2.val_set) == 1

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        AudioDataModule(train_dir=str(tmp_path / "empty")).setup("fit")
    with pytest.raises(ValueError, match="not both"):
        AudioDataModule(train_dir=str(root), train_manifest=str(manifest)).setup("fit")


def test_synthetic_data_is_written_once(tmp_path):
    folder = synth_folder(tmp_path, "train", num_files=2, seconds=1.0, seed=5)
    assert (folder / ".complete").exists()
    songs = sorted(folder.glob("*.flac"))
    assert len(songs) == 2
    stamp = songs[0].stat().st_mtime_ns
    assert synth_folder(tmp_path, "train", num_files=2, seconds=1.0, seed=5) == folder
    assert songs[0].stat().st_mtime_ns == stamp
