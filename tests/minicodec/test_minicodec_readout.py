"""The stage-1 latent pitch readout: its target is a causal semitone spectrum, and it trains the encoder."""

from __future__ import annotations

import math

import torch

from heartcodec_lab.codec.scalar_model import ScalarModel
from heartcodec_lab.minicodec.config import mini_config
from heartcodec_lab.minicodec.losses import LatentPitchReadout
from heartcodec_lab.minicodec.stage1 import Stage1Loss, autoencode, lsuv_init

SR, HOP = 48000, 1920


def sine(freq: float, frames: int = 8) -> torch.Tensor:
    t = torch.arange(frames * HOP) / SR
    return (0.3 * torch.sin(2 * math.pi * freq * t))[None, None]


def test_target_peaks_in_the_band_of_the_note():
    readout = LatentPitchReadout(low_midi=36, n_bands=72)
    for midi in (40, 45, 50, 57, 69, 76, 93):  # E2 .. A6: band index = midi - 36
        freq = 440.0 * 2 ** ((midi - 69) / 12)
        target = readout.target(sine(freq))
        assert target.shape == (1, 72, 8)
        assert int(target[0, :, -1].argmax()) == midi - 36, midi
        # a semitone away is lower; clearly so from D3 up (below, the 5.9 Hz bins blur neighbours)
        gap = float(target[0, midi - 36, -1] - target[0, midi - 35, -1])
        assert gap > (1.0 if midi >= 50 else 0.5), (midi, gap)


def test_target_frames_are_causal():
    readout = LatentPitchReadout()
    x = sine(220.0)
    y = x.clone()
    y[..., 5 * HOP :] = torch.randn(3 * HOP)  # change only what comes after frame 4
    a, b = readout.target(x), readout.target(y)
    assert torch.equal(a[..., :5], b[..., :5])
    assert not torch.allclose(a[..., 5:], b[..., 5:])


def test_readout_term_trains_the_encoder_to_carry_pitch():
    torch.manual_seed(0)
    model = ScalarModel(mini_config(width=2, codebook_dim=4, heads=1, head_dim=8, layers=1, layers_2=1))
    audio = torch.cat([sine(f) for f in (110.0, 220.0, 330.0, 440.0)])
    lsuv_init(model, audio, 0.6)
    loss_fn = Stage1Loss(w_mel=0.0, w_stft=0.0, w_wave=0.0, w_usage=0.0, w_bound=0.0, w_readout=1.0)
    enc = [p for n, p in model.named_parameters() if n.startswith("encoder")]
    opt = torch.optim.Adam(enc + list(loss_fn.readout.parameters()), 3e-3)
    first = None
    for _ in range(60):
        recon, pre = autoencode(model, audio, "round")
        loss, parts = loss_fn(recon, audio, pre)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or float(parts["readout"].detach())
    assert float(parts["readout"].detach()) < 0.5 * first
    # the encoder itself moved (the readout is not fitting on its own)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc)
