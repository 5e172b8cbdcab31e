"""One-shot GPU check: tokenize, detokenize and one training step on a CUDA device, with throughput and
peak GPU memory per stage. Run through ``benchmarks/gpu_check.sh`` (which says so and exits 0 when there
is no CUDA device, and stops the check after 5 minutes).

    benchmarks/gpu_check.sh                    # embedded encoders, full-size key-seeded codec for detokenize
    benchmarks/gpu_check.sh --quick            # miniature codec everywhere (seconds)
    python benchmarks/gpu_check.py --device cpu --quick --stage tokenize   # the same code paths on the CPU

Stages:
    tokenize    the bulk pipeline (decoding workers, chunks of equal length batched ``--batch`` at a time, pinned
                host memory, asynchronous copies) on synthetic music files, official encoder (embedded tiny,
                fp32 and bf16) and projection encoder; audio seconds per wall second
    detokenize  HeartCodec.detokenize of ``--seconds`` of codes: fp32 Euler x 10 (the released setting), bf16
                Euler x 10, bf16 AB2 x 5 on the t^0.5 grid; audio seconds per wall second
    train       one optimizer step of ``+experiment=conv1d`` (``trainer=gpu``: bf16-mixed) on the random tiny codec
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
STAGES = ("tokenize", "detokenize", "train")


class Stage:
    """Times a block (wall) and reads the device's peak memory over it."""

    def __init__(self, device: torch.device, name: str):
        self.device, self.name = device, name

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds = time.perf_counter() - self.start
        self.peak_gb = torch.cuda.max_memory_allocated(self.device) / 1e9 if self.device.type == "cuda" else None
        return False

    def report(self, work: str) -> dict:
        peak = f"{self.peak_gb:.2f} GB" if self.peak_gb is not None else "n/a (not CUDA)"
        print(f"{self.name:<48} {self.seconds:8.2f} s   {work:<34} peak GPU memory {peak}", flush=True)
        return {"stage": self.name, "seconds": self.seconds, "peak_gb": self.peak_gb, "work": work}


def tokenize_stage(device: torch.device, args) -> list[dict]:
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.data.synth import write_synth_folder
    from heartcodec_lab.encoders import build_encoder
    from heartcodec_lab.tokenize.inputs import InputFile
    from heartcodec_lab.tokenize.pipeline import tokenize_stream

    folder = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    paths = write_synth_folder(folder, args.files, args.file_seconds)
    items = [InputFile(p.resolve(), p.name) for p in paths]
    codec = load_codec(None, device=device)
    rows = []
    for kind, precision in (("official", "fp32"), ("official", "bf16"), ("projection", "fp32")):
        encoder = build_encoder(kind, None, codec, batch_chunks=args.batch).to(device).eval()
        if kind == "official":
            encoder.set_precision(precision)
        with Stage(device, f"tokenize {kind} {precision} batch {args.batch}") as st:
            results = list(
                tokenize_stream(encoder, items, batch_chunks=args.batch, num_workers=args.workers, device=device)
            )
        failed = [r.error for r in results if r.error]
        if failed:
            raise SystemExit(f"tokenize {kind}: {len(failed)} file(s) failed: {failed[0]}")
        audio = args.files * args.file_seconds
        rows.append(st.report(f"{audio / st.seconds:8.1f} audio-s per s"))
    return rows


def detokenize_stage(device: torch.device, args) -> list[dict]:
    from heartcodec_lab.codec import DetokenizeSettings, load_codec

    if args.quick:
        codec = load_codec(None)
    else:
        from heartcodec_lab.codec.benchmark_models import build_codec

        codec = build_codec(False)
    codec = codec.to(device)
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, codec.config.codebook_size, (8, int(args.seconds * 12.5)), generator=g)
    rows = []
    for label, settings in (
        ("fp32 euler x10", DetokenizeSettings(num_steps=10, precision="fp32")),
        ("bf16 euler x10", DetokenizeSettings(num_steps=10, precision="bf16")),
        ("bf16 ab2 x5 t^0.5", DetokenizeSettings(num_steps=5, solver="ab2", time_power=0.5, precision="bf16")),
    ):
        with Stage(device, f"detokenize {args.seconds:g} s {label}") as st:
            wav = settings.decode(codec, codes)
        if not torch.isfinite(wav).all():
            raise SystemExit(f"detokenize {label}: non-finite audio")
        rows.append(st.report(f"{args.seconds / st.seconds:8.1f} audio-s per s"))
    return rows


def train_stage(device: torch.device, args) -> list[dict]:
    from heartcodec_lab.codec import RANDOM_CODEC, load_codec
    from heartcodec_lab.training.run import compose_config, train

    out = Path(tempfile.mkdtemp(prefix="gpu_check_train_"))
    trainer = "gpu" if device.type == "cuda" else "cpu"
    cfg = compose_config(
        [
            "+experiment=conv1d",
            "debug=fast",
            f"trainer={trainer}",
            "trainer.max_steps=1",
            f"codec.path={RANDOM_CODEC}",
            f"paths.output_dir={out}",
            f"paths.cache_dir={out / 'cache'}",
            "callbacks.reconstruction_preview.num_clips=0",
            "data.samples_per_epoch=2",
        ]
    )
    with Stage(device, f"train 1 step conv1d ({cfg.trainer.precision})") as st:
        summary = train(cfg, codec=load_codec(RANDOM_CODEC))
    if summary["global_step"] != 1:
        raise SystemExit(f"train: expected 1 step, got {summary['global_step']}")
    return [st.report("1 optimizer step")]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--stage", action="append", choices=STAGES, help="run only this stage (repeatable)")
    parser.add_argument("--quick", action="store_true", help="miniature codec for detokenize, short inputs")
    parser.add_argument("--seconds", type=float, help="detokenize length (default 30; 7.44 with --quick)")
    parser.add_argument("--files", type=int, help="tokenize: synthetic files (default 8; 2 with --quick)")
    parser.add_argument("--file-seconds", type=float, help="tokenize: seconds per file (default 60; 8 with --quick)")
    parser.add_argument("--batch", type=int, default=8, help="tokenize: chunks per encoder batch")
    parser.add_argument("--workers", type=int, default=2, help="tokenize: decoding worker processes")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (7.44 if args.quick else 30.0)
    args.files = args.files or (2 if args.quick else 8)
    args.file_seconds = args.file_seconds or (8.0 if args.quick else 60.0)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine: nothing to check")
        return []
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu_check on {name} ({device}), torch {torch.__version__}")
    rows = []
    for stage in args.stage or STAGES:
        rows += globals()[f"{stage}_stage"](device, args)
    return rows


if __name__ == "__main__":
    main()
