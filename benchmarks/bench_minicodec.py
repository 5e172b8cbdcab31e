"""Held-out quality of the miniature HeartCodec next to baselines, its codebook-depth curve and a tone probe.

Held-out pieces use seeds and General-MIDI programs the training never saw. Table rows: the
miniature's full round trip (true encoder -> tokens -> detokenize), its ScalarModel alone, the
random-weight codec, an unrelated held-out piece at the same loudness; ``--old-codec/--old-encoder``
adds another miniature's rows (old vs new). Then the depth curve (decoding from the first k levels)
and the tone probe (pyin pitch of steady harmonic tones, error in cents). The logic is
:mod:`heartcodec_lab.minicodec.report`; this file only parses and prints.

    python benchmarks/bench_minicodec.py [--pieces 4] [--seconds 8] [--codec DIR --encoder DIR]
        [--old-codec DIR --old-encoder DIR] [--train-run RUN_DIR] [--stage1-checkpoint PT ...]
        [--no-depth] [--no-tones] [--plot PNG] [--json FILE] [--projection NAME=DIR ...]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from heartcodec_lab.minicodec.data import held_out_pieces
from heartcodec_lab.minicodec.report import (
    checkpoint_rows,
    depth_curve,
    held_out_table,
    model_rows,
    tone_probe,
    training_cpu_minutes,
    training_probes,
)
from heartcodec_lab.minicodec.scoring import (
    METRIC_HEADER,
    agreement_cells,
    agreement_header,
    load_miniature,
    markdown_table,
    metric_cells,
)

run = held_out_table  # the name earlier callers used


def _cents(x: float) -> str:
    return "unvoiced" if not math.isfinite(x) else f"{x:+.0f}"


def _num(x) -> str:
    return "-" if x is None else f"{x:.3g}" if abs(x) < 0.01 else f"{x:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pieces", type=int, default=4)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--codec", default=None, help="codec folder (default: the shipped miniature)")
    p.add_argument("--encoder", default=None, help="true-encoder folder (default: the shipped one)")
    p.add_argument("--old-codec", default=None, help="another miniature's codec folder, for old-vs-new rows")
    p.add_argument("--old-encoder", default=None)
    p.add_argument(
        "--train-run", default=None, help="a training run folder: print its recorded CPU minutes and held-out probes"
    )
    p.add_argument(
        "--stage1-checkpoint",
        action="append",
        default=[],
        metavar="PT",
        help="a stage-1 training checkpoint: a row of its ScalarModel alone (repeatable)",
    )
    p.add_argument("--no-depth", action="store_true")
    p.add_argument("--no-tones", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None, help="PNG of spectrograms of the first piece")
    p.add_argument(
        "--projection",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a projection checkpoint trained against the miniature (repeatable)",
    )
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    projections = dict(item.split("=", 1) for item in a.projection)
    models = {"minicodec": load_miniature(a.codec, a.encoder)}
    if a.old_codec:
        models["old"] = load_miniature(a.old_codec, a.old_encoder)
    panels = {"old minicodec": models["old"]} if a.old_codec else None
    table = held_out_table(a.pieces, a.seconds, a.codec, a.encoder, a.seed, a.plot, projections, panels)
    pieces = held_out_pieces(a.pieces, a.seconds)
    if a.old_codec:
        for name, row in model_rows(*models["old"], pieces, a.seed).items():
            table[f"old minicodec {name}"] = row
    table |= checkpoint_rows(a.stage1_checkpoint, pieces)
    result = {"table": table}
    print(f"held-out: {a.pieces} pieces x {a.seconds:g} s (unseen seeds and programs)")
    print(markdown_table(["", *METRIC_HEADER], [[name, *metric_cells(row)] for name, row in table.items()]))
    if projections:
        print("\ntoken agreement with the true encoder, per level (each on its own) and all 8 exact:")
        print(
            markdown_table(
                ["", *agreement_header()],
                [[name, *agreement_cells(row["agreement"])] for name, row in table.items() if "agreement" in row],
            )
        )
    if not a.no_depth:
        for name, (codec, enc) in models.items():
            curve = depth_curve(codec, enc, pieces, a.seed)
            result[f"depth {name}"] = curve
            gain = 1 - curve[-1]["log_mel_l1"] / curve[0]["log_mel_l1"]
            print(f"\ncodebook depth ({name}): first k levels; log-mel L1 with 8 is {100 * gain:.1f} % below 1")
            print(markdown_table(["levels k", *METRIC_HEADER], [[str(r["levels"]), *metric_cells(r)] for r in curve]))
    if not a.no_tones:
        for name, (codec, enc) in models.items():
            tones = tone_probe(codec, enc, seed=a.seed)
            result[f"tones {name}"] = tones
            print(
                f"\ntone probe ({name}): pyin pitch error in cents (harmonic tones, 2 s); share of the output's "
                "energy on the 25 Hz frame grid (1 = frame-periodic buzz)"
            )
            print(
                markdown_table(
                    ["tone Hz", "input", "round trip", "stage 1", "grid share round trip", "grid share stage 1"],
                    [
                        [
                            f"{r['freq_hz']:g}",
                            _cents(r["input_cents"]),
                            _cents(r["codec_cents"]),
                            _cents(r["stage1_cents"]),
                            f"{r['codec_grid_share']:.3f}",
                            f"{r['stage1_grid_share']:.3f}",
                        ]
                        for r in tones
                    ],
                )
            )
    if a.train_run:
        cpu = training_cpu_minutes(a.train_run)
        result["training_cpu_min"] = cpu
        print("\ntraining CPU minutes: " + (", ".join(f"{k} {v:.1f}" for k, v in cpu.items()) or "not recorded"))
        probes = training_probes(a.train_run)
        result["training_probes"] = probes
        for stage, rows in probes.items():
            keys = [k for k in rows[0] if k != "step"] if rows else []
            print(f"\n{stage} held-out probes during training ({stage}_eval.jsonl):")
            print(markdown_table(["step", *keys], [[str(r["step"]), *(_num(r.get(k)) for k in keys)] for r in rows]))
    print(f"\n({time.time() - t0:.0f} s wall)")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
