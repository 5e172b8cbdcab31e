"""Audio datasets for training the projection: random crops, fixed validation clips.

Every item is a dict ``{"audio": float32 [2, S], "index": int}`` at 48 kHz stereo, with
``S = crop_samples`` (a multiple of 3840 samples, one 12.5 Hz token frame, so the 25 Hz
latents pair up exactly). Files shorter than a crop are zero-padded at the end.

Randomness never comes from a global RNG: training crop ``i`` is drawn from a generator
seeded with ``(seed, i)``, so a run resumed from a checkpoint sees exactly the crops the
uninterrupted run would have seen (the sampler in :mod:`heartcodec_lab.training.datamodule`
hands out global sample indices).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from heartcodec_lab.audio import AudioError, audio_info, load_audio, resample, to_mono, to_stereo
from heartcodec_lab.audio.rates import FRAME_SAMPLES, SAMPLE_RATE

CHANNEL_POLICIES = ("stereo", "mono")


def crop_samples_for(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Crop length in samples, rounded down to whole token frames (at least one)."""
    frame = FRAME_SAMPLES * sample_rate // SAMPLE_RATE
    return max(1, int(seconds * sample_rate) // frame) * frame


def _as_two_channels(audio: torch.Tensor, channels: str, path: Path) -> torch.Tensor:
    """``[C, S]`` -> ``[2, S]``; "mono" downmixes first, so both channels carry the same signal."""
    if channels == "mono":
        audio = to_mono(audio)
    return to_stereo(audio, source=str(path))


def read_segment(
    path: Path, start_s: float, num_samples: int, sample_rate: int = SAMPLE_RATE, channels: str = "stereo"
) -> torch.Tensor:
    """``num_samples`` of ``path`` from ``start_s`` seconds on, as float32 ``[2, num_samples]`` at ``sample_rate``.

    Reads only the segment when libsndfile can seek in the file; otherwise decodes the whole file
    through :func:`heartcodec_lab.audio.load_audio`. Zero-padded past the end of the file.
    """
    if channels not in CHANNEL_POLICIES:
        raise ValueError(f"channels must be one of {CHANNEL_POLICIES}, got {channels!r}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        info = None
    if info is not None and info.frames > 0:
        native_sr = int(info.samplerate)
        start = int(round(start_s * native_sr))
        # a few extra native samples so resampling has context at the segment's end
        length = math.ceil(num_samples * native_sr / sample_rate) + 64
        try:
            data, _ = sf.read(str(path), start=start, frames=length, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(path, f"unreadable audio ({err})") from err
        if data.shape[0] == 0:
            raise AudioError(path, f"no audio at {start_s:.2f} s (file has {info.frames / native_sr:.2f} s)")
        audio = torch.from_numpy(np.ascontiguousarray(data.T))
        if not torch.isfinite(audio).all():
            raise AudioError(path, "contains non-finite samples (NaN/Inf)")
        audio = resample(_as_two_channels(audio, channels, path), native_sr, sample_rate)
    else:
        full, _ = load_audio(path, sample_rate=sample_rate, channels="keep")
        audio = _as_two_channels(full, channels, path)
        start = int(round(start_s * sample_rate))
        audio = audio[:, start:]
    audio = audio[:, :num_samples]
    if audio.shape[-1] < num_samples:
        audio = torch.nn.functional.pad(audio, (0, num_samples - audio.shape[-1]))
    return audio.float().contiguous()


def file_seconds(path: Path) -> float:
    """Duration of ``path`` in seconds (header only)."""
    sr, _, frames = audio_info(path)
    if frames <= 0:
        raise AudioError(path, "contains no samples")
    return frames / sr


class RandomCropDataset(Dataset):
    """Random crops of random files; item ``i`` is a pure function of ``(seed, i)``.

    ``len()`` is ``samples_per_epoch`` (an epoch is a fixed number of crops, not a pass over the
    files), but any non-negative index is valid: the sampler hands out global sample numbers.
    """

    def __init__(
        self,
        files: list[Path],
        crop_seconds: float,
        samples_per_epoch: int,
        seed: int = 0,
        sample_rate: int = SAMPLE_RATE,
        channels: str = "stereo",
    ):
        if not files:
            raise ValueError("RandomCropDataset needs at least one audio file")
        if samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {samples_per_epoch}")
        self.files = [Path(f) for f in files]
        self.crop_samples = crop_samples_for(crop_seconds, sample_rate)
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.sample_rate = sample_rate
        self.channels = channels
        self._durations: dict[int, float] = {}

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _duration(self, k: int) -> float:
        if k not in self._durations:
            self._durations[k] = file_seconds(self.files[k])
        return self._durations[k]

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, int(index)])
        k = int(rng.integers(len(self.files)))
        crop_s = self.crop_samples / self.sample_rate
        slack = max(0.0, self._duration(k) - crop_s)
        start_s = float(rng.uniform(0.0, slack)) if slack > 0 else 0.0
        audio = read_segment(self.files[k], start_s, self.crop_samples, self.sample_rate, self.channels)
        return {"audio": audio, "index": int(index)}


class FixedClipDataset(Dataset):
    """Held-out clips that never change: clip ``j`` is file ``j``'s crop starting ``offset_seconds`` in.

    Files shorter than ``offset + clip`` are cropped from the start (and zero-padded if needed).
    """

    def __init__(
        self,
        files: list[Path],
        clip_seconds: float,
        num_clips: int,
        offset_seconds: float = 0.0,
        sample_rate: int = SAMPLE_RATE,
        channels: str = "stereo",
    ):
        if not files:
            raise ValueError("FixedClipDataset needs at least one audio file")
        self.files = [Path(f) for f in files[:num_clips]]
        self.clip_samples = crop_samples_for(clip_seconds, sample_rate)
        self.offset_seconds = offset_seconds
        self.sample_rate = sample_rate
        self.channels = channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        clip_s = self.clip_samples / self.sample_rate
        start_s = self.offset_seconds if file_seconds(path) >= self.offset_seconds + clip_s else 0.0
        audio = read_segment(path, start_s, self.clip_samples, self.sample_rate, self.channels)
        return {"audio": audio, "index": int(index)}


def synth_folder(cache_dir: str | Path, split: str, num_files: int, seconds: float, seed: int) -> Path:
    """Synthetic music for the embedded demo, written once under ``cache_dir`` and reused.

    Returns ``<cache_dir>/synth_music/<split>-n<num>-<seconds>s-seed<seed>/``. A ``.complete``
    marker is written last, so an interrupted synthesis is redone rather than half-used.
    """
    from heartcodec_lab.data.synth import write_synth_folder

    folder = Path(cache_dir).expanduser() / "synth_music" / f"{split}-n{num_files}-{seconds:g}s-seed{seed}"
    marker = folder / ".complete"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_synth_folder(folder, num_files, seconds, seed)
        marker.write_text("ok\n")
    return folder
