"""Generation: sampling, guidance, stopping, cancellation, continuation and scoring consistency."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from heartcodec_lab.mula import GenerationConfig, frame_logits, frame_nll, generate_tokens, load_mula, make_sampler
from heartcodec_lab.mula.continuation import continue_from, load_history, load_token_file
from heartcodec_lab.mula.model import guide

TAGS, LYRICS = "Piano,Happy", "[Verse]\nThe sun creeps in across the floor"
GREEDY = GenerationConfig(max_frames=6, topk=1, cfg_scale=1.0)


@pytest.fixture(scope="module")
def tiny(fixtures_dir):
    return load_mula(fixtures_dir / "heartmula-tiny")


@pytest.fixture(scope="module")
def greedy(tiny):
    """Greedy frames ``[8, 6]`` of the tiny fixture model, without and with guidance."""
    return {
        c: generate_tokens(tiny, TAGS, LYRICS, replace(GREEDY, cfg_scale=c), progress=False).tokens for c in (1.0, 1.5)
    }


@pytest.fixture(scope="module")
def default_bundle():
    return load_mula(None)


def _run(bundle, cfg, **kw):
    return generate_tokens(bundle, TAGS, LYRICS, cfg, progress=False, **kw)


def test_sampler_topk_temperature_and_mask():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0]])
    assert make_sampler(1, 1.0)(logits).tolist() == [[1]]
    assert make_sampler(50, 0.0)(logits).tolist() == [[1]]  # temperature 0 = greedy
    allowed = torch.tensor([True, False, True, True, True])
    assert make_sampler(1, 1.0, allowed)(logits).tolist() == [[3]]
    gen = torch.Generator().manual_seed(0)
    draws = torch.cat([make_sampler(2, 1.0, generator=gen)(logits) for _ in range(4000)]).flatten()
    assert set(draws.tolist()) == {1, 3}  # only the two best
    # frequencies follow softmax over the top-k: p(1) = e^3 / (e^3 + e^2)
    assert abs((draws == 1).float().mean().item() - 1 / (1 + np.exp(-1))) < 0.03
    hot = torch.cat([make_sampler(2, 100.0, generator=gen)(logits) for _ in range(4000)]).flatten()
    assert abs((hot == 1).float().mean().item() - 0.5) < 0.03  # high temperature flattens


def test_guidance_formula():
    cond, uncond = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    assert guide(torch.cat([cond, uncond]), 1.5).tolist() == [[2.5, -0.5]]


def test_config_validation(tiny):
    with pytest.raises(ValueError, match="cfg_scale must be >= 1.0"):
        _run(tiny, GenerationConfig(cfg_scale=0.5))
    with pytest.raises(ValueError, match="topk must be >= 1"):
        _run(tiny, GenerationConfig(topk=0))
    assert GenerationConfig(max_audio_length_ms=1000).num_frames() == 13  # rounded up to whole 80 ms frames
    with pytest.raises(ValueError, match="this model holds 512"):
        _run(tiny, GenerationConfig(max_frames=500))


def test_stops_at_audio_end_id(tiny, greedy):
    full = greedy[1.0]
    # declare an id the greedy run reaches to be the end id: generation must stop right before that frame
    eos = int(full[:, 4].max())
    first_hit = int(torch.nonzero((full >= eos).any(0))[0])
    gen_config = replace(tiny.gen_config, audio_eos_id=eos)
    bundle = replace(tiny, gen_config=gen_config)
    result = _run(bundle, GREEDY)
    assert result.stop_reason == "eos"
    assert torch.equal(result.tokens, full[:, :first_hit])


def test_cancellation(tiny, greedy):
    cancel = threading.Event()

    def stop_after_three(i, out):
        if i == 2:
            cancel.set()

    result = _run(tiny, GREEDY, cancel=cancel, on_frame=stop_after_three)
    assert result.stop_reason == "cancelled" and result.tokens.shape == (8, 3)
    assert torch.equal(result.tokens, greedy[1.0][:, :3])


@pytest.mark.parametrize("cfg_scale", [1.0, 1.5])
def test_continuation_extends_the_greedy_run(tiny, greedy, cfg_scale, tmp_path):
    """Greedy decoding is a deterministic chain: continuing from its first k frames must give the rest."""
    cfg = replace(GREEDY, cfg_scale=cfg_scale)
    full = greedy[cfg_scale]
    result = _run(tiny, replace(cfg, max_frames=2), history=full[:, :4])
    assert result.history_frames == 4 and result.new_frames == 2
    assert torch.equal(result.tokens, full)
    # filling the cache in pieces (the reference slot lands inside one of them) changes nothing
    chunked = _run(tiny, replace(cfg, max_frames=2), history=full[:, :4], prefill_chunk=7)
    assert torch.equal(chunked.tokens, full)
    path = tmp_path / "history.npy"
    np.save(path, full[:, :1].numpy().astype(np.int16))
    result = continue_from(tiny, TAGS, LYRICS, path, replace(cfg, max_frames=5), progress=False)
    assert torch.equal(result.tokens, full) and result.audio is None


def test_teacher_forced_logits_equal_cached_generation_logits(default_bundle):
    """Sampled frames (top-k 50) scored without caches see the logits generation saw with caches."""
    seen = []
    cfg = GenerationConfig(max_frames=4, topk=50, cfg_scale=1.0)
    result = _run(default_bundle, cfg, seed=3, on_frame=lambda i, o: seen.append(o))
    logits = frame_logits(default_bundle, result.tokens, TAGS, LYRICS)  # [T, 8, V]
    cached = torch.stack([torch.cat([o.c0_logits[0:1], o.ci_logits[:, 0]]) for o in seen])
    torch.testing.assert_close(logits, cached, atol=1e-4, rtol=1e-4)
    nll = frame_nll(default_bundle, result.tokens, TAGS, LYRICS)
    picked = torch.log_softmax(cached, -1).gather(-1, result.tokens.t().unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(nll, -picked.sum(1), atol=1e-3, rtol=1e-5)


def test_seeded_sampling_is_reproducible_and_valid(default_bundle):
    cfg = GenerationConfig(max_frames=3, topk=50, cfg_scale=1.5)
    a, b = _run(default_bundle, cfg, seed=11), _run(default_bundle, cfg, seed=11)
    assert torch.equal(a.tokens, b.tokens) and a.tokens.shape == (8, 3)
    assert int(a.tokens.max()) < 8192  # special ids are never emitted as codes
    assert not torch.equal(a.tokens, _run(default_bundle, cfg, seed=12).tokens)


def test_bf16_generation_runs(fixtures_dir):
    bundle = load_mula(fixtures_dir / "heartmula-tiny", dtype=torch.bfloat16)
    result = _run(bundle, replace(GREEDY, max_frames=3, cfg_scale=1.5))
    assert result.tokens.shape == (8, 3) and result.tokens.dtype == torch.int64


def test_token_files(tmp_path):
    tokens = np.arange(8 * 10).reshape(8, 10) % 64
    for name, array in [("a.npy", tokens), ("b.npy", tokens.T), ("c.npy", tokens.astype(np.int16))]:
        np.save(tmp_path / name, array)
        assert torch.equal(load_token_file(tmp_path / name), torch.from_numpy(tokens).long())
    np.save(tmp_path / "square.npy", tokens[:, :8])  # 8 x 8 is read as [8, T]
    assert torch.equal(load_token_file(tmp_path / "square.npy"), torch.from_numpy(tokens[:, :8]).long())
    np.save(tmp_path / "bad_shape.npy", np.zeros((7, 10), dtype=np.int16))
    with pytest.raises(ValueError, match=r"bad_shape.npy: expected tokens shaped \[8, T\] or \[T, 8\]"):
        load_token_file(tmp_path / "bad_shape.npy")
    np.save(tmp_path / "float.npy", np.zeros((8, 10), dtype=np.float32))
    with pytest.raises(ValueError, match="float.npy: expected integer codes"):
        load_token_file(tmp_path / "float.npy")
    np.save(tmp_path / "range.npy", tokens + 60)
    with pytest.raises(ValueError, match=r"range.npy: codes must lie in \[0, 64\)"):
        load_token_file(tmp_path / "range.npy", codebook_size=64)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="junk.npy: not a readable .npy token file"):
        load_token_file(tmp_path / "junk.npy")
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        load_history(tmp_path / "missing.wav")


@pytest.mark.slow
def test_history_from_audio_with_an_encoder(default_bundle, tmp_path):
    from heartcodec_lab.audio import save_audio
    from heartcodec_lab.codec import RANDOM_CODEC, load_codec
    from heartcodec_lab.data.synth import synth_music

    codec = load_codec(RANDOM_CODEC)
    path = tmp_path / "clip.wav"
    save_audio(path, synth_music(1.0, seed=1), 48000)
    with pytest.raises(ValueError, match="clip.wav: continuing from audio needs a codec"):
        load_history(path)
    history = load_history(path, codec, "projection")
    assert history.shape == (8, 13) and history.dtype == torch.int64  # int(1 s * 12.5) + 1 frames
    result = _run(default_bundle, GenerationConfig(max_frames=2, topk=50), history=history, seed=0)
    assert torch.equal(result.tokens[:, :13], history) and result.tokens.shape == (8, 15)
