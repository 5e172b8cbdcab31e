"""Bulk scale of the projection encoder on the full-size ScalarModel (``bench_tokenize.py --scale``).

Three kinds of child process, each on its own so its CPU time and peak RSS are its own:

* ``single``: the encoder alone on ``--single-chunks`` in-memory 29.76 s stereo chunks, one per
  call (``encode_chunks`` + ``quantize``, what the bulk job does per chunk): the single-stream rate.
* ``shard:K``: ``run_shard`` (the bulk tokenizer, decoding workers included) on shard K of 2 of a
  folder of mixed files (``--mix``, seconds; 48 kHz FLAC and 44.1 kHz WAV alternate, so the
  workers also resample). Files are named so shard 0 holds the shorter files and shard 1 the
  longest one: together they are the whole folder, and their peak RSS compares file lengths.
* ``long:M``: the bulk job on one M-minute 44.1 kHz file at ``--long-width`` (ScalarModel
  ``init_channel``; 64 = full size): peak RSS of a 1-minute against a 20-minute file.

``--scale-width`` runs the first two at a reduced ScalarModel width: the encoder's work shrinks
about with the square of the width while the job's own costs (decoding, resampling, hashing,
writing) do not, so a reduced width gives a lower bound on the full-size ratio.

CPU seconds = the child's own process time plus its finished workers (``RUSAGE_CHILDREN``);
the ratio compares audio seconds per CPU second of the bulk job with the single stream.
Weights: full-size, key-seeded random (``heartcodec_lab.codec.benchmark_models.randomize_``), untrained conv1d
projection.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def build_projection_encoder(width: int = 64):
    """ProjectionEncoder over a ScalarModel of ``init_channel = width`` with random weights, full-size RVQ."""
    import torch

    from heartcodec_lab.codec import HeartCodec, HeartCodecConfig
    from heartcodec_lab.codec.benchmark_models import randomize_
    from heartcodec_lab.codec.weights import skip_weight_init
    from heartcodec_lab.encoders.projection import ProjectionEncoder
    from heartcodec_lab.encoders.projection.export import default_projection

    # the flow-matching estimator is not used for encoding: keep it small
    cfg = HeartCodecConfig(
        init_channel=width, num_layers=1, num_layers_2=1, num_attention_heads=2, attention_head_dim=8
    )
    with skip_weight_init(), torch.device("meta"):
        codec = HeartCodec(cfg)
    codec = codec.to_empty(device="cpu")
    randomize_(codec)
    codec.eval().requires_grad_(False)
    return ProjectionEncoder(codec, default_projection(codec)).eval()


def write_audio(path: Path, seconds: float, sample_rate: int, seed: int) -> None:
    """Stereo tones + noise written in 10-s blocks (cheap to make, never all in memory)."""
    rng = np.random.default_rng(seed)
    block = 10 * sample_rate
    with sf.SoundFile(str(path), "w", sample_rate, 2, subtype="PCM_16") as f:
        done = 0
        while done < seconds * sample_rate:
            n = min(block, int(seconds * sample_rate) - done)
            t = (done + np.arange(n)) / sample_rate
            tone = 0.2 * np.sin(2 * np.pi * (110 + 40 * seed) * t) + 0.1 * np.sin(2 * np.pi * 660 * t)
            audio = tone[:, None] + 0.03 * rng.standard_normal((n, 2))
            f.write(audio.astype(np.float32))
            done += n


def write_mix(folder: Path, mix: list[float]) -> None:
    """``mix`` seconds sorted; the longest file sorts last, so with 2 shards it lands in shard 1 and
    the others alternate."""
    for i, seconds in enumerate(sorted(mix)):
        ext, sr = ("flac", 48000) if i % 2 == 0 else ("wav", 44100)
        write_audio(folder / f"{i:02d}_{seconds:g}s.{ext}", seconds, sr, seed=i)


def _usage() -> tuple[float, float]:
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own, kids.ru_utime + kids.ru_stime


def _peaks() -> dict:
    return {
        "peak_rss_main_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "peak_rss_worker_gib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 3),
    }


def single_child(chunks: int, threads: int, width: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    enc = build_projection_encoder(width)
    g = torch.Generator().manual_seed(0)
    t = torch.arange(enc.chunk_samples) / enc.native_sample_rate
    chunk = (0.2 * torch.sin(2 * torch.pi * 220 * t) + 0.03 * torch.randn(2, t.numel(), generator=g))[None]
    with torch.inference_mode():
        enc.quantize(enc.encode_chunks(chunk[..., : enc.chunk_samples // 50]))  # warm-up, 0.6 s
        w0, (c0, _) = time.perf_counter(), _usage()
        for _ in range(chunks):
            enc.quantize(enc.encode_chunks(chunk))
        wall, cpu = time.perf_counter() - w0, _usage()[0] - c0
    return {
        "run": f"encoder alone, {chunks} x 29.76 s chunks",
        "audio_s": chunks * enc.chunk_seconds,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_main_s": cpu,
        "cpu_workers_s": 0.0,
        **_peaks(),
    }


def bulk_child(folder: str, shard: int, num_shards: int, threads: int, workers: int, width: int, label: str) -> dict:
    import torch
    from omegaconf import OmegaConf

    from heartcodec_lab.tokenize.job import run_shard

    torch.set_num_threads(threads)
    enc = build_projection_encoder(width)
    with tempfile.TemporaryDirectory() as out:
        cfg = OmegaConf.create(
            {
                "input": folder,
                "output": out,
                "extensions": ["flac", "wav"],
                "default_tags": "music",
                "instrumental_lyrics": "[Instrumental]",
                "pad_eight_frames": True,
                "link_audio": True,
                "num_workers": workers,
                "batch_chunks": 1,
                "block_seconds": 10.0,
                "progress": False,
            }
        )
        w0, (c0, k0) = time.perf_counter(), _usage()
        s = run_shard(cfg, enc, shard, num_shards)
        wall, (c1, k1) = time.perf_counter() - w0, _usage()
    if s.failed:
        raise SystemExit(f"{s.failed} files failed: {s.failures}")
    return {
        "run": label,
        "audio_s": s.seconds,
        "files": s.ok,
        "wall_s": wall,
        "cpu_s": (c1 - c0) + (k1 - k0),
        "cpu_main_s": c1 - c0,
        "cpu_workers_s": k1 - k0,
        **_peaks(),
    }


def _spawn(bench: str, args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, bench, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_scale(bench: str, args) -> list[dict]:
    """All children in order; returns their rows (single first)."""
    common = ["--threads", str(args.threads), "--workers", str(args.workers)]
    rows = []
    if args.single_chunks:
        rows.append(
            _spawn(bench, ["--child", f"single:{args.single_chunks}", "--width", str(args.scale_width), *common])
        )
        print(f"single: {rows[-1]}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.mix:
            folder = Path(tmp) / "mix"
            folder.mkdir()
            write_mix(folder, args.mix)
            for k in range(2):
                rows.append(
                    _spawn(bench, ["--child", f"shard:{k}:{folder}", "--width", str(args.scale_width), *common])
                )
                print(f"shard {k}: {rows[-1]}", file=sys.stderr, flush=True)
        for minutes in args.long_minutes or []:
            folder = Path(tmp) / f"long{minutes:g}"
            folder.mkdir()
            write_audio(folder / "long.wav", minutes * 60, 44100, seed=7)
            rows.append(
                _spawn(bench, ["--child", f"long:{minutes:g}:{folder}", "--width", str(args.long_width), *common])
            )
            print(f"long {minutes:g} min: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def scale_child(spec: str, args) -> dict:
    kind, _, rest = spec.partition(":")
    if kind == "single":
        return single_child(int(rest), args.threads, args.width)
    arg, _, folder = rest.partition(":")
    if kind == "shard":
        files = sorted(p.name for p in Path(folder).iterdir())[int(arg) :: 2]
        return bulk_child(
            folder, int(arg), 2, args.threads, args.workers, args.width, f"bulk job, shard {arg}/2: {', '.join(files)}"
        )
    return bulk_child(
        folder, 0, 1, args.threads, args.workers, args.width, f"bulk job, one {arg}-min file, init_channel {args.width}"
    )


def print_scale(rows: list[dict], args) -> None:
    from heartcodec_lab.tables import print_table

    single = next((r for r in rows if r["run"].startswith("encoder alone")), None)
    shards = [r for r in rows if r["run"].startswith("bulk job, shard")]
    if len(shards) == 2:  # the whole folder = both shards
        total = {k: sum(r[k] for r in shards) for k in ("audio_s", "wall_s", "cpu_s", "cpu_main_s", "cpu_workers_s")}
        rows = rows + [
            {
                "run": "bulk job, whole folder (both shards)",
                **total,
                "peak_rss_main_gib": max(r["peak_rss_main_gib"] for r in shards),
                "peak_rss_worker_gib": max(r["peak_rss_worker_gib"] for r in shards),
            }
        ]
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
