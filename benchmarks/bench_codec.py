"""CPU benchmark of the FULL-SIZE HeartCodec (released config, 1.655 B parameters, random weights).

Nothing is downloaded: the model is built from ``HeartCodecConfig()`` with
PyTorch's default initialisation. Float32, ``torch.set_num_threads(2)`` (change
with ``--threads``), everything under ``torch.inference_mode``.

Each case runs in its own child process, so its peak RSS (``ru_maxrss``) is its
own and memory is returned between cases. A case builds only the parts it runs
(the rest of the codec stays on the meta device): the ScalarModel (0.7 GB) for
encode/decode, the RVQ for rvq, the estimator (5.9 GB) for estimator, all for detokenize.

    python benchmarks/bench_codec.py                          # everything at 30 s, 10 steps (~20-35 min, 15+ GB)
    python benchmarks/bench_codec.py --seconds 5 --steps 2    # quick: 1 detokenize window, 2 Euler steps
    python benchmarks/bench_codec.py --only estimator         # one case (repeat --only for several)
    python benchmarks/bench_codec.py --tiny                   # smoke run on the embedded tiny codec

Cases (``--seconds`` sets the audio length, ``S`` samples at 48 kHz):
    encode      ScalarModel.encode of S mono samples
    rvq         nearest codes of seconds*12.5 frames of 512-d features
    estimator   one DiT forward, batch 2 x 744 frames (one guided Euler step of one window)
    decode      ScalarModel.decode of seconds*25 latent frames, stereo (batch 2)
    detokenize  HeartCodec.detokenize of seconds*12.5 codes with --steps Euler steps

RTF = compute seconds / audio seconds (above 1 = slower than real time). When
the estimator and decode cases ran, a line extrapolates detokenize of 30 s with
10 steps as ``windows x (steps x estimator + stereo decode of one 29.76 s window)``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import time

CASES = ("encode", "rvq", "estimator", "decode", "detokenize")
WINDOW_SECONDS = 29.76
ESTIMATOR_FRAMES = 744  # latent frames of one detokenize window


def _rss_gb() -> float:
    """Current resident set size of this process in GB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


#: Submodules each case needs; the others stay on the meta device (no memory), so a
#: case's RSS is that of what it runs. Only detokenize materialises the whole codec.
CASE_PARTS = {
    "encode": ("scalar_model",),
    "rvq": ("flow_matching.vq_embed",),
    "estimator": ("flow_matching.estimator",),
    "decode": ("scalar_model",),
    "detokenize": ("flow_matching", "scalar_model"),
}


@contextlib.contextmanager
def _quiet_init():
    """Skip torch.nn.init fills while building on the meta device (they are pointless there)."""
    from heartcodec_lab.codec.weights import skip_weight_init

    with skip_weight_init():
        yield


def randomize_(module) -> None:
    """Fill a materialised module with random weights of realistic scale (no denormals, no NaNs).

    Matrices and conv kernels ~ N(0, 1/fan_in); biases 0; 1-d weights (norm scales,
    PReLU slopes) 1 and 0.25; codebooks N(0, 1); weight-norm gains = |v|, so the
    effective conv weight equals v.
    """
    import torch

    state = module.state_dict()
    with torch.no_grad():
        for key, tensor in state.items():
            if tensor.dtype == torch.bool:
                tensor.fill_(True)
            elif key.endswith("cluster_size"):
                tensor.fill_(1.0)
            elif key.endswith("bias"):
                tensor.zero_()
            elif tensor.dim() <= 1:
                tensor.fill_(1.0)
                if key.endswith("zero_cond_embedding1"):
                    tensor.normal_()
            elif "_codebook." in key:
                tensor.normal_()
            elif not key.endswith("original0"):
                tensor.normal_(0.0, tensor[0].numel() ** -0.5)
        for sub in module.modules():
            if isinstance(sub, torch.nn.PReLU):
                sub.weight.fill_(0.25)
        for key, tensor in state.items():
            if key.endswith("original0"):
                v = state[key[:-1] + "1"]
                tensor.copy_(v.flatten(1).norm(dim=1).reshape(tensor.shape))


def build_codec(tiny: bool, parts=("flow_matching", "scalar_model")):
    """The full-size codec with random weights in ``parts`` (others on meta), or the embedded tiny one."""
    import torch

    from heartcodec_lab.codec import HeartCodec, HeartCodecConfig, load_codec

    if tiny:
        return load_codec(None)
    with _quiet_init(), torch.device("meta"):
        codec = HeartCodec(HeartCodecConfig())
    for name in parts:
        randomize_(codec.get_submodule(name).to_empty(device="cpu"))
    codec.eval()
    for p in codec.parameters():
        p.requires_grad_(False)
    return codec


