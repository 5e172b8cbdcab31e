"""Stage 1's phase-sensitive term and the triangle init of the resampling convs: known answers."""

from __future__ import annotations

import math

import pytest
import torch

from heartcodec_lab.codec.scalar_model import DownsampleLayer, ScalarModel, UpsampleLayer
from heartcodec_lab.minicodec.config import mini_config
from heartcodec_lab.minicodec.losses import ComplexSTFTLoss
from heartcodec_lab.minicodec.stage1 import smooth_resampling_init, triangle_kernel
from heartcodec_lab.minicodec.stage1_run import Stage1Settings, build_stage1, setup_stage1

SR = 48000


def tone(freq: float, seconds: float = 0.5, shift: int = 0) -> torch.Tensor:
    t = (torch.arange(int(seconds * SR)) - shift) / SR
    return (0.3 * torch.sin(2 * math.pi * freq * t))[None, None]


def test_complex_stft_loss_known_answers():
    loss = ComplexSTFTLoss()
    x = tone(220.0) + 0.1 * torch.randn(1, 1, SR // 2, generator=torch.Generator().manual_seed(0))
    assert float(loss(x, x)) == 0.0
    assert float(loss(torch.zeros_like(x), x)) == pytest.approx(1.0, abs=1e-6)
    assert float(loss(-x, x)) == pytest.approx(2.0, abs=1e-6)


def test_complex_stft_loss_sees_phase_that_magnitudes_cannot():
    """Half a period late is the same spectrum but the opposite waveform; one sample late is nearly the same."""
    loss = ComplexSTFTLoss()
    ref = tone(110.0)
    half_period = round(SR / 110 / 2)
    assert float(loss(tone(110.0, shift=half_period), ref)) > 1.9
    assert float(loss(tone(110.0, shift=1), ref)) < 0.03
    # above max_hz nothing counts: a 5 kHz tone added to the estimate costs (almost) nothing
    assert float(loss(ref + tone(5000.0), ref)) < 0.02  # the edges leak a little


def test_triangle_taps_sum_to_one_in_every_phase():
    for stride in (2, 3, 4, 5):
        w = triangle_kernel(stride)
        assert w.shape == (2 * stride,) and torch.allclose(w[:stride] + w[stride:], torch.ones(stride))
        assert torch.allclose(w, w.flip(0))


@torch.no_grad()
def test_triangle_init_upsamples_a_steady_input_without_a_step_rate_pattern():
    """Constant frames in, constant samples out of every transposed conv; default init: a periodic pattern."""
    model = ScalarModel(mini_config(width=2))
    ups = [m.layer for m in model.modules() if isinstance(m, UpsampleLayer)]
    x = torch.ones(1, ups[0].in_channels, 6)
    default_spread = float(ups[0](x)[..., 5:].std(dim=-1).mean())  # after the first (zero-padded) frame
    smooth_resampling_init(model)
    for up in ups:
        y = up(torch.ones(1, up.in_channels, 6))[..., up.stride[0] :]
        assert float(y.std(dim=-1).max()) < 1e-5 * float(y.abs().max())
    assert default_spread > 1e-2


@torch.no_grad()
def test_triangle_init_low_passes_before_every_decimation():
    """An alternating (Nyquist-rate) input is cancelled by each strided conv; a steady one passes."""
    model = ScalarModel(mini_config(width=2))
    smooth_resampling_init(model)
    for down in (m.layer for m in model.modules() if isinstance(m, DownsampleLayer)):
        n = 8 * down.stride[0]
        nyquist = torch.tensor([1.0, -1.0]).repeat(n // 2).expand(1, down.in_channels, n)
        steady = torch.ones(1, down.in_channels, n)
        bias = down.bias[None, :, None]
        out_n, out_s = down(nyquist)[..., 2:] - bias, down(steady)[..., 2:] - bias  # past the causal padding
        assert float(out_n.abs().max()) < 1e-5 * float(out_s.abs().max())


def test_stage1_settings_switch_both_on_and_refuse_an_unknown_init():
    tiny = dict(width=2, batch=2, segment_frames=4, n_pieces=2, piece_seconds=0.5, eval_every=0)
    s = Stage1Settings(**tiny, resampling_init="triangle", w_phase=3.0)
    _, _, loss_fn, _, _, _, step = setup_stage1(s, resuming=False)
    total, parts = step(0)
    assert "phase" in parts and loss_fn.w["phase"] == 3.0 and torch.isfinite(total)
    assert total.requires_grad and 0 < float(parts["phase"].detach()) < 3
    with pytest.raises(ValueError, match="resampling_init"):
        build_stage1(Stage1Settings(**tiny, resampling_init="sinc"))
    with pytest.raises(ValueError, match="warm-starts"):
        build_stage1(Stage1Settings(**tiny, resampling_init="triangle", init_from="some/codec"))


def test_triangle_init_keeps_the_latents_still_under_a_one_sample_delay():
    """The anti-aliased encoder moves its latents by ~0.1 % for a one-sample delay; default init ~10 %."""
    from heartcodec_lab.minicodec.data import held_out_pieces
    from heartcodec_lab.minicodec.quality import stage1_probe

    pieces = held_out_pieces(1, 1.0)
    change = {}
    for init in ("default", "triangle"):
        model, _ = build_stage1(Stage1Settings(width=2, n_pieces=2, piece_seconds=0.5, resampling_init=init))
        change[init] = stage1_probe(model, pieces)["latent_shift_change"]
    assert change["triangle"] < 0.01 < 0.05 < change["default"], change


def test_phase_readout_target_is_each_frames_own_spectrum():
    from heartcodec_lab.minicodec.losses import LatentPhaseReadout

    readout = LatentPhaseReadout()
    t = torch.arange(3 * 1920) / SR
    target = readout.target(torch.cos(2 * math.pi * 100 * t)[None, None])  # 100 Hz = bin 4 of a 1920 frame
    assert target.shape == (1, 80, 3)
    magnitude = target[0, :40].pow(2) + target[0, 40:].pow(2)
    assert int(magnitude[:, 0].argmax()) == 3  # bins start at 25 Hz
    shifted = readout.target(torch.sin(2 * math.pi * 100 * t)[None, None])  # a quarter period later: other parts
    assert torch.allclose(magnitude, shifted[0, :40].pow(2) + shifted[0, 40:].pow(2), rtol=1e-3, atol=1e-3)
    assert float((shifted - target).abs().max()) > 0.5 * float(target.abs().max())


def test_phase_readout_trains_with_the_model_and_is_checkpointed():
    tiny = dict(width=2, batch=2, segment_frames=4, n_pieces=2, piece_seconds=0.5, eval_every=0)
    _, _, loss_fn, modules, _, _, step = setup_stage1(Stage1Settings(**tiny, w_phase_readout=1.0), resuming=False)
    assert modules["phase_readout"] is loss_fn.phase_readout
    _, parts = step(0)
    assert 0 < float(parts["phase_readout"].detach()) < 10


def test_phase_code_compresses_each_part_and_asks_the_latents_for_it():
    from heartcodec_lab.minicodec.losses import LatentPhaseCode

    code = LatentPhaseCode()
    t = torch.arange(4 * 1920) / SR
    audio = (0.2 * torch.cos(2 * math.pi * 100 * t))[None, None]
    raw, packed = code.target(audio), code.code(audio)
    expected = torch.sign(raw) * torch.log1p(raw.abs()) / math.log(101)
    assert torch.allclose(packed, expected.clamp(-0.95, 0.95), atol=1e-6)
    assert float(packed.abs().max()) <= 0.95 and packed.shape == (1, 80, 4)
    latents = torch.zeros(1, 128, 4, requires_grad=True)
    loss = code(latents, audio)
    assert float(loss.detach()) == pytest.approx(float(packed.abs().sum() / (80 * 4)), rel=1e-5)
    loss.backward()
    assert latents.grad[:, :80].abs().sum() > 0 and latents.grad[:, 80:].abs().sum() == 0  # the rest is free
    assert float(code(packed, audio)) == 0.0
