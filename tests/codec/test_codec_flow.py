"""FlowMatching + DiT estimator: parity with the reference fixtures, flow convention, failure paths."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from heartcodec_lab.codec import load_codec
from heartcodec_lab.codec.estimator import FlowEstimator, apply_rotary, rotary_tables, swiglu_hidden_dim
from heartcodec_lab.codec.flow_matching import SIGMA_MIN, FlowMatching, interpolate_path, target_velocity

FLOW_ARGS = (
    "dim codebook_size decay commitment_weight threshold_ema_dead_code use_cosine_sim codebook_dim "
    "num_quantizers attention_head_dim in_channels norm_type num_attention_heads num_layers num_layers_2 "
    "out_channels"
).split()


@pytest.fixture(scope="module")
def flow(fixtures_dir) -> FlowMatching:
    return load_codec(fixtures_dir / "heartcodec-tiny").flow_matching


def test_module_names_are_the_checkpoint_keys(fixtures_dir):
    """FlowMatching alone loads the ``flow_matching.*`` keys strictly, no renaming needed."""
    config = json.loads((fixtures_dir / "heartcodec-tiny" / "config.json").read_text())
    fresh = FlowMatching(**{name: config[name] for name in FLOW_ARGS})
    state = load_file(fixtures_dir / "heartcodec-tiny" / "model.safetensors")
    prefix = "flow_matching."
    fresh.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    key = "flow_matching.estimator.proj_out.ffn_2.weight"
    torch.testing.assert_close(fresh.estimator.proj_out.ffn_2.weight, state[key])


@pytest.fixture(scope="module")
def expected(fixtures_dir):
    return lambda name: load_file(fixtures_dir / "expected" / f"{name}.safetensors")


def test_estimator_matches_reference(flow, expected):
    ref = expected("codec_estimator")
    with torch.inference_mode():
        out = flow.estimator(ref["hidden_states"], timestep=ref["timestep"])
    torch.testing.assert_close(out, ref["output"], atol=1e-5, rtol=1e-4)


def test_estimator_rows_are_independent_and_time_matters(flow, expected):
    ref = expected("codec_estimator")
    hidden, t = ref["hidden_states"], ref["timestep"]
    with torch.inference_mode():
        row1 = flow.estimator(hidden[1:], timestep=t[1:])
        scalar_t = flow.estimator(hidden[1:], timestep=t[1])  # a 0-d time is broadcast
        other_t = flow.estimator(hidden[1:], timestep=t[:1])
    torch.testing.assert_close(row1, ref["output"][1:], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scalar_t, row1)
    assert (other_t - row1).abs().max() > 1e-3


@pytest.mark.parametrize("guidance, key", [(1.0, "output_guidance_1_0"), (1.25, "output_guidance_1_25")])
def test_solve_euler_matches_reference(flow, expected, guidance, key):
    ref = expected("codec_solve_euler")
    noise = ref["noise"].clone()
    with torch.inference_mode():
        out = flow.solve_euler(noise, ref["incontext_x"], ref["incontext_length"], ref["t_span"], ref["mu"], guidance)
    torch.testing.assert_close(out, ref[key], atol=1e-4, rtol=0)
    assert torch.equal(noise, ref["noise"]), "solve_euler must not write into its noise argument"


def test_inference_codes_reproduces_detokenize_windows(flow, expected):
    """The two windows of the long detokenize fixture, with the reference's order of random draws."""
    ref = expected("codec_detokenize_long")
    codes = torch.cat([ref["codes"], ref["codes"]], -1)[None, :, :692]  # padded to 2 hops + overlap
    window, hop, overlap = 372, 320, 104  # code frames, code frames, latent frames
    torch.manual_seed(4321)
    first_latent = torch.randn(1, 2 * window, 256)
    first = flow.inference_codes([codes[..., :window]], first_latent, 2 * window, 0, guidance_scale=1.25, num_steps=10)
    prompt = torch.cat([first[:, -overlap:], torch.randn(1, 2 * window - overlap, 256)], 1)
    second = flow.inference_codes(
        [codes[..., hop : hop + window]], prompt, 2 * window, overlap, guidance_scale=1.25, num_steps=10
    )
    torch.testing.assert_close(first[0], ref["window_latents"][0], atol=1e-4, rtol=0)
    torch.testing.assert_close(second[0], ref["window_latents"][1], atol=1e-4, rtol=0)
    torch.testing.assert_close(second[:, :overlap], first[:, -overlap:], atol=0, rtol=0)


def test_condition_from_codes_is_rvq_embedding_projected_and_doubled(flow, expected):
    ref = expected("codec_rvq")
    mu = flow.condition_from_codes(ref["codes_btq"].transpose(1, 2))
    projected = flow.cond_feature_emb(ref["output_from_indices"])
    assert mu.shape == (2, 24, projected.shape[-1])
    torch.testing.assert_close(mu[:, 0::2], projected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mu[:, 1::2], projected, atol=1e-5, rtol=1e-4)


