"""CPU benchmark of the FULL-SIZE HeartCodec, ours alone or side by side with the released code.

Nothing is downloaded: both implementations are built on the meta device and
filled with the same deterministic random weights (every tensor drawn from a
generator seeded by its state-dict key, so the two key-compatible models get
identical numbers). Float32, ``torch.set_num_threads(2)``, ``torch.inference_mode``.

Every (implementation, case) runs in its own child process, so its peak RSS is its
own; with ``--repeat N`` the order of the two implementations alternates between
repetitions (contention from other jobs hits both alike). Ratios are released /
ours in process CPU seconds (the fairest figure on a shared machine).

    python benchmarks/bench_codec.py --reference-src ../shared/reference/heartlib-heartcodec   # full size, 30 s
    python benchmarks/bench_codec.py --seconds 5 --steps 2             # quick, ours only (./run bench)
    python benchmarks/bench_codec.py --only decode --memory 30 240     # decode peak RSS for 30 s vs 4 min
    python benchmarks/bench_codec.py --tiny                            # smoke run on the embedded tiny codec
    python benchmarks/bench_codec.py --reference-src ../shared/reference/heartlib-heartcodec --only detokenize \
        --seconds 30 --steps 10 --variant fp32 --variant bf16 --variant bf16/ab2/5   # a row per setting

``--variant PRECISION[/SOLVER[/STEPS[/TIME_POWER]]]`` (repeatable; default ``fp32``) runs ours once per
setting: precision fp32 | bf16 | auto (the estimator's, :mod:`heartcodec_lab.codec.precision`), solver
euler | midpoint | heun | ab2, steps (default ``--steps``), time grid power (default 1). The released
code always runs float32 Euler x ``--steps``. ``--layers L1 L2`` keeps the full width with a shallower
estimator (memory).

Cases (``--seconds`` sets the audio length):
    encode      ScalarModel.encode of mono audio
    rvq         nearest codes of seconds*12.5 frames of 512-d features
    estimator   one DiT forward, batch 2 x 744 frames (one guided Euler step of one window)
    decode      ScalarModel.decode of seconds*25 latent frames, stereo (batch 2)
    detokenize  HeartCodec.detokenize of seconds*12.5 codes with --steps Euler steps

GFLOP/s are the released algorithm's multiply-adds x 2 (counted by torch's FlopCounterMode
on the meta device) per process CPU second, shown as a share of the fp32 GEMM rate measured
in the same run (a 2048^3 matmul, also per CPU second).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from heartcodec_lab.codec import benchmark_models
from heartcodec_lab.codec.benchmark import extrapolate_detokenize, gemm_rate, run_case
from heartcodec_lab.codec.benchmark_models import CASES, case_flops


def parse_variant(text: str, steps: int) -> tuple[str, str, int, float]:
    """``bf16/ab2/5/0.5`` -> ("bf16", "ab2", 5, 0.5); missing parts: fp32, euler, ``steps``, 1."""
    parts = text.split("/")
    if not 1 <= len(parts) <= 4:
        raise ValueError(f"--variant {text!r}: expected PRECISION[/SOLVER[/STEPS[/TIME_POWER]]]")
    precision = parts[0] or "fp32"
    solver = parts[1] if len(parts) > 1 else "euler"
    return precision, solver, int(parts[2]) if len(parts) > 2 else steps, float(parts[3]) if len(parts) > 3 else 1.0


def variant_label(precision: str, solver: str, steps: int, default_steps: int, power: float = 1.0) -> str:
    if (precision, solver, steps, power) == ("fp32", "euler", default_steps, 1.0):
        return "ours"
    return f"ours {precision} {solver}x{steps}" + (f" t^{power:g}" if power != 1.0 else "")


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"child {' '.join(args)} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_all(args) -> tuple[dict, list[dict]]:
    """Every case x implementation x repetition in a child; returns ({(case, impl): [runs]}, gemm rates)."""
    impls = ["released", "ours"] if args.reference_src else ["ours"]
    common = ["--threads", str(args.threads)] + (["--tiny"] if args.tiny else [])
    common += ["--layers", *map(str, args.layers)] if args.layers else []
    if args.reference_src:
        common += ["--reference-src", args.reference_src]
    variants = [parse_variant(v, args.steps) for v in (args.variant or ["fp32"])]
    runs: dict = {}
    gemms = []
    for rep in range(args.repeat):
        gemms.append(_child(["--child", "gemm", "--threads", str(args.threads)]))
        order = impls if rep % 2 == 0 else impls[::-1]  # alternate who goes first
        for seconds in args.memory or [args.seconds]:
            for case in args.only or CASES:
                for impl in order:
                    settings = variants if impl == "ours" else [("fp32", "euler", args.steps, 1.0)]
                    for precision, solver, steps, power in settings:
                        if case != "detokenize" and (solver, steps, power) != ("euler", args.steps, 1.0):
                            continue  # only detokenize runs the solver
                        label = (
                            "released"
                            if impl == "released"
                            else variant_label(precision, solver, steps, args.steps, power)
                            if case == "detokenize"
                            else "ours"
                            if precision == "fp32"
                            else f"ours {precision}"
                        )
                        extra = [
                            "--steps",
                            str(steps),
                            "--precision",
                            precision,
                            "--solver",
                            solver,
                            "--time-power",
                            str(power),
                        ]
                        r = _child(["--child", case, "--impl", impl, "--seconds", str(seconds), *common, *extra])
                        runs.setdefault((case, seconds, label), []).append(r)
                        print(
                            f"[{rep + 1}/{args.repeat}] {case} {seconds:g}s {label}: {r['seconds']:.1f} s wall, "
                            f"{r['cpu_seconds']:.1f} CPU-s, {r['peak_rss_gb']:.2f} GB",
                            file=sys.stderr,
                            flush=True,
                        )
    return runs, gemms


def summarise(runs: dict, gemms: list[dict], args) -> list[dict]:
    """Median per (case, length, impl), FLOP rate as a share of the GEMM rate, released/ours ratio."""
    gemm_cpu = statistics.median(g["gflops_cpu"] for g in gemms)
    rows = []
    from heartcodec_lab.codec.solvers import evaluations

    for (case, seconds, impl), rs in runs.items():
        med = {
            k: statistics.median(r[k] for r in rs) for k in ("seconds", "cpu_seconds", "peak_rss_gb", "model_rss_gb")
        }
        calls = evaluations(rs[0]["solver"], rs[0]["steps"]) if case == "detokenize" else args.steps
        flops = case_flops(case, seconds, calls, args.tiny)  # this row's work (estimator calls of its solver)
        rows.append(
            {
                **rs[0],
                **med,
                "impl": impl,
                "length_s": seconds,
                "repeats": len(rs),
                "gflop": flops / 1e9,
                "gflops_per_cpu_s": flops / 1e9 / med["cpu_seconds"],
                "share_of_gemm": flops / 1e9 / med["cpu_seconds"] / gemm_cpu,
            }
        )
    by_key = {(r["case"], r["length_s"], r["impl"]): r for r in rows}
    for r in rows:
        other = by_key.get((r["case"], r["length_s"], "released"))
        r["ratio_cpu"] = other["cpu_seconds"] / r["cpu_seconds"] if other and r["impl"] != "released" else None
    return rows


def print_table(rows: list[dict], gemms: list[dict], args) -> None:
    from rich.console import Console

    from heartcodec_lab.tables import rich_table

    gw = statistics.median(g["gflops_wall"] for g in gemms)
    gc = statistics.median(g["gflops_cpu"] for g in gemms)
    size = (
        "tiny"
        if args.tiny
        else f"full-width, estimator {args.layers[0]}+{args.layers[1]} layers"
        if args.layers
        else "full-size"
    )
    title = (
        f"HeartCodec {size} on CPU, {args.threads} threads, released float32 Euler x {args.steps}, "
        f"median of {args.repeat}"
    )
    header = (
        "case",
        "impl",
        "wall s",
        "CPU s",
        "peak RSS GB",
        "weights GB",
        "GFLOP",
        "GFLOP/CPU-s",
        "% of GEMM",
        "released/ours CPU",
        "load 1 min",
    )
    cells = []
    for r in rows:
        label = f"{r['case']} {r['length_s']:g}s" + (f" {r['windows']}w x {r['steps']}st" if r["steps"] else "")
        ratio = f"{r['ratio_cpu']:.2f}" if r["ratio_cpu"] else ""
        cells.append(
            [
                label,
                r["impl"],
                f"{r['seconds']:.1f}",
                f"{r['cpu_seconds']:.1f}",
                f"{r['peak_rss_gb']:.2f}",
                f"{r['model_rss_gb']:.2f}",
                f"{r['gflop']:.0f}",
                f"{r['gflops_per_cpu_s']:.1f}",
                f"{100 * r['share_of_gemm']:.0f}",
                ratio,
                "{:.1f}->{:.1f}".format(*r["loadavg"]),
            ]
        )
    console = Console(width=max(140, Console().width))
    console.print(rich_table(header, cells, title=title))
    console.print(
        f"fp32 GEMM now (2048^3, best of 6, median over repetitions): {gw:.0f} GFLOP/s wall, "
        f"{gc:.0f} GFLOP per CPU second; GFLOP = the released algorithm's work; "
        "'weights GB' = RSS after building the parts a case needs"
    )
    ours = {r["case"]: r for r in rows if r["impl"] == "ours" and r["length_s"] == args.seconds}
    results = {c: r for c, r in ours.items()}
    wall, cpu = extrapolate_detokenize(results), extrapolate_detokenize(results, key="cpu_seconds")
    if wall is not None:
        console.print(f"ours, detokenize 30 s / 10 steps extrapolated: {wall:.0f} s wall, {cpu:.0f} s process CPU")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length of every case (default 30)")
    parser.add_argument("--steps", type=int, default=10, help="Euler steps of detokenize (default 10)")
    parser.add_argument("--only", action="append", choices=CASES, help="run only this case (repeatable)")
    parser.add_argument("--reference-src", help="a heartlib src/heartlib/heartcodec folder: time it side by side")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions, implementation order alternating")
    parser.add_argument("--memory", type=float, nargs="+", help="run the cases at each of these lengths (s) instead")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="embedded tiny codec instead of the full size (smoke test)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--variant",
        action="append",
        help="ours at PRECISION[/SOLVER[/STEPS[/TIME_POWER]]] (repeatable; default fp32): a row per setting",
    )
    parser.add_argument(
        "--layers",
        type=int,
        nargs=2,
        help="full width with this estimator depth (stage 1, stage 2) instead of 24 6, to fit memory",
    )
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)  # child: one variant
    parser.add_argument("--solver", default="euler", help=argparse.SUPPRESS)
    parser.add_argument("--time-power", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one case (or 'gemm'), print JSON
    parser.add_argument("--impl", default="ours", choices=("ours", "released"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.layers:
        benchmark_models.LAYERS = tuple(args.layers)
    if args.seconds <= 0 or args.steps <= 0 or args.repeat <= 0:
        parser.error("--seconds, --steps and --repeat must be positive")
    if args.reference_src and not os.path.isfile(os.path.join(args.reference_src, "modeling_heartcodec.py")):
        parser.error(
            f"--reference-src {args.reference_src}: no modeling_heartcodec.py there "
            "(expected a heartlib src/heartlib/heartcodec folder)"
        )

    if args.child == "gemm":
        print(json.dumps(gemm_rate(args.threads)))
        return []
    if args.child:
        print(
            json.dumps(
                run_case(
                    args.child,
                    args.seconds,
                    args.steps,
                    args.tiny,
                    args.threads,
                    args.impl,
                    args.reference_src,
                    args.precision,
                    args.solver,
                    args.time_power,
                )
            )
        )
        return []

    runs, gemms = run_all(args)
    rows = summarise(runs, gemms, args)
    print_table(rows, gemms, args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "gemm": gemms, "runs": [r for rs in runs.values() for r in rs]}, fh, indent=2)
    return rows


if __name__ == "__main__":
    main()
