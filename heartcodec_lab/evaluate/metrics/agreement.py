"""Token agreement between two ``[Q, T]`` token arrays (encoder vs reference, tokens vs round trip).

Match counts are kept as integers so that figures over many items are exact
frame-weighted rates (sum of matches / sum of frames), not means of means.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_numpy(tokens) -> np.ndarray:
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.detach().cpu().numpy()
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be [Q, T], got shape {tokens.shape}")
    return tokens.astype(np.int64)


def match_counts(tokens: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor) -> dict:
    """Exact match counts over the common frames of two ``[Q, T]`` arrays.

    Returns ``frames`` (common length), ``per_quantizer`` ``[Q]`` (frames where quantizer q agrees)
    and ``first_k`` ``[Q]`` (frames where quantizers 0..k all agree, k = 0..Q-1).
    """
    a, b = _as_numpy(tokens), _as_numpy(reference)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"quantizer counts differ: {a.shape[0]} vs {b.shape[0]}")
    n = min(a.shape[1], b.shape[1])
    equal = a[:, :n] == b[:, :n]  # [Q, n]
    prefix = np.cumprod(equal, axis=0).astype(bool)  # prefix[k, t]: quantizers 0..k all agree at t
    return {"frames": int(n), "per_quantizer": equal.sum(1).tolist(), "first_k": prefix.sum(1).tolist()}


def match_rates(counts: dict) -> dict:
    """Counts from :func:`match_counts` (or their sums) -> ``match_rate`` and ``match_rate_first_k`` lists in [0, 1]."""
    frames = max(int(counts["frames"]), 1)
    return {
        "match_rate": [c / frames for c in counts["per_quantizer"]],
        "match_rate_first_k": [c / frames for c in counts["first_k"]],
    }


def token_agreement(tokens, reference) -> dict:
    """``[Q, T]`` vs ``[Q, T]`` -> frames, per-quantizer match rate and first-k match rate."""
    counts = match_counts(tokens, reference)
    return {"frames": counts["frames"], **match_rates(counts)}


def sum_match_counts(items: list[dict]) -> dict:
    """Add up several :func:`match_counts` results (for frame-weighted totals)."""
    if not items:
        raise ValueError("no match counts to add")
    return {
        "frames": sum(int(c["frames"]) for c in items),
        "per_quantizer": np.sum([c["per_quantizer"] for c in items], axis=0).tolist(),
        "first_k": np.sum([c["first_k"] for c in items], axis=0).tolist(),
    }


def level_agreement(pairs) -> dict:
    """Per-level agreement of an encoder with a reference over several items, frame-weighted.

    ``pairs``: ``(tokens [Q, T], reference [Q, T'])`` per item (common frames only). Returns
    ``frames`` (all items), ``per_level`` ``[Q]`` (share of frames where level q agrees, each level
    on its own) and ``all_levels`` (share of frames where all Q levels agree: the exact token).
    """
    counts = [match_counts(tokens, reference) for tokens, reference in pairs]
    if not counts:
        raise ValueError("no token pairs to compare")
    rates = match_rates(sum_match_counts(counts))
    return {
        "frames": sum(c["frames"] for c in counts),
        "per_level": rates["match_rate"],
        "all_levels": rates["match_rate_first_k"][-1],
    }
