"""Known answers for the miniature's tone probe (``quality.tone_fidelity``)."""

from __future__ import annotations

import math

import torch

from heartcodec_lab.minicodec.quality import SR, frame_grid_share, tone_fidelity


class _Stub(torch.nn.Module):
    """A "codec" whose round trip is given: identity, or a 125 Hz frame-rate buzz of the same energy."""

    hop_length = 1920

    def __init__(self, buzz: bool):
        super().__init__()
        self.buzz = buzz

    def encode(self, x):
        return x

    def decode(self, z):
        if not self.buzz:
            return z
        t = torch.arange(z.shape[-1]) / SR
        comb = sum(torch.sin(2 * math.pi * 125 * k * t) for k in range(1, 9))
        return (comb * z.std() / comb.std())[None, None]


def test_identity_keeps_the_tone():
    r = tone_fidelity(_Stub(buzz=False), 440.0)
    assert abs(r["energy_ratio"] - 1) < 1e-4
    assert r["in_tone_share"] > 0.99


def test_frame_rate_buzz_has_no_tone():
    r = tone_fidelity(_Stub(buzz=True), 290.0)  # 290 and 580 Hz: over a semitone from every 125 Hz harmonic
    assert 0.5 < r["energy_ratio"] < 2
    assert r["in_tone_share"] < 0.01


def test_frame_grid_share_separates_frame_periodic_output_from_a_tone():
    t = torch.arange(3 * SR) / SR
    periodic = sum(torch.sin(2 * math.pi * 25 * k * t + k) / k for k in range(1, 40))  # any 1920-sample period
    assert frame_grid_share(periodic) > 0.99
    harmonic = sum(torch.sin(2 * math.pi * 110 * h * t) / h for h in range(1, 5))  # 110-440 Hz: 5-10 Hz off grid
    assert frame_grid_share(harmonic) < 0.01
    noise = torch.randn(3 * SR, generator=torch.Generator().manual_seed(0))
    assert 0.1 < frame_grid_share(torch.stack([noise, noise])) < 0.2  # 4 Hz of every 25: ~0.16


def test_tone_fidelity_reports_the_grid_share_of_the_output():
    assert tone_fidelity(_Stub(buzz=True), 290.0)["frame_grid_share"] > 0.99  # 125 Hz harmonics lie on the grid
    assert tone_fidelity(_Stub(buzz=False), 290.0)["frame_grid_share"] < 0.01
