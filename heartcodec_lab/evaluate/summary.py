"""Aggregating per-item records into the figures of ``summary.json``."""

from __future__ import annotations

import numpy as np

from heartcodec_lab.codec.usage import USAGE_KEYS, codebook_usage
from heartcodec_lab.evaluate.metrics.agreement import match_rates, sum_match_counts

RECONSTRUCTION_METRICS = ("mstft_distance", "log_mel_l1", "si_sdr_db", "loudness_diff_lu", "shimmer_ratio_5_7khz")
# which way is better, for report tables
BETTER = {
    "mstft_distance": "lower",
    "log_mel_l1": "lower",
    "si_sdr_db": "higher",
    "loudness_diff_lu": "closer to 0",
    "shimmer_ratio_5_7khz": "closer to 1",
    "nll_per_frame_nats": "lower",
}


def describe_values(values) -> dict:
    """mean / median / std / min / max / n over the finite values (None and NaN skipped)."""
    finite = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"n": 0, "mean": None, "median": None, "std": None, "min": None, "max": None}
    return {
        "n": int(finite.size),
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "std": float(finite.std()),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def summarize_usage(counts: np.ndarray) -> dict:
    """``counts[Q, K]`` -> per-quantizer usage plus the mean over quantizers."""
    per_q = codebook_usage(counts)
    keys = USAGE_KEYS
    return {
        "codebook_size": int(counts.shape[1]),
        "tokens_per_quantizer": int(counts[0].sum()),
        "per_quantizer": per_q,
        "mean": {k: float(np.mean([q[k] for q in per_q])) for k in keys},
    }


def summarize_encoder(records: list[dict]) -> dict:
    """Records of one encoder (one per clip) -> reconstruction stats, agreement, round trip, NLL."""
    out: dict = {
        "clips": len(records),
        "frames": int(sum(r.get("frames", 0) for r in records)),
        "seconds": float(sum(r.get("duration_s", 0.0) for r in records)),
    }
    recon = [r["reconstruction"] for r in records if r.get("reconstruction")]
    if recon:
        out["reconstruction"] = {m: describe_values([x.get(m) for x in recon]) for m in RECONSTRUCTION_METRICS}
    for section in ("agreement", "roundtrip"):
        counts = [r[section] for r in records if r.get(section)]
        if counts:
            total = sum_match_counts(counts)
            out[section] = {"frames": total["frames"], **match_rates(total)}
    nll = [r["nll_per_frame_nats"] for r in records if r.get("nll_per_frame_nats") is not None]
    if nll:
        out["nll_per_frame_nats"] = describe_values(nll)
    timing = [r.get("seconds_total") for r in records if r.get("seconds_total") is not None]
    if timing:
        out["seconds_per_clip"] = describe_values(timing)
    return out
