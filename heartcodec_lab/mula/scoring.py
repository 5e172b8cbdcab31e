"""Teacher-forced likelihood of a token sequence under HeartMuLa.

The sequence is laid out exactly as in generation (prompt, then one row per
frame) and run once through the backbone without a KV cache; the decoder then
scores the 8 codebooks of every frame in parallel, given the backbone state
before the frame and the frame's lower codebooks. No guidance is applied: this
is the conditional model ``p(frame_t | tags, lyrics, frames_<t)``.
"""

from __future__ import annotations

import torch

from heartcodec_lab.mula.generation import check_codes
from heartcodec_lab.mula.loading import MulaBundle
from heartcodec_lab.mula.prompt import audio_rows, build_prompt


@torch.no_grad()
def frame_logits(bundle: MulaBundle, tokens: torch.Tensor, tags: str, lyrics: str, chunk: int = 256) -> torch.Tensor:
    """Teacher-forced logits: tokens int ``[8, T]`` -> float32 ``[T, 8, V]`` (V = audio vocab, 8197 released)."""
    model, gen = bundle.model, bundle.gen_config
    codes = check_codes(torch.as_tensor(tokens), bundle.config.codebook_size, "tokens to score")
    n = codes.shape[1]
    if n == 0:
        raise ValueError("tokens to score: no frames")
    prompt = build_prompt(bundle.tokenizer, gen, tags, lyrics)
    frames = codes.t().to(model.device)  # [T, 8]
    # the last frame is only predicted, never fed
    rows, mask = audio_rows(frames[:-1], gen.empty_id)
    rows = torch.cat([prompt.tokens.to(model.device), rows])
    mask = torch.cat([prompt.mask.to(model.device), mask])
    if rows.shape[0] > model.max_seq_len:
        raise ValueError(
            f"tokens to score: prompt ({len(prompt)}) + {n} frames need {rows.shape[0]} positions, "
            f"the model holds {model.max_seq_len}"
        )
    h = model.embed_tokens(rows.unsqueeze(0), mask.unsqueeze(0))
    h[:, prompt.reference_index] = model.reference_slot(1, None)
    hidden = model.backbone_hidden(h)[0]  # [L + T - 1, D]
    before = hidden[len(prompt) - 1 :]  # state before frame t, [T, D]
    out = [model.codebook_logits(before[s : s + chunk], frames[s : s + chunk]) for s in range(0, n, chunk)]
    return torch.cat(out).float().cpu()


def frame_nll(bundle: MulaBundle, tokens: torch.Tensor, tags: str, lyrics: str) -> torch.Tensor:
    """Negative log-likelihood per frame in nats, summed over the 8 codebooks: float32 ``[T]``.

    The softmax runs over the whole audio vocabulary (codes and special ids);
    divide by 8 for nats per token, by ``8 * ln 2`` for bits per token.
    """
    codes = check_codes(torch.as_tensor(tokens), bundle.config.codebook_size, "tokens to score")
    logits = frame_logits(bundle, codes, tags, lyrics)  # [T, 8, V]
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, codes.t().unsqueeze(-1)).squeeze(-1)  # [T, 8]
    return (-picked.sum(dim=1)).float()


def next_token_agreement(reference, other, tags: str, lyrics: str, max_frames: int, seed: int = 0) -> dict:
    """How often ``other`` (say a bf16 copy) picks the same next token as ``reference`` on a sequence
    ``reference`` generated itself: ``{frames, next_token_agreement (fraction), max_logit_difference}``."""
    from heartcodec_lab.mula.generation import GenerationConfig, generate_tokens

    config = GenerationConfig(max_frames=max_frames, topk=50, cfg_scale=1.0)
    tokens = generate_tokens(reference, tags, lyrics, config, progress=False, seed=seed).tokens
    ref, got = frame_logits(reference, tokens, tags, lyrics), frame_logits(other, tokens, tags, lyrics)
    return {
        "frames": tokens.shape[1],
        "next_token_agreement": (ref.argmax(-1) == got.argmax(-1)).float().mean().item(),
        "max_logit_difference": (ref - got).abs().max().item(),
    }