def test_flow_path_and_velocity_convention():
    g = torch.Generator().manual_seed(1)
    noise, x1 = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    torch.testing.assert_close(interpolate_path(noise, x1, 0.0), noise)
    torch.testing.assert_close(interpolate_path(noise, x1, 1.0), x1 + SIGMA_MIN * noise)
    finite_difference = (interpolate_path(noise, x1, 0.7) - interpolate_path(noise, x1, 0.3)) / 0.4
    torch.testing.assert_close(finite_difference, target_velocity(noise, x1), atol=1e-5, rtol=1e-5)


def test_velocity_is_differentiable_in_the_condition(flow, expected):
    ref = expected("codec_rvq")
    embedding = ref["output_from_indices"][:1].clone().requires_grad_(True)
    mu = flow.embedding_to_condition(embedding)
    x_t = torch.randn(1, mu.shape[1], flow.latent_dim)
    v = flow.velocity(x_t, torch.zeros_like(x_t), mu, torch.tensor([0.5]))
    assert v.shape == x_t.shape
    v.square().mean().backward()
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0


def test_train_mode_keeps_rvq_in_eval(flow):
    try:
        flow.train()
        assert flow.estimator.training and not flow.vq_embed.training
        assert not any(m.training for m in flow.vq_embed.modules())
    finally:
        flow.eval()


@pytest.mark.parametrize("shape", [(2, 5, 2, 8), (1, 9, 3, 16), (2, 4, 1, 128)])
def test_rotary_is_the_exact_pairwise_rotation(shape):
    """Complex-multiply rotary equals rotating each pair (2i, 2i+1) by t * 10000^(-2i/D), bit for bit."""
    b, t, h, d = shape
    x = torch.randn(shape)
    angle = torch.arange(t).float()[:, None] * (1.0 / 10000 ** (torch.arange(0, d, 2).float() / d))
    cos, sin = angle.cos()[:, None], angle.sin()[:, None]  # [T, 1, D/2]
    even, odd = x[..., 0::2], x[..., 1::2]
    expected = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2).transpose(1, 2)
    out = apply_rotary(x, rotary_tables(b, t, h, d, x.device, x.dtype))
    assert out.shape == (b, h, t, d) and out.is_contiguous()
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    torch.testing.assert_close(out[:, :, 0], x[:, 0])  # position 0 is not rotated


def test_tiny_shapes_follow_the_checkpoint():
    assert swiglu_hidden_dim(16) == 256 and swiglu_hidden_dim(1536) == 4096 and swiglu_hidden_dim(3072) == 8192
    est = FlowEstimator(2, 8, in_channels=20, out_channels=6, num_layers=1, num_layers_2=1)
    assert est(torch.randn(3, 7, 20), torch.rand(3)).shape == (3, 7, 6)


def test_bad_inputs_raise_clear_errors(flow):
    with pytest.raises(ValueError, match="hidden_states"):
        flow.estimator(torch.randn(1, 4, 3), torch.zeros(1))
    with pytest.raises(ValueError, match="timestep"):
        flow.estimator(torch.randn(2, 4, flow.estimator.in_channels), torch.zeros(3))
    with pytest.raises(ValueError, match="codes"):
        flow.condition_from_codes(torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        flow.condition_from_codes(torch.full((1, 8, 5), 64))
    with pytest.raises(ValueError, match="norm_type"):
        FlowEstimator(2, 8, 20, 6, norm_type="layer_norm")
    with pytest.raises(ValueError, match="in_channels"):
        FlowMatching(
            dim=8,
            codebook_size=4,
            codebook_dim=2,
            in_channels=10,
            out_channels=6,
            num_attention_heads=1,
            attention_head_dim=4,
            num_layers=1,
            num_layers_2=1,
        )
    with pytest.raises(ValueError, match="scenario"):
        flow.inference_codes(
            [torch.zeros(1, 8, 2, dtype=torch.long)], torch.zeros(1, 4, 256), 4, 0, 1.0, 1, scenario="middle"
        )
    with pytest.raises(ValueError, match="num_steps"):
        flow.inference_codes([torch.zeros(1, 8, 2, dtype=torch.long)], torch.zeros(1, 4, 256), 4, 0, 1.0, 0)
    with pytest.raises(ValueError, match="true_latents"):
        flow.inference_codes([torch.zeros(1, 8, 2, dtype=torch.long)], torch.zeros(1, 5, 256), 4, 0, 1.0, 1)


def test_no_progress_output_when_disabled(flow, capsys):
    codes = torch.zeros(1, 8, 3, dtype=torch.long)
    out = flow.inference_codes([codes], torch.zeros(1, 6, 256), 6, 0, guidance_scale=1.25, num_steps=2)
    assert out.shape == (1, 6, 256)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_forced_low_precision_keeps_rvq_float32_and_runs(fixtures_dir):
    with pytest.warns(UserWarning):
        codec = load_codec(fixtures_dir / "heartcodec-tiny", dtype=torch.bfloat16, allow_low_precision=True)
    fm = codec.flow_matching
    assert fm.vq_embed.project_out.weight.dtype == torch.float32
    prompt = torch.randn(1, 12, 256).to(torch.bfloat16)
    out = fm.inference_codes([torch.randint(0, 64, (1, 8, 6))], prompt, 12, 4, guidance_scale=1.25, num_steps=2)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    assert torch.equal(out[:, :4], prompt[:, :4])  # in-context frames come back unchanged
