"""Channel policy: HeartCodec is stereo; mono is duplicated, more than two channels are downmixed."""

from __future__ import annotations

import warnings

import torch


def to_stereo(audio: torch.Tensor, source: str = "audio") -> torch.Tensor:
    """``[C, S]`` -> ``[2, S]``: mono duplicated, stereo kept, >2 channels downmixed (with a warning)."""
    if audio.dim() != 2:
        raise ValueError(f"{source}: expected audio shaped [channels, samples], got {tuple(audio.shape)}")
    channels = audio.shape[0]
    if channels == 2:
        return audio
    if channels == 1:
        return audio.expand(2, -1).clone()
    if channels == 0:
        raise ValueError(f"{source}: audio has no channels")
    warnings.warn(f"{source}: {channels} channels downmixed to stereo", stacklevel=2)
    return downmix_to_stereo(audio)


def downmix_to_stereo(audio: torch.Tensor) -> torch.Tensor:
    """``[C>2, S]`` -> ``[2, S]``.

    Six channels are taken as 5.1 in WAV order (L, R, C, LFE, Ls, Rs) and folded with the
    ITU-R BS.775 coefficients (LFE dropped). Other layouts have no agreed order, so channels
    alternate left/right. Both are normalised so a full-scale input cannot clip.
    """
    if audio.shape[0] == 6:
        g = 0.7071067811865476
        left = audio[0] + g * audio[2] + g * audio[4]
        right = audio[1] + g * audio[2] + g * audio[5]
        return torch.stack([left, right]) / (1.0 + 2.0 * g)
    left = audio[0::2].mean(dim=0)
    right = audio[1::2].mean(dim=0)
    return torch.stack([left, right])


def to_mono(audio: torch.Tensor) -> torch.Tensor:
    """``[C, S]`` -> ``[1, S]`` by averaging channels."""
    return audio.mean(dim=0, keepdim=True)
