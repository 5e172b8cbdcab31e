"""Codebook usage from exact code counts: the one place it is computed (evaluation reports, training logs).

Everything here works on ``counts[Q, K]`` (int64): how often each of the ``K`` codes of
each of the ``Q`` quantizers occurs in a set of token arrays. Statistics are computed
from the counts alone, so a run can be resumed or merged by adding counts.
"""

from __future__ import annotations

import math

import numpy as np

#: the statistics :func:`quantizer_usage` gives per quantizer, in report order
USAGE_KEYS = ("used_codes", "dead_codes", "utilization", "entropy_bits", "normalized_entropy", "perplexity")


def count_codes(tokens: np.ndarray, codebook_size: int, pad_id: int | None = None) -> np.ndarray:
    """Exact code counts of one token array.

    tokens: integer ``[Q, T]``; ``pad_id`` (if given) is excluded before counting.
    Returns int64 ``[Q, codebook_size]``. Raises ``ValueError`` on codes outside
    ``0..codebook_size-1`` (after removing padding).
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be [Q, T], got shape {tokens.shape}")
    counts = np.zeros((tokens.shape[0], codebook_size), dtype=np.int64)
    for q, row in enumerate(tokens.astype(np.int64)):
        if pad_id is not None:
            row = row[row != pad_id]
        if row.size == 0:
            continue
        lo, hi = int(row.min()), int(row.max())
        if lo < 0 or hi >= codebook_size:
            raise ValueError(
                f"quantizer {q} has codes in [{lo}, {hi}], outside 0..{codebook_size - 1} (wrong codebook_size or pad_id?)"
            )
        counts[q] += np.bincount(row, minlength=codebook_size)
    return counts


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy in bits of one count vector ``[K]`` (0.0 for an empty vector)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return max(0.0, float(-(p * np.log2(p)).sum()))  # max: a single code gives -0.0


def quantizer_usage(counts: np.ndarray) -> dict:
    """Usage statistics of one quantizer from its counts ``[K]``.

    ``normalized_entropy`` divides by log2(K) (13 bits for the released 8192 codes),
    ``perplexity`` = 2^H is the effective number of equally used codes.
    """
    counts = np.asarray(counts)
    k = counts.shape[-1]
    used = int((counts > 0).sum())
    h = entropy_bits(counts)
    return {
        "tokens": int(counts.sum()),
        "used_codes": used,
        "dead_codes": k - used,
        "utilization": used / k,
        "entropy_bits": h,
        "normalized_entropy": h / math.log2(k) if k > 1 else 0.0,
        "perplexity": 2.0**h,
    }


def codebook_usage(counts: np.ndarray) -> list[dict]:
    """Per-quantizer usage for ``counts[Q, K]``: a list of :func:`quantizer_usage` dicts."""
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"counts must be [Q, K], got shape {counts.shape}")
    return [quantizer_usage(row) for row in counts]


def rank_frequency(counts: np.ndarray) -> np.ndarray:
    """Relative frequencies sorted from most to least used: ``[Q, K]`` float64 (rows sum to 1 or 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(-1, keepdims=True)
    freqs = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    return -np.sort(-freqs, axis=-1)
