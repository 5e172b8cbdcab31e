"""Known answers for the miniature's tone probe (``quality.tone_fidelity``)."""

from __future__ import annotations

import math

import torch

from heartcodec_lab.minicodec.quality import SR, tone_fidelity


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
