"""Spectral losses for training the miniature codec: multi-resolution log-mel L1 and log-STFT L1.

Inputs ``[B, C, S]`` float audio; outputs scalar tensors. Log magnitudes reward time-varying,
quiet structure (notes, onsets) that a linear-magnitude loss ignores while the model sits on
the average spectrum.
"""

from __future__ import annotations

import math

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

    def __init__(
        self,
        fft_sizes=(256, 1024, 4096),
        eps: float = 1e-5,
        w_sc: float = 1.0,
        max_hz: float | None = None,
        sample_rate: int = 48000,
    ):
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


class LatentPitchReadout(nn.Module):
    """A throw-away linear readout from the 25 Hz latents to a semitone log-spectrum of the input.

    Without it the encoder and decoder are caught in a loop: the decoder cannot learn to make notes
    while the latents say nothing about pitch, and the encoder gets no pitch gradient from a decoder
    that ignores it (a trained model turned steady sines into 125 Hz frame-rate buzz). Asking a linear
    map to read the pitch content off the latents makes the encoder put it there.

    Target: log(|STFT| + 0.01) of a causal 8192-point window ending at each latent frame's last sample,
    pooled into ``n_bands`` semitone bands (triangles one semitone wide, linear interpolation where a
    band falls between two bins) from MIDI ``low_midi`` up. ``latents [B, 128, T]``, ``audio [B, 1, T*hop]``.
    """

    def __init__(
        self,
        latent_dim: int = 128,
        hop: int = 1920,
        sample_rate: int = 48000,
        n_fft: int = 8192,
        low_midi: int = 36,
        n_bands: int = 72,
    ):
        super().__init__()
        self.hop, self.n_fft = hop, n_fft
        self.readout = nn.Conv1d(latent_dim, n_bands, 1)
        freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
        centres = 440.0 * 2 ** ((torch.arange(n_bands, dtype=torch.float64) + low_midi - 69) / 12)
        semis = 12 * torch.log2(freqs.clamp_min(1e-6)[None, :] / centres[:, None])  # [bands, bins]
        weights = (1 - semis.abs()).clamp_min(0)
        for j, c in enumerate(centres.tolist()):
            if weights[j].sum() == 0:  # no bin within a semitone: interpolate the two neighbours
                k = int(c * n_fft / sample_rate)
                frac = c * n_fft / sample_rate - k
                weights[j, k], weights[j, k + 1] = 1 - frac, frac
        self.register_buffer("bands", (weights / weights.sum(1, keepdim=True)).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @torch.no_grad()
    def target(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S]`` -> ``[B, n_bands, S // hop]`` log semitone magnitudes (causal frames)."""
        x = nn.functional.pad(audio.flatten(0, 1), (self.n_fft - self.hop, 0))
        mag = torch.stft(x, self.n_fft, self.hop, window=self.window, center=False, return_complex=True).abs()
        return torch.log(torch.einsum("jk,bkt->bjt", self.bands, mag) + 0.01)

    def forward(self, latents: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        target = self.target(audio)
        pred = self.readout(latents)
        t = min(pred.shape[-1], target.shape[-1])
        return (pred[..., :t] - target[..., :t]).abs().mean()


class ComplexSTFTLoss(MultiSTFTLoss):
    """Relative L1 of complex STFTs below ``max_hz``: ``sum |E - R| / sum |R|``, mean over sizes.

    The magnitude losses above cannot see phase, and a decoder fed latents that do not move over a
    steady note can only emit a signal periodic in the 1920-sample frame: lines on a 25 Hz grid, too
    coarse for any note below ~400 Hz (the trained miniature's tones all came out as that comb). This
    term rewards matching the waveform itself in the band of the fundamentals, which needs latents
    that follow the note's phase from frame to frame: 0 for a perfect match, ~1.4 for an
    uncorrelated signal of equal energy, 1 for silence.
    """

    def __init__(self, fft_sizes=(1024, 2048), max_hz: float = 1500.0, sample_rate: int = 48000, eps: float = 1e-6):
        super().__init__(fft_sizes, eps=eps, w_sc=0.0, max_hz=max_hz, sample_rate=sample_rate)

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        est, ref = est.flatten(0, 1), ref.flatten(0, 1)
        total = est.new_zeros(())
        for n in self.fft_sizes:
            window, k = getattr(self, f"window_{n}"), self.bins[n]
            e = torch.stft(est, n, n // 4, window=window, return_complex=True)[:, :k]
            r = torch.stft(ref, n, n // 4, window=window, return_complex=True)[:, :k]
            total = total + (e - r).abs().sum() / (r.abs().sum() + self.eps)
        return total / len(self.fft_sizes)


def frame_spectrum(audio: torch.Tensor, hop: int = 1920, n_bins: int = 40) -> torch.Tensor:
    """``[B, 1, S]`` -> complex ``[B, S // hop, n_bins]``: rfft of each Hann-windowed ``hop``-sample frame,
    bins ``1..n_bins`` (25 Hz apart at 48 kHz / 1920: 25-1000 Hz by default)."""
    b, t = audio.shape[0], audio.shape[-1] // hop
    frames = audio[:, 0, : t * hop].reshape(b, t, hop) * torch.hann_window(hop, device=audio.device)
    return torch.fft.rfft(frames, dim=-1)[..., 1 : n_bins + 1]


class LatentPhaseReadout(nn.Module):
    """A throw-away linear readout from each latent frame to the complex spectrum of its own 1920 samples.

    The pitch readout's counterpart for phase: a ridge readout from the trained miniature's latents
    predicts the low band's log magnitudes (held-out R^2 0.27) but nothing of its complex values
    (R^2 < 0), so a decoder cannot place a note's oscillation in the frame however it is trained.
    Target: :func:`frame_spectrum`, real and imaginary parts; loss: L1 relative to the target's mean
    magnitude. ``latents [B, 128, T]``, ``audio [B, 1, T*hop]``.
    """

    def __init__(self, latent_dim: int = 128, hop: int = 1920, n_bins: int = 40):
        super().__init__()
        self.hop, self.n_bins = hop, n_bins
        self.readout = nn.Conv1d(latent_dim, 2 * n_bins, 1)

    @torch.no_grad()
    def target(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S]`` -> ``[B, 2 * n_bins, S // hop]`` (real parts, then imaginary parts)."""
        spec = frame_spectrum(audio, self.hop, self.n_bins)
        return torch.cat([spec.real, spec.imag], dim=-1).transpose(1, 2)

    def forward(self, latents: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        target = self.target(audio)
        pred = self.readout(latents)[..., : target.shape[-1]]
        return (pred - target).abs().mean() / (target.abs().mean() + 1e-8)


class LatentPhaseCode(nn.Module):
    """The readout above with the map fixed: the first ``2 * n_bins`` latents must *be* the frame's spectrum.

    A trained readout cannot start the code (with no phase in the latents it learns to predict zero and
    passes no gradient back); a fixed one sends the encoder the full gradient from step 0. Each real or
    imaginary part of :func:`frame_spectrum` is compressed, ``sign(x) log(1 + |x|) / log(1 + 100)``
    clipped to +-0.95, so that typical values span the ninths (median 0.12, 99th percentile 0.8 on the
    training bank).
    """

    def __init__(self, hop: int = 1920, n_bins: int = 40):
        super().__init__()
        self.hop, self.n_bins = hop, n_bins

    @torch.no_grad()
    def target(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S]`` -> uncompressed ``[B, 2 * n_bins, S // hop]`` (real parts, then imaginary parts)."""
        spec = frame_spectrum(audio, self.hop, self.n_bins)
        return torch.cat([spec.real, spec.imag], dim=-1).transpose(1, 2)

    def code(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S]`` -> the latents' target ``[B, 2 * n_bins, S // hop]`` in (-1, 1)."""
        x = self.target(audio)
        return (torch.sign(x) * torch.log1p(x.abs()) / math.log1p(100.0)).clamp(-0.95, 0.95)

    def forward(self, latents: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        code = self.code(audio)
        return (latents[:, : code.shape[1], : code.shape[-1]] - code).abs().mean()
