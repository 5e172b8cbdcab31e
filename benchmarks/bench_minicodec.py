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
                                      # per-level (q0..q7) and all-8 token agreement with its true encoder
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from minicodec_eval import (  # noqa: E402  (sibling module of the benchmarks folder)
    METRIC_HEADER,
    SR,
    agreement_cells,
    agreement_header,
    load_miniature,
    markdown_table,
    mean_metrics,
    metric_cells,
    metrics,
    roundtrip,
    same_loudness,
    score_encoders,
)

from heartcodec_lab.encoders import build_encoder  # noqa: E402
from heartcodec_lab.minicodec.data import held_out_pieces  # noqa: E402
from heartcodec_lab.minicodec.quality import scalar_roundtrip  # noqa: E402


def run(pieces: int, seconds: float, codec_dir, encoder_dir, seed: int, plot: str | None = None,
        projections: dict[str, str] | None = None) -> dict[str, dict]:
    """``{row: {<METRICS>...}}``; the miniature and each projection row also hold ``agreement``
    (``level_agreement`` with the true encoder's tokens)."""
    audio = held_out_pieces(pieces, seconds)
    mini, mini_enc = load_miniature(codec_dir, encoder_dir)
    from heartcodec_lab.codec.loading import finalize
    from heartcodec_lab.codec.random_codec import build_random_codec

    rand = finalize(build_random_codec(), "cpu", torch.float32)
    rand_enc = build_encoder("official", None, rand)
    extra = {name: build_encoder("projection", path, mini) for name, path in (projections or {}).items()}
    scored = score_encoders(mini, mini_enc, extra, audio, seed, true_name="minicodec")
    rows: dict[str, list[dict]] = {"minicodec stage 1": [], "random codec": [], "other piece": []}
    for i, piece in enumerate(audio):
        outs = {
            "minicodec stage 1": scalar_roundtrip(mini.scalar_model, piece),
            "random codec": roundtrip(rand, rand_enc, piece, seed),
            "other piece": same_loudness(piece, audio[(i + 1) % len(audio)]),
        }
        for name, est in outs.items():
            rows[name].append(metrics(piece, est))
        if plot and i == 0:
            from heartcodec_lab.evaluate.plots import spectrogram_comparison

            # the random codec is left out: its loud noise would set the colour scale for all panels
            panels = {"original (held-out)": piece, "minicodec": roundtrip(mini, mini_enc, piece, seed),
                      "minicodec stage 1": outs["minicodec stage 1"]}
            spectrogram_comparison(panels, SR, plot, title="held-out piece: original and reconstructions")
    baselines = {name: mean_metrics(rs) for name, rs in rows.items()}
    return {"minicodec": scored.pop("minicodec"), **baselines, **scored}


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
    print(markdown_table(["", *METRIC_HEADER], [[name, *metric_cells(row)] for name, row in table.items()]))
    if projections:
        print("\ntoken agreement with the true encoder, per level (each on its own) and all 8 exact:")
        print(markdown_table(["", *agreement_header()],
                             [[name, *agreement_cells(row["agreement"])] for name, row in table.items()
                              if "agreement" in row]))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(table, fh, indent=2)


if __name__ == "__main__":
    main()
