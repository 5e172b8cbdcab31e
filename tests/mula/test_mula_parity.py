"""Parity of the HeartMuLa stack with the tiny fixtures made by the original code."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from heartcodec_lab.mula import GenerationConfig, build_prompt, frame_nll, generate, generate_tokens, load_mula
from heartcodec_lab.mula.prompt import batch_for_guidance

TAGS = "Piano,Happy,Upbeat"
LYRICS = (
    "[Verse]\nThe sun creeps in across the floor\nI hear the traffic outside the door\n\n"
    "[Chorus]\nEvery day the light returns"
)


@pytest.fixture(scope="module")
def bundle(fixtures_dir):
    """The published-style sharded folder, picked by its version string."""
    return load_mula(fixtures_dir / "ckpt-tiny", device="cpu", version="tiny")


@pytest.fixture(scope="module")
def expected(fixtures_dir):
    return load_file(fixtures_dir / "expected" / "mula_generate.safetensors")


def test_tokenizer_ids_match_fixture(bundle, fixtures_dir):
    check = json.loads((fixtures_dir / "tiny_configs.json").read_text())["tokenizer"]["check"]
    assert bundle.tokenizer.encode("<tag>piano,happy,upbeat</tag>").ids == check["tags_ids"]
    assert bundle.tokenizer.encode(LYRICS.lower()).ids == check["lyrics_ids"]


@pytest.mark.parametrize("cfg", ["1_0", "1_5"])
def test_prompt_matches_preprocess(bundle, fixtures_dir, cfg):
    exp = load_file(fixtures_dir / "expected" / "mula_preprocess.safetensors")
    prompt = build_prompt(bundle.tokenizer, bundle.gen_config, TAGS, LYRICS)
    guided = cfg != "1_0"
    assert torch.equal(batch_for_guidance(prompt.tokens, guided), exp[f"cfg{cfg}_tokens"])
    assert torch.equal(batch_for_guidance(prompt.mask, guided), exp[f"cfg{cfg}_tokens_mask"])
    assert [prompt.reference_index] * (2 if guided else 1) == exp[f"cfg{cfg}_muq_idx"].tolist()
    assert len(prompt) == exp[f"cfg{cfg}_pos"].shape[1]


def test_plain_and_sharded_checkpoints_hold_the_same_weights(bundle, fixtures_dir):
    plain = load_mula(fixtures_dir / "heartmula-tiny", device="cpu")
    a, b = plain.model.state_dict(), bundle.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("cfg_scale,key", [(1.0, "cfg1_0"), (1.5, "cfg1_5")])
def test_greedy_frames_and_logits(bundle, expected, cfg_scale, key):
    c0, ci = [], []

    def record(i, out):
        c0.append(out.c0_logits)
        ci.append(out.ci_logits)

    cfg = GenerationConfig(max_frames=9, topk=1, temperature=1.0, cfg_scale=cfg_scale)
    result = generate_tokens(bundle, TAGS, LYRICS, cfg, progress=False, on_frame=record)
    assert result.stop_reason == "max_length"
    assert torch.equal(result.tokens, expected[f"{key}_frames"].long())
    torch.testing.assert_close(torch.stack(c0), expected[f"{key}_c0_logits"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.stack(ci), expected[f"{key}_ci_logits"], atol=1e-5, rtol=1e-4)


def test_teacher_forced_nll_matches_reference_logits(bundle, expected):
    frames = expected["cfg1_0_frames"].long()  # [8, 9]
    logits = torch.cat([expected["cfg1_0_c0_logits"][:, 0:1], expected["cfg1_0_ci_logits"][:, :, 0]], dim=1)
    reference = -torch.log_softmax(logits, -1).gather(-1, frames.t().unsqueeze(-1)).squeeze(-1).sum(1)
    nll = frame_nll(bundle, frames, TAGS, LYRICS)
    assert nll.shape == (9,) and nll.dtype == torch.float32
    torch.testing.assert_close(nll, reference, atol=1e-4, rtol=1e-5)


def test_end_to_end_wav(bundle, fixtures_dir):
    from heartcodec_lab.codec import load_codec

    exp = load_file(fixtures_dir / "expected" / "e2e_wav.safetensors")
    codec = load_codec(fixtures_dir / "ckpt-tiny" / "HeartCodec-oss")
    torch.manual_seed(777)  # generation samples from its own generator: the codec's draws stay as in the fixture
    cfg = GenerationConfig(max_frames=9, topk=1, cfg_scale=1.5)
    result = generate(bundle, TAGS, LYRICS, cfg, codec=codec, progress=False, seed=0)
    assert torch.equal(result.tokens, exp["frames"].long())
    assert result.audio.shape == exp["wav"].shape == (2, 9 * 3840)
    torch.testing.assert_close(result.audio, exp["wav"], atol=1e-4, rtol=0)
