"""Eager vs inductor-compiled flow-matching estimator (the opt-in ``detokenize.compile``), CPU.

    python benchmarks/bench_compile.py                      # full width, 2 + 1 layers, 2 x 744 frames
    python benchmarks/bench_compile.py --layers 24 --layers-2 6    # the full depth (long compile)

Full width (heads x head dim as released), key-seeded random weights, float32, inference mode,
``--threads`` torch threads. Prints the compilation's wall and CPU seconds (cold cache, compiled
in this process, so its C++ compiler runs count), then CPU seconds per forward for eager and compiled (best of
``--repeat``, alternating) and the largest difference between the two outputs.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def main() -> None:
    import tempfile

    # compile in this process (its g++ runs are then waited-for children: counted) into a fresh
    # cache, so the figure is a cold compilation
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_compile_"))
    import torch

    from heartcodec_lab.codec import HeartCodec, HeartCodecConfig
    from heartcodec_lab.codec.benchmark_models import ESTIMATOR_FRAMES, randomize_
    from heartcodec_lab.codec.compiling import compile_estimator
    from heartcodec_lab.codec.weights import skip_weight_init

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--layers-2", type=int, default=1)
    p.add_argument("--frames", type=int, default=ESTIMATOR_FRAMES)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with skip_weight_init(), torch.device("meta"):
        codec = HeartCodec(HeartCodecConfig(num_layers=args.layers, num_layers_2=args.layers_2))
    est = codec.flow_matching.estimator.to_empty(device="cpu")
    randomize_(est)
    est.eval().requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, args.frames, codec.config.in_channels, generator=g)
    t = torch.tensor([0.3, 0.3])
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    with torch.inference_mode():
        eager_out = est(hidden, timestep=t)
        w0, c0 = time.perf_counter(), _cpu()
        compile_estimator(codec)
        compiled_out = est(hidden, timestep=t)  # the first call compiles
        compile_wall, compile_cpu = time.perf_counter() - w0, _cpu() - c0
        runs = {"eager": lambda: est._call_impl(hidden, timestep=t), "compiled": lambda: est(hidden, timestep=t)}
        for rep in range(args.repeat):
            for name in ("eager", "compiled") if rep % 2 == 0 else ("compiled", "eager"):
                c0 = time.process_time()
                runs[name]()
                times[name].append(time.process_time() - c0)
    diff = (compiled_out - eager_out).abs().max().item()
    scale = eager_out.abs().max().item()
    print(
        f"estimator {args.layers}+{args.layers_2} layers, full width, 2 x {args.frames} frames, "
        f"{args.threads} thread(s), load {os.getloadavg()[0]:.1f}"
    )
    print(f"compile (first call): {compile_wall:.0f} s wall, {compile_cpu:.0f} CPU-s incl. compile workers")
    for name, ts in times.items():
        print(f"{name:>9}: {min(ts):.2f} CPU-s per forward (runs: {', '.join(f'{x:.2f}' for x in ts)})")
    print(
        f"eager / compiled: {min(times['eager']) / min(times['compiled']):.3f}; "
        f"max |compiled - eager| = {diff:.2e} (max |eager| = {scale:.2f})"
    )


if __name__ == "__main__":
    main()
