"""Throughput and memory of the bulk tokenizer, per encoder, with random weights.

    python benchmarks/bench_tokenize.py                 # full-size encoders (official vqv12, projection on the
                                                        # full-size ScalarModel encoder): needs a GPU or patience
    python benchmarks/bench_tokenize.py --quick         # embedded tiny encoders, 3 short files: a CPU smoke run
    python benchmarks/bench_tokenize.py --memory        # peak RSS of streaming a 1-min vs a 20-min file
    python benchmarks/bench_tokenize.py --scale         # projection encoder on the full-size ScalarModel:
                                                        # encoder alone vs the bulk job on mixed files (10 s to
                                                        # 5 min), x-realtime, ratio, peak RSS 1 vs 20 min
                                                        # (see tokenize_scale.py; about 15 CPU-minutes)

Each encoder runs in its own child process so peak RSS (``ru_maxrss``, main process; workers reported
separately) is that encoder's alone. Prints files/s, x-realtime and peak RSS. The models come from
``heartcodec_lab.encoders`` (``benchmark_models`` for the full-size ones), the measured run from
``heartcodec_lab.tokenize.benchmark``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from heartcodec_lab.audio.memory_probe import stream_memory


def build(kind: str, quick: bool, batch_chunks: int, device: str):
    """The embedded tiny encoder of ``kind`` (``--quick``) or the full-size one with random weights."""
    import torch

    if quick:
        from heartcodec_lab.codec import RANDOM_CODEC, load_codec
        from heartcodec_lab.encoders import build_encoder

        codec = load_codec(RANDOM_CODEC, device=device)
        return build_encoder(kind, None, codec, batch_chunks=batch_chunks).to(device).eval()
    from heartcodec_lab.encoders.benchmark_models import encoding_codec, random_encoder

    torch.backends.cuda.matmul.allow_tf32 = False
    return random_encoder(kind, encoding_codec(device=device), batch_chunks=batch_chunks).to(device)


def child(kind: str, args) -> dict:
    from heartcodec_lab.data.synth import write_synth_folder
    from heartcodec_lab.tokenize.benchmark import bulk_run

    with tempfile.TemporaryDirectory() as tmp:
        write_synth_folder(Path(tmp) / "in", args.files, args.seconds)
        t0 = time.perf_counter()
        enc = build(kind, args.quick, args.batch_chunks, args.device)
        build_s = time.perf_counter() - t0
        label = kind + (" (embedded tiny)" if args.quick else " (full size, random weights)")
        row = bulk_run(
            Path(tmp) / "in",
            enc,
            label,
            workers=args.workers,
            batch_chunks=args.batch_chunks,
            extensions=("flac",),
            device=args.device,
        )
    return {
        "encoder": label,
        "files": row["files"],
        "failed": row["failed"],
        "audio_s": round(row["audio_s"], 1),
        "build_s": round(build_s, 1),
        "wall_s": round(row["wall_s"], 1),
        "cpu_s": round(row["cpu_s"], 1),
        "files_per_s": round(row["files"] / row["wall_s"], 4),
        "x_realtime": round(row["audio_s"] / row["wall_s"], 3),
        "peak_rss_main_gib": round(row["peak_rss_main_gib"], 2),
        "peak_rss_worker_gib": round(row["peak_rss_worker_gib"], 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="embedded tiny encoders, 3 files of 8 s")
    p.add_argument("--memory", action="store_true", help="only the streaming-memory check (1 vs 20 minutes)")
    p.add_argument("--encoders", default="official,projection")
    p.add_argument("--files", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-chunks", type=int, default=None)
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--scale", action="store_true", help="bulk scale of the full-size projection encoder (CPU)")
    p.add_argument("--single-chunks", type=int, default=2, help="--scale: in-memory chunks for the encoder alone")
    p.add_argument("--mix", type=float, nargs="*", default=[10, 30, 60, 300], help="--scale: file lengths (s)")
    p.add_argument("--long-minutes", type=float, nargs="*", default=[1, 20], help="--scale: one-file memory runs")
    p.add_argument("--long-width", type=int, default=8, help="--scale: init_channel of the memory runs (64 = full)")
    p.add_argument("--threads", type=int, default=1, help="--scale: torch threads of the encoding process")
    p.add_argument(
        "--scale-width",
        type=int,
        default=64,
        help="--scale: init_channel of the encoder-alone and "
        "mixed-folder runs (64 = full size; smaller = a lower bound on the ratio, much cheaper)",
    )
    p.add_argument("--width", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.files = args.files or (3 if args.quick else 16)
    args.seconds = args.seconds or (8.0 if args.quick else 120.0)
    args.batch_chunks = args.batch_chunks or (1 if args.quick or args.device == "cpu" else 4)
    if args.scale or (args.child and args.child.split(":")[0] in ("single", "shard", "long")):
        import tokenize_scale

        if args.child:
            print(json.dumps(tokenize_scale.scale_child(args.child, args)))
        else:
            tokenize_scale.print_scale(tokenize_scale.run_scale(__file__, args), args)
        return
    if args.child:
        kind, _, arg = args.child.partition(":")
        print(json.dumps(stream_memory(float(arg)) if kind == "memory" else child(kind, args)))
        return
    jobs = ["memory:1", "memory:20"] if args.memory else args.encoders.split(",")
    for job in jobs:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            job,
            "--files",
            str(args.files),
            "--seconds",
            str(args.seconds),
            "--workers",
            str(args.workers),
            "--batch-chunks",
            str(args.batch_chunks),
            "--device",
            args.device,
        ]
        if args.quick:
            cmd.append("--quick")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{job}: failed\n{proc.stderr[-2000:]}")
            continue
        print(json.dumps(json.loads(proc.stdout.strip().splitlines()[-1])))


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


if __name__ == "__main__":
    main()
