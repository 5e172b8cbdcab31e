"""Bulk scale of the projection encoder on the full-size ScalarModel (``bench_tokenize.py --scale``).

Three kinds of child process, each on its own so its CPU time and peak RSS are its own:

* ``single``: the encoder alone on ``--single-chunks`` in-memory 29.76 s stereo chunks, one per
  call (``heartcodec_lab.tokenize.benchmark.encoder_alone_run``): the single-stream rate.
* ``shard:K``: the bulk tokenizer (``bulk_run``, decoding workers included) on shard K of 2 of a
  folder of mixed files (``--mix``, seconds; 48 kHz FLAC and 44.1 kHz WAV alternate, so the
  workers also resample). Shard 0 holds the shorter files and shard 1 the longest one: together
  they are the whole folder, and their peak RSS compares file lengths.
* ``long:M``: the bulk job on one M-minute 44.1 kHz file at ``--long-width`` (ScalarModel
  ``init_channel``; 64 = full size): peak RSS of a 1-minute against a 20-minute file.

``--scale-width`` runs the first two at a reduced ScalarModel width: the encoder's work shrinks
about with the square of the width while the job's own costs (decoding, resampling, hashing,
writing) do not, so a reduced width gives a lower bound on the full-size ratio.

Models: ``heartcodec_lab.encoders.benchmark_models`` (full-size RVQ, key-seeded random weights,
untrained conv1d projection).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from heartcodec_lab.tables import print_table
from heartcodec_lab.tokenize.benchmark import write_mixed_folder, write_tone_file


def _encoder(width: int, threads: int):
    import torch

    from heartcodec_lab.encoders.benchmark_models import encoding_codec, random_encoder

    torch.set_num_threads(threads)
    return random_encoder("projection", encoding_codec(width))


def scale_child(spec: str, args) -> dict:
    """One child's row: ``single:N``, ``shard:K:FOLDER`` or ``long:M:FOLDER``."""
    from heartcodec_lab.tokenize.benchmark import bulk_run, encoder_alone_run

    kind, _, rest = spec.partition(":")
    enc = _encoder(args.width, args.threads)
    if kind == "single":
        return encoder_alone_run(enc, int(rest))
    arg, _, folder = rest.partition(":")
    if kind == "shard":
        files = sorted(p.name for p in Path(folder).iterdir())[int(arg) :: 2]
        label, shard, shards = f"bulk job, shard {arg}/2: {', '.join(files)}", int(arg), 2
    else:
        label, shard, shards = f"bulk job, one {arg}-min file, init_channel {args.width}", 0, 1
    row = bulk_run(folder, enc, label, shard, shards, workers=args.workers, extensions=("flac", "wav"))
    if row["failed"]:
        raise SystemExit(f"{row['failed']} files failed: {row['failures']}")
    return row


def _spawn(bench: str, args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, bench, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_scale(bench: str, args) -> list[dict]:
    """All children in order; returns their rows (single first)."""
    common = ["--threads", str(args.threads), "--workers", str(args.workers)]
    jobs = [(f"single:{args.single_chunks}", args.scale_width)] if args.single_chunks else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.mix:
            folder = Path(tmp) / "mix"
            folder.mkdir()
            write_mixed_folder(folder, args.mix)
            jobs += [(f"shard:{k}:{folder}", args.scale_width) for k in range(2)]
        for minutes in args.long_minutes or []:
            folder = Path(tmp) / f"long{minutes:g}"
            folder.mkdir()
            write_tone_file(folder / "long.wav", minutes * 60, 44100, seed=7)
            jobs.append((f"long:{minutes:g}:{folder}", args.long_width))
        for spec, width in jobs:
            rows.append(_spawn(bench, ["--child", spec, "--width", str(width), *common]))
            print(f"{spec.split(':/')[0]}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def print_scale(rows: list[dict], args) -> None:
    single = next((r for r in rows if r["run"].startswith("encoder alone")), None)
    shards = [r for r in rows if r["run"].startswith("bulk job, shard")]
    if len(shards) == 2:  # the whole folder = both shards
        keys = ("audio_s", "wall_s", "cpu_s", "cpu_main_s", "cpu_workers_s")
        total = {k: sum(r[k] for r in shards) for k in keys}
        peaks = {k: max(r[k] for r in shards) for k in ("peak_rss_main_gib", "peak_rss_worker_gib")}
        rows = rows + [{"run": "bulk job, whole folder (both shards)", **total, **peaks}]
    size = "full-size ScalarModel" if args.scale_width == 64 else f"ScalarModel init_channel {args.scale_width}"
    title = (
        f"Projection encoder, {size}, CPU, {args.threads} thread(s), "
        f"{args.workers} decoding workers, load {os.getloadavg()[0]:.1f}"
    )
    header = (
        "run",
        "audio s",
        "wall s",
        "CPU s (main + workers)",
        "x-realtime (wall)",
        "audio s / CPU s",
        "ratio to encoder alone (CPU)",
        "peak RSS main / workers GiB",
    )
    base = single["audio_s"] / single["cpu_s"] if single else None
    cells = []
    for r in rows:
        rate = r["audio_s"] / r["cpu_s"]
        cells.append(
            [
                r["run"],
                f"{r['audio_s']:.1f}",
                f"{r['wall_s']:.1f}",
                f"{r['cpu_s']:.1f} ({r['cpu_main_s']:.1f} + {r['cpu_workers_s']:.1f})",
                f"{r['audio_s'] / r['wall_s']:.3f}",
                f"{rate:.4f}",
                f"{rate / base:.3f}" if base else "",
                f"{r['peak_rss_main_gib']:.2f} / {r['peak_rss_worker_gib']:.2f}",
            ]
        )
    print_table(header, cells, title=title, width=200)
