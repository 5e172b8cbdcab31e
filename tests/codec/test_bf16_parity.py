"""bf16 against float32 on the tiny fixture checkpoints (the bf16 paths a GPU user gets).

HeartMuLa runs in bf16 on capable GPUs by default (``dtype: auto``); HeartCodec only when forced
(``allow_low_precision=True``: estimator and ScalarModel in bf16, RVQ and conditioning float32).
Each limit is about 3x the largest difference measured on the 2-core AVX2 CPU this suite targets
(CPU bf16 kernels; a GPU rounds the same way to the same 8-bit mantissa), so a path that silently
falls back to the wrong precision somewhere (e.g. RoPE angles in bf16, a float32 input fed to a
bf16 layer without a cast, the RVQ cast down) fails, while honest bf16 rounding passes.
The models are the fixture files, named explicitly, so the embedded defaults may change freely.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from heartcodec_lab.codec import load_codec
from heartcodec_lab.mula import GenerationConfig, frame_logits, generate_tokens, load_mula, make_sampler

TAGS, LYRICS = "piano,happy", "[verse]\nthe sun creeps in across the floor"

# HeartMuLa tiny (random weights: logits within about +-2.2, std 0.56). Measured bf16 - float32:
# max |logit difference| 0.015 (mean 0.0026), max total-variation distance of a softmax 0.0022.
LOGIT_TOL = 0.05
PROB_TV_TOL = 0.01
# Top-k sampling with the same random numbers from bf16 and float32 logits: measured 99.75 % of 4000 draws
# equal (generation logits differed by 0.013); a draw differs only where the random number falls between the two probabilities.
SAMPLED_AGREEMENT = 0.98
# HeartCodec tiny, forced bf16. Measured: latents after 4 Euler steps (std 1.0, max 4.3) max 0.035,
# mean 0.0046; ScalarModel decode of the same latents (audio max 0.2, std 0.07) max 0.0039, mean 0.00074.
LATENT_MAX_TOL, LATENT_MEAN_TOL = 0.1, 0.015
AUDIO_MAX_TOL, AUDIO_MEAN_TOL = 0.012, 0.0025


@pytest.fixture(scope="module")
def mula_pair(fixtures_dir):
    path = fixtures_dir / "heartmula-tiny"
    return load_mula(path, dtype=torch.float32), load_mula(path, dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def codec_pair(fixtures_dir):
    path = fixtures_dir / "heartcodec-tiny"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the "forced to bf16" warning is tested elsewhere
        return load_codec(path), load_codec(path, dtype=torch.bfloat16, allow_low_precision=True)


def test_mula_bf16_logits_follow_float32(mula_pair):
    f32, bf16 = mula_pair
    assert bf16.model.dtype == torch.bfloat16
    tokens = generate_tokens(
        f32, TAGS, LYRICS, GenerationConfig(max_frames=12, topk=1, cfg_scale=1.0), progress=False
    ).tokens
    ref, low = frame_logits(f32, tokens, TAGS, LYRICS), frame_logits(bf16, tokens, TAGS, LYRICS)
    assert ref.shape == low.shape == (12, 8, 69)
    err = (ref - low).abs().max().item()
    assert err <= LOGIT_TOL, f"bf16 logits differ from float32 by {err:.3g} > {LOGIT_TOL}"
    tv = 0.5 * (ref.softmax(-1) - low.softmax(-1)).abs().sum(-1).max().item()
    assert tv <= PROB_TV_TOL, f"bf16 probabilities differ by total variation {tv:.3g} > {PROB_TV_TOL}"
    # the greedy pick is the same wherever float32 is not itself near a tie
    top2 = ref.topk(2, -1).values
    clear = (top2[..., 0] - top2[..., 1]) > 2 * LOGIT_TOL
    assert clear.sum() > 50  # the check below is not empty
    assert torch.equal(ref.argmax(-1)[clear], low.argmax(-1)[clear])


def test_mula_bf16_generation_sees_float32_logits_and_samples_alike(mula_pair):
    """The cached bf16 generation path sees the float32 model's teacher-forced logits (within the limit),
    and the sampler draws the same codes from either set of logits for the same random numbers."""
    f32, bf16 = mula_pair
    seen = []
    cfg = GenerationConfig(max_frames=10, topk=50, cfg_scale=1.0)
    tokens = generate_tokens(
        bf16, TAGS, LYRICS, cfg, progress=False, seed=1, on_frame=lambda i, out: seen.append(out)
    ).tokens
    assert tokens.shape[1] >= 6  # this seed samples no early end-of-audio
    low = torch.stack([torch.cat([o.c0_logits[0:1], o.ci_logits[:, 0]]) for o in seen])[: tokens.shape[1]]
    ref = frame_logits(f32, tokens, TAGS, LYRICS)
    err = (ref - low).abs().max().item()
    assert err <= LOGIT_TOL, f"bf16 generation logits differ from float32 by {err:.3g} > {LOGIT_TOL}"
    draws = []
    for logits in (ref, low):
        sampler = make_sampler(50, 1.0, generator=torch.Generator().manual_seed(0))
        draws.append(torch.cat([sampler(logits.reshape(-1, logits.shape[-1])) for _ in range(50)]))
    agreement = (draws[0] == draws[1]).float().mean().item()
    assert agreement >= SAMPLED_AGREEMENT, f"the same random numbers drew the same code for only {agreement:.1%}"


def test_codec_forced_bf16_latents_and_audio_follow_float32(codec_pair):
    f32, bf16 = codec_pair
    assert next(bf16.flow_matching.estimator.parameters()).dtype == torch.bfloat16
    assert bf16.quantizer.project_in.weight.dtype == torch.float32
    codes = torch.randint(0, 64, (8, 10), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    (ref,) = f32.generate_latents(codes, duration=7.44, num_steps=4)
    torch.manual_seed(0)
    (low,) = bf16.generate_latents(codes, duration=7.44, num_steps=4)
    assert low.dtype == torch.bfloat16 and ref.shape == low.shape
    diff = (ref - low.float()).abs()
    assert diff.max() <= LATENT_MAX_TOL and diff.mean() <= LATENT_MEAN_TOL, (diff.max().item(), diff.mean().item())
    # the ScalarModel decoder on the same (float32) latents: a short slice, bf16 convolutions are slow on CPU
    wav_ref = f32.decode_latents(ref[:, :8])
    wav_low = bf16.decode_latents(ref[:, :8].to(torch.bfloat16))
    assert wav_low.dtype == torch.float32 and wav_ref.shape == wav_low.shape == (2, 8 * 1920)
    diff = (wav_ref - wav_low).abs()
    assert diff.max() <= AUDIO_MAX_TOL and diff.mean() <= AUDIO_MEAN_TOL, (diff.max().item(), diff.mean().item())
