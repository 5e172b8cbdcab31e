"""Held-out quality of the miniature HeartCodec (true encoder -> tokens -> detokenize) next to baselines.

Held-out pieces use seeds and General-MIDI programs the training never saw
(:func:`heartcodec_lab.minicodec.data.held_out_pieces`). Rows:

* ``minicodec``: the shipped (or ``--codec``/``--encoder``) miniature, true encoder -> RVQ -> detokenize;
* ``minicodec stage 1``: its ScalarModel alone (encode -> round to ninths -> decode), the ceiling of stage 2;
* ``random codec``: the random-weight embedded tiny codec with its embedded encoder;
* ``other piece``: a different held-out piece scaled to the same integrated loudness.

Metrics: chroma similarity and onset-envelope correlation (higher is better), log-mel L1 and
multi-scale STFT distance (lower is better), averaged over pieces.

    python benchmarks/bench_minicodec.py [--pieces 4] [--seconds 8] [--codec DIR --encoder DIR] [--json FILE]
        [--projection NAME=DIR ...]   # also: projection checkpoints trained against the miniature, with their
                                      # per-level and first-k token agreement with its true encoder
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from heartcodec_lab.codec import load_codec
from heartcodec_lab.encoders import build_encoder
from heartcodec_lab.evaluate.metrics.audio import log_mel_l1, loudness_lufs, mstft_distance
from heartcodec_lab.evaluate.metrics.music import chroma_similarity, onset_corr
from heartcodec_lab.minicodec.data import held_out_pieces
from heartcodec_lab.minicodec.quality import scalar_roundtrip

SR = 48000
METRICS = ("chroma_similarity", "onset_correlation", "log_mel_l1", "mstft_distance")


def metrics(ref: torch.Tensor, est: torch.Tensor) -> dict[str, float]:
    return {
        "chroma_similarity": chroma_similarity(ref, est, SR),
        "onset_correlation": onset_corr(ref, est, SR),
        "log_mel_l1": log_mel_l1(ref, est, SR),
        "mstft_distance": mstft_distance(ref, est),
    }


def same_loudness(reference: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    gain_db = loudness_lufs(reference, SR) - loudness_lufs(other, SR)
    return other * 10 ** (gain_db / 20) if math.isfinite(gain_db) else other


def roundtrip(codec, encoder, audio: torch.Tensor, seed: int) -> torch.Tensor:
    tokens = encoder.encode(audio, SR).tokens
    torch.manual_seed(seed)
    return codec.detokenize(tokens)


def run(pieces: int, seconds: float, codec_dir, encoder_dir, seed: int, plot: str | None = None,
        projections: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    audio = held_out_pieces(pieces, seconds)
    mini = load_codec(codec_dir) if codec_dir else None
    if mini is None:
        from heartcodec_lab.codec.miniature import load_minicodec

        mini = load_minicodec()
    mini_enc = build_encoder("minicodec", encoder_dir, mini)
    from heartcodec_lab.codec.default import build_default_codec
    from heartcodec_lab.codec.loading import finalize

    rand = finalize(build_default_codec(), "cpu", torch.float32)
    rand_enc = build_encoder("official", None, rand)
    rows: dict[str, list[dict]] = {"minicodec": [], "minicodec stage 1": [], "random codec": [], "other piece": []}
    extra = {name: build_encoder("projection", path, mini) for name, path in (projections or {}).items()}
    agreement: dict[str, list[dict]] = {name: [] for name in extra}
    for i, piece in enumerate(audio):
        if extra:
            from heartcodec_lab.evaluate.metrics.agreement import match_counts

            true_tokens = mini_enc.encode(piece, SR).tokens
            for name, enc in extra.items():
                agreement[name].append(match_counts(enc.encode(piece, SR).tokens, true_tokens))
                rows.setdefault(name, []).append(metrics(piece, roundtrip(mini, enc, piece, seed)))
        outs = {
            "minicodec": roundtrip(mini, mini_enc, piece, seed),
            "minicodec stage 1": scalar_roundtrip(mini.scalar_model, piece),
            "random codec": roundtrip(rand, rand_enc, piece, seed),
            "other piece": same_loudness(piece, audio[(i + 1) % len(audio)]),
        }
        for name, est in outs.items():
            rows[name].append(metrics(piece, est))
        if plot and i == 0:
            from heartcodec_lab.evaluate.plots import spectrogram_comparison

            # the random codec is left out: its loud noise would set the colour scale for all panels
            panels = {"original (held-out)": piece} | {k: outs[k] for k in ("minicodec", "minicodec stage 1")}
            spectrogram_comparison(panels, SR, plot, title="held-out piece: original and reconstructions")
    table = {name: {m: sum(r[m] for r in rs) / len(rs) for m in METRICS} for name, rs in rows.items()}
    if extra:
        from heartcodec_lab.evaluate.metrics.agreement import match_rates, sum_match_counts

        for name, counts in agreement.items():
            rates = match_rates(sum_match_counts(counts))
            table[name]["match_rate"] = rates["match_rate"]
            table[name]["match_rate_first_k"] = rates["match_rate_first_k"]
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pieces", type=int, default=4)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--codec", default=None, help="codec folder (default: the shipped miniature)")
    p.add_argument("--encoder", default=None, help="true-encoder folder (default: the shipped one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None, help="PNG of spectrograms of the first piece")
    p.add_argument("--projection", action="append", default=[], metavar="NAME=DIR",
                   help="a projection checkpoint trained against the miniature (repeatable)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    projections = dict(item.split("=", 1) for item in a.projection)
    table = run(a.pieces, a.seconds, a.codec, a.encoder, a.seed, a.plot, projections)
    print(f"held-out: {a.pieces} pieces x {a.seconds:g} s (unseen seeds and programs), {time.time() - t0:.0f} s")
    print(f"| {'':18} | " + " | ".join(f"{m:>17}" for m in METRICS) + " |")
    print(f"| {'-' * 18} | " + " | ".join("-" * 17 for _ in METRICS) + " |")
    for name, row in table.items():
        print(f"| {name:18} | " + " | ".join(f"{row[m]:17.3f}" for m in METRICS) + " |")
    for name, row in table.items():
        if "match_rate" in row:
            levels = " ".join(f"{r:.2f}" for r in row["match_rate"])
            print(f"{name}: token match with the true encoder per level [{levels}], first quantizer "
                  f"{row['match_rate'][0]:.3f}, all 8 {row['match_rate_first_k'][-1]:.3f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(table, fh, indent=2)


if __name__ == "__main__":
    main()
