"""``log_mel_l1`` against auraloss: it is auraloss's mel-STFT log-magnitude term with torchaudio's HTK
filterbank, and auraloss's own (Slaney) filterbank gives another number, which is why the metric keeps its
own few lines (docs/evaluate.md) instead of calling ``auraloss.freq.MelSTFTLoss``."""

from __future__ import annotations

import math

import auraloss
import pytest
import torch
import torchaudio

from heartcodec_lab.evaluate.metrics.audio import LogMelParams, log_mel_l1

SR = 48000


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Stereo 1 s tone-plus-noise reference and a detuned, louder-noise estimate (no bin near the floors)."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(SR) / SR
    ref = 0.3 * torch.sin(2 * math.pi * 440 * t) + 0.05 * torch.randn(2, SR, generator=g)
    est = 0.25 * torch.sin(2 * math.pi * 450 * t) + 0.06 * torch.randn(2, SR, generator=g)
    return ref, est


def _auraloss_log_mel(params: LogMelParams, htk: bool) -> auraloss.freq.STFTLoss:
    loss = auraloss.freq.STFTLoss(
        fft_size=params.n_fft,
        hop_size=params.hop_length,
        win_length=params.n_fft,
        w_sc=0.0,
        w_log_mag=1.0,
        w_lin_mag=0.0,
        scale="mel",
        n_bins=params.n_mels,
        sample_rate=SR,
    )
    if htk:
        loss.fb = torchaudio.functional.melscale_fbanks(
            params.n_fft // 2 + 1, params.f_min, SR / 2, params.n_mels, SR, norm=None, mel_scale="htk"
        ).T
    return loss


def test_log_mel_l1_equals_auraloss_mel_stft_with_the_htk_filterbank():
    ref, est = _pair()
    params = LogMelParams()
    ours = log_mel_l1(ref, est, SR, params)
    with torch.no_grad():
        theirs = float(_auraloss_log_mel(params, htk=True)(est[None], ref[None]))
    assert ours == pytest.approx(theirs, abs=1e-5)
    assert ours > 0.1  # a real difference, not two zeros


def test_auraloss_default_slaney_filterbank_gives_another_number():
    ref, est = _pair()
    ours = log_mel_l1(ref, est, SR)
    with torch.no_grad():
        slaney = float(_auraloss_log_mel(LogMelParams(), htk=False)(est[None], ref[None]))
    assert abs(slaney - ours) > 1e-3  # switching to it would move every recorded log_mel_l1
