"""Streamed ScalarModel inference and window-by-window detokenize equal the one-pass results."""

from __future__ import annotations

import pytest
import torch

from heartcodec_lab.codec import load_codec
from heartcodec_lab.codec.scalar_model import DEFAULT_BLOCK_FRAMES


@pytest.fixture(scope="module")
def codec(fixtures_dir):
    return load_codec(fixtures_dir / "ckpt-tiny" / "HeartCodec-oss")


def _latent(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 128, frames, generator=torch.Generator().manual_seed(seed)) * 1.8 - 0.9


@pytest.mark.parametrize("block", [1, 3, 7, 16])
def test_streamed_decode_equals_one_pass(codec, block):
    # 37 frames: several blocks, a short last one; block 1 and 3 are shorter than the
    # receptive field of the low-rate layers, so state must carry over many blocks.
    latent = _latent(37)
    with torch.inference_mode():
        whole = codec.scalar_model.decode(latent, block_frames=0)
        streamed = codec.scalar_model.decode(latent, block_frames=block)
    assert streamed.shape == whole.shape == (2, 1, 37 * 1920)
    torch.testing.assert_close(streamed, whole, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("samples", [40 * 1920, 40 * 1920 + 777, 41 * 1920 - 1])
def test_streamed_encode_equals_one_pass(codec, samples):
    wav = torch.randn(1, 1, samples, generator=torch.Generator().manual_seed(samples)) * 0.3
    with torch.inference_mode():
        whole = codec.scalar_model.encode(wav, block_frames=0)
        streamed = codec.scalar_model.encode(wav, block_frames=6)
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, atol=2e-6, rtol=1e-5)


def test_default_block_streams_long_inputs(codec):
    sm = codec.scalar_model
    latent = _latent(3 * sm.block_frames + 5, seed=1)
    with torch.inference_mode():
        torch.testing.assert_close(sm.decode(latent), sm.decode(latent, block_frames=0), atol=2e-6, rtol=1e-5)


def test_decode_of_a_prefix_is_the_prefix_of_the_decode(codec):
    # Causal apart from a 2-frame look-ahead: what detokenize relies on to skip cut-away audio.
    latent, n = _latent(30, seed=2), 11
    with torch.inference_mode():
        whole = codec.scalar_model.decode(latent, block_frames=0)
        prefix = codec.scalar_model.decode(latent[..., : n + 2], block_frames=4)
    torch.testing.assert_close(prefix[..., : n * 1920], whole[..., : n * 1920], atol=2e-6, rtol=1e-5)
    assert (prefix[..., -1920:] - whole[..., (n + 1) * 1920 : (n + 2) * 1920]).abs().max() > 1e-4


def test_gradients_use_one_pass_and_flow(codec):
    sm = codec.scalar_model
    latent = _latent(12, seed=3).requires_grad_(True)
    out = sm.decode(latent, block_frames=4)  # a graph is needed: streaming is skipped
    out.square().mean().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0
    assert all(m.carry is None for m in sm.modules() if hasattr(m, "carry"))


def test_detokenize_decodes_each_window_before_generating_the_next(codec, monkeypatch):
    calls = []
    generate, decode = codec.flow_matching.inference_codes, codec.decode_latents

    def spy_generate(*args, **kwargs):
        calls.append("generate")
        return generate(*args, **kwargs)

    def spy_decode(latents, num_samples=None):
        calls.append(("decode", latents.shape[1], num_samples))
        return decode(latents, num_samples)

    monkeypatch.setattr(codec.flow_matching, "inference_codes", spy_generate)
    monkeypatch.setattr(codec, "decode_latents", spy_decode)
    codes = torch.randint(0, 64, (8, 106), generator=torch.Generator().manual_seed(5))
    wav = codec.detokenize(codes, duration=7.44, num_steps=1)  # windows of 93 frames, hop 80: 2 windows
    assert wav.shape == (2, 106 * 3840)
    # The second window is decoded only as far as the output reaches (26 of 93 frames).
    assert calls == ["generate", ("decode", 186, 93 * 3840), "generate", ("decode", 186, 26 * 3840)]


@pytest.mark.parametrize("threads, streams", [(1, True), (2, False)])
def test_encode_streams_by_default_on_one_cpu_thread_only(codec, monkeypatch, threads, streams):
    sm = codec.scalar_model
    wav = torch.randn(1, 1, (2 * DEFAULT_BLOCK_FRAMES + 7) * 1920, generator=torch.Generator().manual_seed(3)) * 0.3
    entered = []
    real = sm._streaming
    monkeypatch.setattr(sm, "_streaming", lambda layers: entered.append(layers) or real(layers))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            auto = sm.encode(wav)
    finally:
        torch.set_num_threads(before)
    assert bool(entered) is streams
    with torch.inference_mode():
        torch.testing.assert_close(auto, sm.encode(wav, block_frames=0), atol=2e-6, rtol=1e-5)
