"""ScalarModel: parity with the reference on the tiny fixtures, rounding to ninths, causality, key layout."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from heartcodec_lab.codec import HeartCodecConfig, ScalarModel, load_codec
from heartcodec_lab.codec.scalar_model import quantize_latent

FOLDERS = ["heartcodec-tiny", "ckpt-tiny/HeartCodec-oss"]


@pytest.fixture(scope="module", params=FOLDERS)
def scalar_model(request, fixtures_dir):
    return load_codec(fixtures_dir / request.param).scalar_model


def test_encode_matches_reference(scalar_model, fixtures_dir):
    ref = load_file(fixtures_dir / "expected" / "codec_scalar_encode.safetensors")
    out = scalar_model.encode(ref["input_wav"])
    assert out.shape == (1, 128, 25)  # 48000 samples / 1920 per latent frame
    torch.testing.assert_close(out, ref["output_latent"], atol=1e-5, rtol=1e-4)


def test_decode_matches_reference(scalar_model, fixtures_dir):
    ref = load_file(fixtures_dir / "expected" / "codec_scalar_decode.safetensors")
    out = scalar_model.decode(ref["input_latent"])
    assert out.shape == (2, 1, 25 * 1920)
    torch.testing.assert_close(out, ref["output_wav"], atol=1e-5, rtol=1e-4)


def test_decode_rounds_latents_to_ninths_first(fixtures_dir):
    model = load_codec(fixtures_dir / "heartcodec-tiny").scalar_model
    g = torch.Generator().manual_seed(3)
    latent = torch.rand(1, 128, 6, generator=g) * 2 - 1
    snapped = torch.round(latent * 9) / 9
    assert not torch.equal(latent, snapped)
    assert torch.equal(model.decode(latent), model.decode(snapped))
    # Known answers of the quantiser, and a straight-through gradient.
    x = torch.tensor([0.0, 0.05, 0.06, -0.5, 1.0], requires_grad=True)
    q = quantize_latent(x)
    torch.testing.assert_close(q.detach(), torch.tensor([0.0, 0.0, 1 / 9, -4 / 9, 1.0]))
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones(5))


def test_encoder_is_causal(fixtures_dir):
    model = load_codec(fixtures_dir / "heartcodec-tiny").scalar_model
    g = torch.Generator().manual_seed(5)
    wav = torch.randn(1, 1, 20 * 1920, generator=g) * 0.3
    changed = wav.clone()
    changed[..., 12 * 1920 :] = torch.randn(1, 1, 8 * 1920, generator=g)
    a, b = model.encode(wav), model.encode(changed)
    torch.testing.assert_close(a[..., :12], b[..., :12], atol=1e-6, rtol=0)  # the past does not see the future
    assert (a[..., 12:] - b[..., 12:]).abs().max() > 1e-3


def test_module_tree_matches_released_keys(fixtures_dir):
    manifest = json.loads((fixtures_dir / "manifest.json").read_text())
    released = {
        k[len("scalar_model.") :]: v["shape"]
        for k, v in manifest["state_dict_keys"]["heartcodec"].items()
        if k.startswith("scalar_model.")
    }
    config = HeartCodecConfig.from_json(fixtures_dir / "heartcodec-tiny" / "config.json")
    ours = {k: list(v.shape) for k, v in ScalarModel(config).state_dict().items()}
    assert ours == released


def test_bad_shapes_are_refused(scalar_model):
    with pytest.raises(ValueError, match=r"\[B, 1, S\]"):
        scalar_model.encode(torch.zeros(1, 2, 1920))
    with pytest.raises(ValueError, match=r"\[B, 128, T\]"):
        scalar_model.decode(torch.zeros(1, 64, 4))
