"""The training loss ``mel`` and the evaluation metric ``log_mel_l1`` are one log-mel L1 (torchaudio HTK mels,
n_fft 2048, hop 480, 80 bands): equal wherever no band reaches their floors, which differ in form (the loss
clamps at 1e-5, the metric adds 1e-5). ``tests/evaluate/test_log_mel_parity.py`` ties the metric to auraloss."""

from __future__ import annotations

import math

import pytest
import torch

from heartcodec_lab.evaluate.metrics.audio import log_mel_l1
from heartcodec_lab.losses import MelLoss


def test_mel_loss_equals_the_log_mel_metric_above_the_floor():
    g = torch.Generator().manual_seed(1)
    t = torch.arange(48000) / 48000
    audio = 0.3 * torch.sin(2 * math.pi * 330 * t) + 0.05 * torch.randn(2, 48000, generator=g)
    recon = 0.2 * torch.sin(2 * math.pi * 335 * t) + 0.07 * torch.randn(2, 48000, generator=g)
    loss = MelLoss()({"audio": audio[None], "recon": recon[None]}).item()
    assert loss == pytest.approx(log_mel_l1(audio, recon, 48000), rel=1e-4)
    assert loss > 0.1


def test_the_floors_differ_on_silence():
    """Silence against a quiet tone: the clamp and the additive floor give different numbers."""
    quiet = 1e-4 * torch.sin(2 * math.pi * 330 * torch.arange(9600) / 48000).expand(2, -1)
    silence = torch.zeros(2, 9600)
    loss = MelLoss()({"audio": silence[None], "recon": quiet[None]}).item()
    assert abs(loss - log_mel_l1(silence, quiet, 48000)) > 1e-3
