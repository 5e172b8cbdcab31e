"""The shared residual VQ: parity both directions, buffers untouched by quantize, train mode refused."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from heartcodec_lab.codec import QuantizerModeError, load_codec

FOLDERS = ["heartcodec-tiny", "ckpt-tiny/HeartCodec-oss"]


@pytest.fixture(scope="module", params=FOLDERS)
def codec(request, fixtures_dir):
    return load_codec(fixtures_dir / request.param)


@pytest.fixture(scope="module")
def ref(fixtures_dir):
    return load_file(fixtures_dir / "expected" / "codec_rvq.safetensors")


def _buffers(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_codes_to_embedding_matches_reference(codec, ref):
    codes = ref["codes_btq"].transpose(1, 2)  # [B, 8, T], as tokens are stored
    out = codec.codes_to_embedding(codes)
    assert out.shape == (2, 12, 64) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref["output_from_indices"], atol=1e-5, rtol=1e-4)


def test_nearest_codes_match_reference(codec, ref):
    quantized, codes = codec.quantize(ref["nearest_input"])
    assert codes.dtype == torch.int64 and codes.shape == (2, 8, 12)
    assert torch.equal(codes, ref["nearest_indices"].transpose(1, 2))
    torch.testing.assert_close(quantized, ref["nearest_quantized"], atol=1e-5, rtol=1e-4)


def test_straight_through_value_is_the_rvq_output_and_gradient_is_the_codebook_space_one(codec, ref):
    from heartcodec_lab.codec.quantizer import straight_through

    rvq = codec.quantizer
    features = ref["nearest_input"].clone().requires_grad_(True)  # [B, T, dim]
    quantized, codes = codec.quantize(features.detach())
    out = straight_through(rvq, features, quantized)
    assert torch.equal(out, quantized)
    torch.testing.assert_close(out, codec.codes_to_embedding(codes), atol=1e-5, rtol=1e-4)
    g = torch.randn_like(out)
    out.backward(g)
    # d out / d features = project_out . project_in (the codes themselves pass no gradient)
    w_in, w_out = rvq.project_in.weight, rvq.project_out.weight  # [d, dim], [dim, d]
    torch.testing.assert_close(features.grad, g @ w_out @ w_in, atol=1e-5, rtol=1e-4)
    assert w_in.shape[0] < w_in.shape[1]  # codebook_dim < dim: the feature-space shortcut would be wrong
    assert all(p.grad is None for p in rvq.parameters())


def test_quantize_leaves_every_rvq_buffer_bit_identical(codec, ref):
    before = _buffers(codec.quantizer)
    g = torch.Generator().manual_seed(11)
    codec.quantize(torch.randn(3, 40, 64, generator=g) * 3)  # far from the codebooks: dead-code territory
    codec.quantize(ref["nearest_input"])
    after = codec.quantizer.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key


def test_quantize_runs_in_float32_under_autocast(codec, ref):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        quantized, codes = codec.quantize(ref["nearest_input"])
    assert quantized.dtype == torch.float32
    assert torch.equal(codes, ref["nearest_indices"].transpose(1, 2))


def test_train_mode_is_refused(fixtures_dir, ref):
    codec = load_codec(fixtures_dir / "heartcodec-tiny")
    before = _buffers(codec.quantizer)
    codec.quantizer.train()
    with pytest.raises(QuantizerModeError, match="train mode"):
        codec.quantize(ref["nearest_input"])
    codec.quantizer.eval()
    for key, value in codec.quantizer.state_dict().items():
        assert torch.equal(before[key], value), key


def test_uninitialised_codebook_is_refused(fixtures_dir, ref):
    codec = load_codec(fixtures_dir / "heartcodec-tiny")
    codec.quantizer.layers[3]._codebook.initted.fill_(False)
    with pytest.raises(QuantizerModeError, match="codebook 3"):
        codec.quantize(ref["nearest_input"])


@pytest.mark.parametrize(
    "codes, message",
    [
        (torch.zeros(1, 7, 5, dtype=torch.long), r"\[B, 8, T\]"),
        (torch.full((1, 8, 5), 64), r"\[0, 64\)"),
        (torch.full((1, 8, 5), -1), r"\[0, 64\)"),
        (torch.zeros(1, 8, 5), "integer"),
    ],
)
def test_bad_codes_are_refused(codec, codes, message):
    with pytest.raises(ValueError, match=message):
        codec.codes_to_embedding(codes)
