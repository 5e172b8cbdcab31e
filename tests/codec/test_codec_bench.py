"""The codec benchmark's own logic: partial full-size build, random fill, extrapolation, a tiny run."""

from __future__ import annotations

import math
import types
from pathlib import Path

import pytest
import torch
from torch.nn.utils.parametrizations import weight_norm

from heartcodec_lab.codec import benchmark, benchmark_models

RELEASED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "heartlib-heartcodec"


@pytest.fixture(scope="module")
def bench():
    """The benchmark's library functions under one name (models and runs live in two modules)."""
    return types.SimpleNamespace(**{**vars(benchmark_models), **vars(benchmark)})


def test_full_size_build_materialises_only_the_requested_part(bench):
    codec = bench.build_codec(tiny=False, parts=("flow_matching.vq_embed",))
    assert sum(p.numel() for p in codec.parameters()) == 1_655_308_877  # the released size
    assert codec.flow_matching.estimator.proj_in.ffn_2.weight.is_meta
    assert codec.scalar_model.decoder[0].bias.is_meta
    embed = codec.quantizer.layers[0]._codebook.embed
    assert not embed.is_meta and torch.isfinite(embed).all() and embed.std() > 0.5
    quantized, codes = codec.quantize(torch.randn(1, 5, 512))
    assert codes.shape == (1, 8, 5) and torch.isfinite(quantized).all()


def test_randomize_keeps_weight_norm_gain_equal_to_direction_norm(bench):
    net = torch.nn.Sequential(weight_norm(torch.nn.Conv1d(3, 4, 5)), torch.nn.PReLU(), torch.nn.LayerNorm(4))
    bench.randomize_(net)
    torch.testing.assert_close(net[0].weight, net[0].parametrizations.weight.original1)
    assert net[0].bias.abs().max() == 0 and net[1].weight.item() == 0.25
    assert net[0].parametrizations.weight.original1.std().item() == pytest.approx(15**-0.5, rel=0.6)


def test_extrapolation_is_windows_times_steps_plus_decode(bench):
    results = {"estimator": {"seconds": 10.0}, "decode": {"seconds": 5.0, "audio_seconds": 5.0}}
    # 30 s = 375 codes -> 2 windows; each 10 steps x 10 s + decode of 29.76 s at RTF 1.
    assert bench.extrapolate_detokenize(results) == pytest.approx(2 * (10 * 10.0 + 29.76))
    assert bench.extrapolate_detokenize({"estimator": {"seconds": 1.0}}) is None


def test_tiny_run_reports_every_field(bench):
    result = bench.run_case("detokenize", seconds=1.0, steps=1, tiny=True, threads=1)
    assert result["windows"] == 1 and result["steps"] == 1 and result["audio_seconds"] == 1.0
    assert result["seconds"] > 0 and result["peak_rss_gb"] >= result["model_rss_gb"] > 0
    assert math.isclose(result["rtf"], result["seconds"] / 1.0)


def test_random_weights_depend_only_on_the_key(bench):
    # Two separately built modules with the same keys get identical weights: how ours and the
    # released code are given the same random full-size weights in different processes.
    def make():
        return torch.nn.Sequential(weight_norm(torch.nn.Conv1d(3, 4, 5)), torch.nn.Linear(4, 6))

    a, b = make(), make()
    bench.randomize_(a)
    bench.randomize_(b)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert not torch.equal(a[1].weight[:, :4], a[0].parametrizations.weight.original1[:, :, 0][:6])


def test_flop_counts_scale_with_length(bench):
    case_flops = benchmark_models.case_flops

    one, two = case_flops("decode", 1.0, 1, tiny=True), case_flops("decode", 2.0, 1, tiny=True)
    assert one > 0 and two == 2 * one
    est = case_flops("estimator", 1.0, 1, tiny=True)
    assert case_flops("detokenize", 2.0, 3, tiny=True) == 3 * est + case_flops("decode", 29.76, 1, tiny=True)


@pytest.mark.skipif(not RELEASED.is_dir(), reason="released heartlib code not present")
# the released code calls torch.jit.script, which torch 2.14 deprecates: its code (read-only here), not ours
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore:<class 'heartcodec_released.*should not be instantiated:DeprecationWarning")
def test_released_code_runs_on_the_same_weights_and_agrees(bench):
    ours = bench.build_codec(tiny=True)
    released = bench.build_released(str(RELEASED), tiny=True)
    assert type(released).__module__.startswith("heartcodec_released")
    latent = torch.rand(2, 128, 9, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    with torch.inference_mode():
        torch.testing.assert_close(
            ours.scalar_model.decode(latent), released.scalar_model.decode(latent), atol=1e-5, rtol=1e-4
        )
    result = bench.run_case(
        "decode", seconds=0.2, steps=1, tiny=True, threads=1, impl="released", reference_src=str(RELEASED)
    )
    assert result["impl"] == "released" and result["cpu_seconds"] > 0