def case_inputs(case: str, codec, seconds: float, steps: int = 10):
    """Deterministic inputs of one case; returns ``(callable, audio_seconds)``.

    The callable takes a ``warmup`` flag: True runs a tiny input first (lazy
    initialisation, allocator, kernel selection stay out of the timing).
    """
    import torch

    g = torch.Generator().manual_seed(0)
    sr, cfg = codec.sample_rate, codec.config

    def audio(n: int) -> torch.Tensor:
        t = torch.arange(n) / sr
        return (0.3 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(t.shape, generator=g))[None, None]

    if case == "encode":
        wav, small = audio(int(seconds * sr)), audio(sr // 5)
        return (lambda warmup=False: codec.scalar_model.encode(small if warmup else wav)), seconds
    if case == "rvq":
        features = torch.randn(1, int(seconds * codec.codes_per_second), cfg.dim, generator=g)
        return (lambda warmup=False: codec.quantize(features[:, :2] if warmup else features)), seconds
    if case == "estimator":
        hidden = torch.randn(2, ESTIMATOR_FRAMES, cfg.in_channels, generator=g)
        t = torch.tensor([0.3, 0.3])

        def run(warmup=False):
            return codec.flow_matching.estimator(hidden[:, :16] if warmup else hidden, timestep=t)

        return run, ESTIMATOR_FRAMES / codec.latent_rate
    if case == "decode":
        latent = torch.rand(2, cfg.latent_hidden_dim, int(seconds * codec.latent_rate), generator=g) * 1.6 - 0.8
        return (lambda warmup=False: codec.scalar_model.decode(latent[..., :5] if warmup else latent)), seconds
    if case == "detokenize":
        frames = int(seconds * codec.codes_per_second)
        codes = torch.randint(0, cfg.codebook_size, (cfg.num_quantizers, frames), generator=g)
        # No warm-up: the smallest detokenize is a whole window, as costly as the run itself.
        return (lambda warmup=False: None if warmup else codec.detokenize(codes, num_steps=steps)), seconds
    raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")


def run_case(case: str, seconds: float, steps: int, tiny: bool, threads: int) -> dict:
    """Build the codec, run one case once, return its measurements."""
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    codec = build_codec(tiny, CASE_PARTS[case])
    build_s = time.perf_counter() - t0
    rss_model = _rss_gb()
    fn, audio_s = case_inputs(case, codec, seconds, steps)
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
        "seconds": wall,
        "cpu_seconds": cpu,
        "audio_seconds": audio_s,
        "rtf": wall / audio_s,
        "peak_rss_gb": _peak_rss_gb(),
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


def print_table(results: dict, args) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"HeartCodec {'tiny' if args.tiny else 'full-size'} on CPU, {args.threads} threads, float32"
    table = Table(title=title)
    columns = ("case", "weights built", "wall s", "cpu s", "audio s", "RTF", "weights GB", "peak RSS GB", "load 1 min")
    for col in columns:
        table.add_column(col, justify="right")
    for case, r in results.items():
        label = case if case != "detokenize" else f"detokenize {r['windows']}w x {r['steps']}st"
        table.add_row(
            label, r["materialised"], f"{r['seconds']:.2f}", f"{r['cpu_seconds']:.2f}", f"{r['audio_seconds']:.2f}",
            f"{r['rtf']:.2f}", f"{r['model_rss_gb']:.2f}", f"{r['peak_rss_gb']:.2f}",
            "{:.1f}->{:.1f}".format(*r["loadavg"]),
        )
    console = Console(width=max(120, Console().width))
    console.print(table)
    console.print(f"codec parameters {next(iter(results.values()))['parameters']:,}; 'weights GB' = process RSS after "
                  "building the parts a case needs (the whole codec is 6.6 GB of float32 weights)")
    wall, cpu = extrapolate_detokenize(results), extrapolate_detokenize(results, key="cpu_seconds")
    if wall is not None:
        console.print(f"detokenize 30 s / 10 steps extrapolated: {wall:.0f} s wall (RTF {wall / 30:.1f}), "
                      f"{cpu:.0f} s process CPU")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length of every case (default 30)")
    parser.add_argument("--steps", type=int, default=10, help="Euler steps of detokenize (default 10)")
    parser.add_argument("--only", action="append", choices=CASES, help="run only this case (repeatable)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="embedded tiny codec instead of the full size (smoke test)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.steps <= 0:
        parser.error("--seconds and --steps must be positive")

    if args.child:
        print(json.dumps(run_case(args.child, args.seconds, args.steps, args.tiny, args.threads)))
        return {}

    results = {}
    for case in args.only or CASES:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", case, "--seconds", str(args.seconds),
               "--steps", str(args.steps), "--threads", str(args.threads)] + (["--tiny"] if args.tiny else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"case {case} failed (exit {proc.returncode})")
        results[case] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{case}: {results[case]['seconds']:.2f} s", file=sys.stderr, flush=True)
    print_table(results, args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
