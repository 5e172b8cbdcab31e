"""Held-out scoring against the miniature HeartCodec (the library behind ``benchmarks/bench_minicodec.py``
and ``benchmarks/rank_recipes.py``).

Pieces are ``[N, 2, S]`` float32 at 48 kHz (``heartcodec_lab.minicodec.data.held_out_pieces``);
an encoder is anything with ``encode(audio [2, S], sr).tokens -> [8, T]`` (``heartcodec_lab.encoders``).
Every encoder's tokens go through the same frozen codec's ``detokenize`` with the same noise seed, so
rows differ only by their tokens. Reconstruction metrics are means over pieces; token agreement with
the true encoder is frame-weighted over all pieces (``level_agreement``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from heartcodec_lab.evaluate.metrics.agreement import level_agreement
from heartcodec_lab.evaluate.metrics.audio import log_mel_l1, loudness_lufs, mstft_distance
from heartcodec_lab.evaluate.metrics.music import chroma_similarity, onset_corr

SR = 48000
METRICS = ("chroma_similarity", "onset_correlation", "log_mel_l1", "mstft_distance")


def metrics(ref: torch.Tensor, est: torch.Tensor) -> dict[str, float]:
    """Reconstruction metrics of ``est`` against ``ref`` (both ``[2, S]``)."""
    return {
        "chroma_similarity": chroma_similarity(ref, est, SR),
        "onset_correlation": onset_corr(ref, est, SR),
        "log_mel_l1": log_mel_l1(ref, est, SR),
        "mstft_distance": mstft_distance(ref, est),
    }


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    return {m: sum(r[m] for r in rows) / len(rows) for m in METRICS}


def same_loudness(reference: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    gain_db = loudness_lufs(reference, SR) - loudness_lufs(other, SR)
    return other * 10 ** (gain_db / 20) if math.isfinite(gain_db) else other


def detokenize(codec, tokens: torch.Tensor, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)  # the same flow-matching noise for every encoder's tokens
    return codec.detokenize(tokens)


def roundtrip(codec, encoder, audio: torch.Tensor, seed: int) -> torch.Tensor:
    return detokenize(codec, encoder.encode(audio, SR).tokens, seed)


def load_miniature(codec_dir: str | None = None, encoder_dir: str | None = None):
    """(codec, true encoder) of the miniature: the shipped one unless folders are given."""
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.encoders import build_encoder

    if codec_dir:
        codec = load_codec(codec_dir)
    else:
        from heartcodec_lab.codec.miniature import load_minicodec

        codec = load_minicodec()
    return codec, build_encoder("minicodec", encoder_dir, codec)


def shipped_miniature_dirs() -> tuple[Path, Path]:
    """(codec folder, true-encoder folder) of the miniature shipped in the package."""
    from heartcodec_lab.codec.miniature import shipped_codec_dir, shipped_encoder_dir

    return Path(shipped_codec_dir()), Path(shipped_encoder_dir())


@torch.no_grad()
def score_encoders(
    codec, true_encoder, encoders: dict, pieces: torch.Tensor, seed: int = 0, true_name: str = "true encoder"
) -> dict[str, dict]:
    """Score the true encoder and ``encoders`` (name -> encoder) on ``pieces`` through ``codec``.

    Returns ``{name: {<METRICS>: mean over pieces, "agreement": level_agreement vs the true encoder}}``,
    the true encoder first (its agreement is 1 by construction).
    """
    names = [true_name, *encoders]
    recon: dict[str, list] = {n: [] for n in names}
    pairs: dict[str, list] = {n: [] for n in names}
    for piece in pieces:
        truth = true_encoder.encode(piece, SR).tokens
        for name in names:
            tokens = truth if name == true_name else encoders[name].encode(piece, SR).tokens
            pairs[name].append((tokens, truth))
            recon[name].append(metrics(piece, detokenize(codec, tokens, seed)))
    return {n: {**mean_metrics(recon[n]), "agreement": level_agreement(pairs[n])} for n in names}


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table; the first column is left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return (
            "| "
            + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
            + " |"
        )

    rule = "| " + " | ".join("-" * w if i == 0 else "-" * (w - 1) + ":" for i, w in enumerate(widths)) + " |"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def agreement_cells(agreement: dict) -> list[str]:
    """Per-level agreement q0..q7 and the all-levels exact match, as percent strings."""
    return [f"{100 * r:.1f}" for r in agreement["per_level"]] + [f"{100 * agreement['all_levels']:.1f}"]


def agreement_header(levels: int = 8) -> list[str]:
    return [f"q{q} %" for q in range(levels)] + [f"all {levels} %"]


METRIC_HEADER = ["chroma", "onset corr", "log-mel L1", "MSTFT"]


def metric_cells(row: dict) -> list[str]:
    return [f"{row[m]:.3f}" for m in METRICS]
