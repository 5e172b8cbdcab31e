"""Where the full-size ScalarModel's time goes: torch.profiler self CPU by op and by layer.

    python benchmarks/profile_scalar_model.py                       # encode, 4 s mono, 1 thread
    python benchmarks/profile_scalar_model.py --part decode --seconds 2 --batch 2

Full-size, key-seeded random weights (``heartcodec_lab.codec.benchmark_models.randomize_``), float32, inference mode.
By op: torch.profiler's self CPU time per aten op. By layer: each top-level layer of the
stack (and each residual unit / up/down conv inside a block) timed in process CPU seconds
around its forward, with its FLOPs (FlopCounterMode) so every layer's GFLOP/s shows.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def layer_table(stack, x, repeat: int = 1):
    """[(name, seconds, gflop)] for every leaf-ish layer of ``stack`` run on ``x`` in order."""
    from torch.utils.flop_counter import FlopCounterMode

    from heartcodec_lab.codec.scalar_model import ResDecoderBlock, ResEncoderBlock

    rows = []

    def timed(name, module, h):
        with FlopCounterMode(display=False) as fc:
            module(h[..., :64] if h.shape[-1] > 64 else h)  # shape-true count on a slice is scaled below
        t0 = time.process_time()  # CPU seconds: wall is meaningless on a shared machine
        for _ in range(repeat):
            out = module(h)
        dt = (time.process_time() - t0) / repeat
        scale = h.shape[-1] / min(h.shape[-1], 64)
        rows.append((name, dt, fc.get_total_flops() * scale / 1e9))
        return out

    for i, layer in enumerate(stack):
        if isinstance(layer, (ResEncoderBlock, ResDecoderBlock)):
            if isinstance(layer, ResDecoderBlock):
                x = timed(f"{i}.up_conv", layer.up_conv, x)
            for j, unit in enumerate(layer.convs):
                x = timed(f"{i}.unit{j} ({x.shape[1]} ch, {x.shape[-1]} t)", unit, x)
            if isinstance(layer, ResEncoderBlock):
                x = timed(f"{i}.down_conv", layer.down_conv, x)
        else:
            x = timed(f"{i}.{type(layer).__name__} ({x.shape[1]} ch, {x.shape[-1]} t)", layer, x)
    return rows


def main() -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from heartcodec_lab.audio import SAMPLE_RATE
    from heartcodec_lab.codec.benchmark_models import build_codec
    from heartcodec_lab.tables import print_table

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("encode", "decode"), default="encode")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", type=int, default=12)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sm = build_codec(False, ("scalar_model",)).scalar_model
    g = torch.Generator().manual_seed(0)
    if args.part == "encode":
        t = torch.arange(int(args.seconds * SAMPLE_RATE)) / SAMPLE_RATE
        x = (0.3 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(t.shape, generator=g)).expand(
            args.batch, 1, -1
        )
        run, stack = (lambda: sm.encode(x)), sm.encoder
    else:
        x = torch.rand(args.batch, 128, int(args.seconds * 25), generator=g) * 1.6 - 0.8
        run, stack = (lambda: sm.decode(x)), sm.decoder
        from heartcodec_lab.codec.scalar_model import quantize_latent

        x_layers = quantize_latent(x)
    with torch.inference_mode():
        run()  # warm-up
        c0, w0 = time.process_time(), time.perf_counter()
        run()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
        print(
            f"{args.part} {args.seconds:g} s x {args.batch}, {args.threads} thread(s): {wall:.2f} s wall, "
            f"{cpu:.2f} CPU-s (unprofiled), load {os.getloadavg()[0]:.1f}"
        )
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
        rows = layer_table(stack, x if args.part == "encode" else x_layers)
    total = sum(r[1] for r in rows)
    cells = [
        (name, f"{1000 * dt:.1f}", f"{100 * dt / total:.1f}%", f"{gf:.2f}", f"{gf / dt:.1f}") for name, dt, gf in rows
    ]
    cells.append(("total", f"{1000 * total:.1f}", "", f"{sum(r[2] for r in rows):.2f}", ""))
    print_table(("layer", "CPU ms", "share", "GFLOP", "GFLOP/CPU-s"), cells)


if __name__ == "__main__":
    main()
