"""Resampling with torchaudio (the same call the released encoder uses)."""

from __future__ import annotations

import torch
import torchaudio.functional as AF


def resample(audio: torch.Tensor, sample_rate: int, target_rate: int) -> torch.Tensor:
    """``[..., S]`` at ``sample_rate`` -> ``[..., S']`` at ``target_rate`` (no-op when equal).

    Uses ``torchaudio.functional.resample`` with its default (windowed sinc) settings so the
    official encoder's resampling is reproduced exactly.
    """
    if sample_rate == target_rate:
        return audio
    if sample_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {sample_rate} -> {target_rate}")
    return AF.resample(audio, int(sample_rate), int(target_rate))
