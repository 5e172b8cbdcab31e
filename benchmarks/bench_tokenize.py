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
separately) is that encoder's alone. Prints files/s, x-realtime and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from heartcodec_lab.audio import SAMPLE_RATE
from heartcodec_lab.audio.memory_probe import stream_memory


def build(kind: str, quick: bool, batch_chunks: int, device: str):
    import torch

    from heartcodec_lab.codec import RANDOM_CODEC, load_codec

    if quick:
        from heartcodec_lab.encoders import build_encoder

        codec = load_codec(RANDOM_CODEC, device=device)
        return build_encoder(kind, None, codec, batch_chunks=batch_chunks).to(device).eval()
    from heartcodec_lab.codec import HeartCodec, HeartCodecConfig

    # full-size RVQ and ScalarModel; the flow-matching estimator is not used for encoding, keep it small
    cfg = HeartCodecConfig(num_layers=1, num_layers_2=1, num_attention_heads=2, attention_head_dim=8)
    codec = HeartCodec(cfg).to(device).eval().requires_grad_(False)
    if kind == "official":
        from heartcodec_lab.encoders.official import OfficialEncoder, VQV12Encoder, released_config

        enc = OfficialEncoder(VQV12Encoder(released_config()), codec.quantizer, batch_chunks=batch_chunks)
    else:
        from heartcodec_lab.encoders.projection import ProjectionEncoder
        from heartcodec_lab.encoders.projection.export import default_projection

        enc = ProjectionEncoder(codec, default_projection(codec), batch_chunks=batch_chunks)
    torch.backends.cuda.matmul.allow_tf32 = False
    return enc.to(device).eval()


def write_inputs(folder: Path, files: int, seconds: float) -> float:
    from heartcodec_lab.data.synth import synth_music

    total = 0.0
    for i in range(files):
        audio = synth_music(seconds, seed=i).numpy().T
        sf.write(str(folder / f"song{i:03d}.flac"), audio, SAMPLE_RATE)
        total += seconds
    return total


def child(kind: str, args) -> dict:
    from omegaconf import OmegaConf

    from heartcodec_lab.tokenize.job import run_shard

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        write_inputs(src, args.files, args.seconds)
        t0 = time.perf_counter()
        enc = build(kind, args.quick, args.batch_chunks, args.device)
        build_s = time.perf_counter() - t0
        cfg = OmegaConf.create(
            {
                "input": str(src),
                "output": str(Path(tmp) / "out"),
                "extensions": ["flac"],
                "default_tags": "music",
                "instrumental_lyrics": "[Instrumental]",
                "pad_eight_frames": True,
                "link_audio": True,
                "num_workers": args.workers,
                "batch_chunks": args.batch_chunks,
                "block_seconds": 10.0,
                "progress": False,
            }
        )
        t0 = time.perf_counter()
        s = run_shard(cfg, enc, 0, 1, device=args.device)
        wall = time.perf_counter() - t0
    return {
        "encoder": kind + (" (embedded tiny)" if args.quick else " (full size, random weights)"),
        "files": s.ok,
        "failed": s.failed,
        "audio_s": round(s.seconds, 1),
        "build_s": round(build_s, 1),
        "wall_s": round(wall, 1),
        "files_per_s": round(s.ok / wall, 4),
        "x_realtime": round(s.seconds / wall, 3),
        "peak_rss_main_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "peak_rss_worker_gib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 2),
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
