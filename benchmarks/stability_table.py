"""Token stability of the miniature's true encoder, and the trade-off of stability-trained projections.

On held-out synthetic pieces (unseen seeds and programs, ``heartcodec_lab.minicodec.data.held_out_pieces``):

1. the true encoder against itself under every documented change (``heartcodec_lab.evaluate.stability``),
   per level q0-q7, all 8 exact, and the relative feature change in the RVQ's input space;
2. for each projection given (``--projection NAME=FOLDER``): agreement with the true encoder per level
   beside its ceiling (the true encoder's own agreement under -60 dB noise), relative feature error in
   the RVQ's input space, its own self-agreement under the changes (``--changes``), and reconstruction
   through the same ``detokenize`` with the same noise (log-mel L1, MSTFT, chroma, onsets).

    python benchmarks/stability_table.py [--pieces 4 --seconds 8] [--projection stable=outputs/.../projection ...]
        [--changes delay_1 noise_-60dB] [--out outputs/stability] [--threads 1]

Writes ``<out>/stability.md`` and ``<out>/stability.json``; prints the tables and the CPU seconds spent.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from heartcodec_lab.evaluate.stability import (
    CEILING_CHANGE,
    format_against_ceiling,
    measure_stability,
    relative_feature_error,
    stability_table,
)
from heartcodec_lab.minicodec.scoring import (
    METRIC_HEADER,
    agreement_cells,
    agreement_header,
    load_miniature,
    markdown_table,
    metric_cells,
    score_encoders,
)

REPO = Path(__file__).resolve().parents[1]
SR = 48000


def machine() -> str:
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        feats = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in text]
        flags = f"{model} ({', '.join(feats) or 'no AVX-512'})"
    except (OSError, StopIteration):
        flags = "unknown CPU"
    return f"{flags}, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s)"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pieces", type=int, default=4)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument(
        "--projection",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="an exported projection to compare (repeatable)",
    )
    p.add_argument(
        "--changes",
        nargs="+",
        default=["delay_1", "delay_half", CEILING_CHANGE],
        help="changes measured on the projections (the true encoder gets all)",
    )
    p.add_argument(
        "--truth-changes",
        nargs="+",
        default=None,
        help="changes measured on the true encoder (default: every documented change)",
    )
    p.add_argument("--no-reconstruction", action="store_true", help="skip detokenize (agreement and stability only)")
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "stability")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    from heartcodec_lab.encoders import build_encoder
    from heartcodec_lab.minicodec.data import held_out_pieces

    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    cpu0 = time.process_time()
    codec, truth = load_miniature()
    pieces = list(held_out_pieces(a.pieces, a.seconds))
    projections = {}
    for item in a.projection:
        name, _, folder = item.partition("=")
        if not folder:
            raise SystemExit(f"stability_table: --projection wants NAME=FOLDER, got {item!r}")
        projections[name] = build_encoder("projection", folder, codec)
    note = (
        f"held-out: {a.pieces} pieces x {a.seconds:g} s (unseen seeds and programs), seed {a.seed}; "
        f"machine: {machine()}"
    )
    result = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}, "machine": machine()}
    t0 = time.process_time()
    truth_changes = (
        None if a.truth_changes is None else list(dict.fromkeys([*a.truth_changes, *a.changes, CEILING_CHANGE]))
    )
    teacher = measure_stability(truth, pieces, SR, truth_changes, a.seed)
    result["true_encoder"] = teacher
    header, rows = stability_table(teacher)
    parts = [
        f"# Token stability\n\n{note}\n",
        "## The true encoder against itself\n",
        markdown_table(header, rows) + "\n",
    ]
    if teacher["skipped"]:
        parts.append("Skipped: " + "; ".join(f"{k} ({v})" for k, v in teacher["skipped"].items()) + "\n")
    parts.append(f"({time.process_time() - t0:.0f} CPU s)\n")
    ceiling = teacher["changes"][CEILING_CHANGE]["match_rate"]
    if projections:
        rows_a, rows_s, lines, scores = [], [], [], {}
        if not a.no_reconstruction:
            scores = score_encoders(codec, truth, projections, torch.stack(pieces), a.seed, true_name="true encoder")
        for name, enc in {"true encoder": truth, **projections}.items():
            own = teacher if enc is truth else measure_stability(enc, pieces, SR, a.changes, a.seed)
            error = 0.0 if enc is truth else relative_feature_error(enc, truth, pieces, SR)
            agreement = scores.get(name, {}).get("agreement")
            if agreement is None:
                from heartcodec_lab.evaluate.metrics.agreement import level_agreement

                agreement = level_agreement([(enc.tokenize(p, SR), truth.tokenize(p, SR)) for p in pieces])
            metrics = metric_cells(scores[name]) if name in scores else ["-"] * len(METRIC_HEADER)
            rows_a.append([name, *agreement_cells(agreement), f"{100 * error:.2f}", *metrics])
            rows_s.append(
                [name, *[" / ".join(f"{100 * r:.0f}" for r in own["changes"][c]["match_rate"][:4]) for c in a.changes]]
            )
            if enc is not truth:
                lines.append(f"- {name}: {format_against_ceiling(agreement['per_level'], ceiling, levels=range(5))}")
            result.setdefault("encoders", {})[name] = {
                "agreement": agreement,
                "feature_error": error,
                "stability": own["changes"],
                "metrics": scores.get(name),
            }
        parts += [
            "## Projections: agreement with the true encoder, feature error, reconstruction\n",
            markdown_table(["encoder", *agreement_header(), "feature error %", *METRIC_HEADER], rows_a) + "\n",
            f"Agreement beside the ceiling (the true encoder's own agreement under {CEILING_CHANGE}):\n",
            "\n".join(lines) + "\n",
            "## Self-agreement q0 / q1 / q2 / q3 (%)\n",
            markdown_table(["encoder", *a.changes], rows_s) + "\n",
        ]
    cpu = time.process_time() - cpu0
    parts.append(f"Total: {cpu:.0f} CPU s.\n")
    result["cpu_s"] = cpu
    text = "\n".join(parts)
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "stability.md").write_text(text)
    (a.out / "stability.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result


if __name__ == "__main__":
    main()
