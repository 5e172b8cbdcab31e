"""Spectral losses for training the miniature codec: multi-resolution log-mel L1 and log-STFT L1.

Inputs ``[B, C, S]`` float audio; outputs scalar tensors. Log magnitudes reward time-varying,
quiet structure (notes, onsets) that a linear-magnitude loss ignores while the model sits on
the average spectrum.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn


class MultiMelLoss(nn.Module):
    """Mean over resolutions of |log(mel_est + eps) - log(mel_ref + eps)| (magnitude mels)."""

    def __init__(self, sample_rate: int = 48000, windows=(512, 1024, 2048), n_mels=(40, 80, 128), eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=w, hop_length=w // 4, n_mels=m, power=1.0, center=True
            )
            for w, m in zip(windows, n_mels)
        )

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        est, ref = est.flatten(0, 1), ref.flatten(0, 1)
        total = est.new_zeros(())
        for mel in self.mels:
            total = total + (torch.log(mel(est) + self.eps) - torch.log(mel(ref) + self.eps)).abs().mean()
        return total / len(self.mels)


def _magnitudes(est: torch.Tensor, ref: torch.Tensor, window: torch.Tensor, max_bin: int | None = None):
    """|STFT| of ``[N, S]`` estimate and reference with a hop of a quarter window, up to ``max_bin``."""
    n = window.numel()
    e = torch.stft(est, n, n // 4, window=window, return_complex=True).abs()[:, :max_bin]
    r = torch.stft(ref, n, n // 4, window=window, return_complex=True).abs()[:, :max_bin]
    return e, r


class MultiSTFTLoss(nn.Module):
    """Log-magnitude L1 + ``w_sc`` x spectral convergence over several STFT sizes.

    Spectral convergence (|R - E|_F / |R|_F) is dominated by the loudest bins, the harmonics
    that carry the notes, where log losses are dominated by the many quiet bins.
    """

    def __init__(self, fft_sizes=(256, 1024, 4096), eps: float = 1e-5, w_sc: float = 1.0,
                 max_hz: float | None = None, sample_rate: int = 48000):
        super().__init__()
        self.fft_sizes, self.eps, self.w_sc = tuple(fft_sizes), eps, w_sc
        # bins kept per size: all, or those up to max_hz
        self.bins = {n: None if max_hz is None else int(max_hz / sample_rate * n) + 1 for n in self.fft_sizes}
        for n in self.fft_sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        est, ref = est.flatten(0, 1), ref.flatten(0, 1)
        total = est.new_zeros(())
        for n in self.fft_sizes:
            e, r = _magnitudes(est, ref, getattr(self, f"window_{n}"), self.bins[n])
            total = total + (torch.log(e + self.eps) - torch.log(r + self.eps)).abs().mean()
            if self.w_sc:
                total = total + self.w_sc * torch.linalg.norm(r - e) / (torch.linalg.norm(r) + self.eps)
        return total / len(self.fft_sizes)


class PitchLoss(MultiSTFTLoss):
    """Log-magnitude L1 of long STFTs (4096 and 8192 points) below ``max_hz``, where harmonics are resolved.

    Mel bands are wider than a semitone below ~1 kHz, so the mel loss cannot tell neighbouring
    notes apart; these windows (5.9 and 11.7 Hz bins at 48 kHz) can.
    """

    def __init__(self, sample_rate: int = 48000, fft_sizes=(4096, 8192), max_hz: float = 4000.0, eps: float = 1e-4):
        super().__init__(fft_sizes, eps=eps, w_sc=0.0, max_hz=max_hz, sample_rate=sample_rate)
