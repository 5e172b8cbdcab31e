"""Losses on audio: multi-resolution STFT, log-mel, and the 4-8 kHz band.

The multi-resolution STFT loss is auraloss'. The other two stay project code because no library
computes them: auraloss's mel-STFT loss uses Slaney filters and clamps the power before the
filterbank (a different loss from this HTK log-mel L1 with a floor after the filterbank, which
the recorded recipes were trained with), and a band-limited STFT magnitude L1 exists nowhere.
"""

from __future__ import annotations

import auraloss
import torch
import torchaudio

from heartcodec_lab.audio.rates import SAMPLE_RATE

from .base import BatchLoss, same_shape


def _audio_pair(loss: BatchLoss, batch) -> tuple[torch.Tensor, torch.Tensor]:
    recon, audio = batch["recon"], batch["audio"]
    same_shape(loss.name, recon, audio, "(recon vs audio)")
    if recon.dim() != 3:
        raise ValueError(f"loss {loss.name!r}: expected audio [B, C, S], got {tuple(recon.shape)}")
    return recon.float(), audio.float()


class MultiScaleSTFTLoss(BatchLoss):
    """Spectral convergence + log-magnitude L1 (+ optional phase MSE) averaged over STFT sizes.

    auraloss ``MultiResolutionSTFTLoss``; windows = FFT sizes, hops = 1/4 of them.
    """

    name = "stft"
    requires = ("recon", "audio")

    def __init__(
        self,
        weight: float = 1.0,
        fft_sizes=(256, 512, 1024, 2048, 4096),
        hop_divisor: int = 4,
        w_sc: float = 1.0,
        w_log_mag: float = 1.0,
        w_phase: float = 0.0,
        name: str | None = None,
    ):
        super().__init__(weight, name)
        fft_sizes = [int(n) for n in fft_sizes]
        self.stft = auraloss.freq.MultiResolutionSTFTLoss(
            fft_sizes=fft_sizes,
            hop_sizes=[n // hop_divisor for n in fft_sizes],
            win_lengths=fft_sizes,
            w_sc=w_sc,
            w_log_mag=w_log_mag,
            w_lin_mag=0.0,
            w_phs=w_phase,
        )

    def compute(self, batch):
        recon, audio = _audio_pair(self, batch)
        return self.stft(recon, audio)


class MelLoss(BatchLoss):
    """L1 between log mel spectrograms (80 bands, 48 kHz, n_fft 2048, hop 480, magnitude, log clamp 1e-5)."""

    name = "mel"
    requires = ("recon", "audio")

    def __init__(
        self,
        weight: float = 1.0,
        n_mels: int = 80,
        n_fft: int = 2048,
        hop_length: int = 480,
        sample_rate: int = SAMPLE_RATE,
        f_min: float = 0.0,
        f_max: float | None = None,
        log_clamp: float = 1e-5,
        name: str | None = None,
    ):
        super().__init__(weight, name)
        self.log_clamp = log_clamp
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            power=1.0,
        )

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, S]`` -> ``[B, C, n_mels, frames]``."""
        return self.mel(x).clamp(min=self.log_clamp).log()

    def compute(self, batch):
        recon, audio = _audio_pair(self, batch)
        return torch.nn.functional.l1_loss(self.log_mel(recon), self.log_mel(audio))


class HighFrequencyLoss(BatchLoss):
    """STFT magnitude L1 over the bins in ``band_hz`` (default 4-8 kHz), where codecs tend to smear.

    Linear magnitudes by default (``log_magnitude=True`` compares log magnitudes instead).
    """

    name = "high_freq"
    requires = ("recon", "audio")

    def __init__(
        self,
        weight: float = 1.0,
        band_hz=(4000.0, 8000.0),
        n_fft: int = 2048,
        hop_length: int = 512,
        sample_rate: int = SAMPLE_RATE,
        log_magnitude: bool = False,
        name: str | None = None,
    ):
        super().__init__(weight, name)
        lo, hi = float(band_hz[0]), float(band_hz[1])
        if not 0 <= lo < hi <= sample_rate / 2:
            raise ValueError(f"band_hz must satisfy 0 <= low < high <= {sample_rate / 2}, got {band_hz}")
        freqs = torch.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
        bins = torch.nonzero((freqs >= lo) & (freqs <= hi)).flatten()
        self.n_fft, self.hop_length, self.log_magnitude = n_fft, hop_length, log_magnitude
        self.band = (int(bins[0]), int(bins[-1]) + 1)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def band_magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, S]`` -> ``[B * C, band bins, frames]`` STFT magnitudes in the band."""
        spec = torch.stft(
            x.reshape(-1, x.shape[-1]), self.n_fft, self.hop_length, window=self.window, return_complex=True
        )
        mag = spec[:, self.band[0] : self.band[1]].abs()
        return mag.clamp(min=1e-7).log() if self.log_magnitude else mag

    def compute(self, batch):
        recon, audio = _audio_pair(self, batch)
        return torch.nn.functional.l1_loss(self.band_magnitude(recon), self.band_magnitude(audio))
