"""Known answers for the latent readout probe: latents that hold the spectrum, or only its magnitudes."""

from __future__ import annotations

import math

import torch

from heartcodec_lab.minicodec.latent_probe import HOP, latent_readout_r2


class _FrameSpectrumEncoder:
    """Latents = the frame's own spectrum, 25-1000 Hz: complex parts, or log magnitudes only."""

    def __init__(self, phase: bool):
        self.phase = phase

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        frames = x[0, 0].reshape(-1, HOP) * torch.hann_window(HOP)
        spec = torch.fft.rfft(frames, dim=-1)[:, 1:41]
        parts = torch.cat([spec.real, spec.imag], 1) if self.phase else torch.log(spec.abs() + 1e-3)
        return torch.cat([parts, torch.zeros(len(frames), 128 - parts.shape[1])], 1).T[None]


def _pieces(seed: int, n: int = 6, seconds: float = 4.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 48000)) / 48000
    out = []
    for _ in range(n):
        freqs = 40 + 900 * torch.rand(6, generator=gen)
        phases = 2 * math.pi * torch.rand(6, generator=gen)
        out.append(sum(torch.sin(2 * math.pi * f * t + p) for f, p in zip(freqs, phases))[None])
    return torch.stack(out)


def test_latents_holding_the_complex_spectrum_read_out_perfectly():
    r2 = latent_readout_r2(_FrameSpectrumEncoder(phase=True), _pieces(0), _pieces(1), rounded=False, ridge=1e-6)
    assert r2["complex"] > 0.99


def test_magnitude_only_latents_say_nothing_about_phase():
    r2 = latent_readout_r2(_FrameSpectrumEncoder(phase=False), _pieces(0), _pieces(1), rounded=False, ridge=1e-6)
    assert r2["log_magnitude"] > 0.99
    assert r2["complex"] < 0.1
