"""Running one case of the codec benchmark and reading the machine (``benchmarks/bench_codec.py`` is the command).

A case is timed once after a warm-up, in process CPU seconds beside wall time, with the RSS of
the built model and the peak RSS of the process; :func:`gemm_rate` measures the fp32 matmul rate
the FLOP figures are compared with; :func:`extrapolate_detokenize` turns the estimator and decode
cases into the time of a whole detokenize.
"""

from __future__ import annotations

import os
import time

from heartcodec_lab.codec.benchmark_models import CASE_PARTS, WINDOW_SECONDS, build_codec, build_released, case_inputs


def _rss_gb() -> float:
    """Current resident set size of this process in GB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def _peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def gemm_rate(threads: int, n: int = 2048, reps: int = 6) -> dict:
    """fp32 GEMM rate of this machine now: best of ``reps`` n^3 matmuls, GFLOP per wall and per CPU second."""
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    a @ b
    best_wall = best_cpu = float("inf")
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        a @ b
        best_wall, best_cpu = min(best_wall, time.perf_counter() - w0), min(best_cpu, time.process_time() - c0)
    flop = 2 * n**3 / 1e9
    return {"gflops_wall": flop / best_wall, "gflops_cpu": flop / best_cpu}


def run_case(
    case: str,
    seconds: float,
    steps: int,
    tiny: bool,
    threads: int,
    impl: str = "ours",
    reference_src: str | None = None,
) -> dict:
    """Build one implementation, run one case once (after a small warm-up), return its measurements."""
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    if impl == "ours":
        codec = build_codec(tiny, CASE_PARTS[case])
    else:
        codec = build_released(reference_src, tiny, CASE_PARTS[case])
    build_s = time.perf_counter() - t0
    rss_model = _rss_gb()
    fn, audio_s = case_inputs(case, codec, seconds, steps, impl)
    torch.manual_seed(0)
    with torch.inference_mode():
        fn(warmup=True)
        load0 = os.getloadavg()[0]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        load1 = os.getloadavg()[0]
    return {
        "case": case,
        "impl": impl,
        "seconds": wall,
        "cpu_seconds": cpu,
        "audio_seconds": audio_s,
        "rtf": wall / audio_s,
        "peak_rss_gb": max(_peak_rss_gb(), rss_model, _rss_gb()),  # the kernel updates ru_maxrss lazily
        "model_rss_gb": rss_model,
        "build_seconds": build_s,
        "loadavg": [load0, load1],
        "steps": steps if case == "detokenize" else None,
        "windows": _windows(int(seconds * 12.5)) if case == "detokenize" else None,
        "parameters": sum(p.numel() for p in codec.parameters()),
        "materialised": "all" if tiny or case == "detokenize" else "+".join(CASE_PARTS[case]),
    }


def _windows(num_codes: int) -> int:
    """Detokenize windows for ``num_codes`` code frames (short inputs are repeated to one window)."""
    from heartcodec_lab.codec import WindowPlan

    return len(WindowPlan.for_length(num_codes).starts)


def extrapolate_detokenize(results: dict, seconds: float = 30.0, steps: int = 10, key: str = "seconds") -> float | None:
    """Detokenize time from the estimator and decode cases: windows x (steps x E + decode per window).

    ``key`` picks wall (``"seconds"``) or process CPU (``"cpu_seconds"``) time.
    """
    if "estimator" not in results or "decode" not in results:
        return None
    decode_window = results["decode"][key] * WINDOW_SECONDS / results["decode"]["audio_seconds"]
    return _windows(int(seconds * 12.5)) * (steps * results["estimator"][key] + decode_window)
