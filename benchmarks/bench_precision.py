"""Fidelity of bf16 (and of the higher-order solvers) against the float32 Euler reference.

    python benchmarks/bench_precision.py                         # miniature codec + encoder + HeartMuLa
    python benchmarks/bench_precision.py --only codec --size full --layers 4 1 --seconds 7.44 --steps 4
    python benchmarks/bench_precision.py --only solvers --size mini --seconds 29.76

Parts (``--only``, repeatable):
    codec     detokenize: fp32 seed 0 vs seed 1 (the spread) and each precision (seed 0) vs fp32 seed 0:
              rms deviation of latents and audio, share of latents rounded to another ninth, CPU seconds
    solvers   latent error of euler / midpoint / heun / ab2 at several step counts and time grids to a
              64-step Heun reference (uniform grid)
    encoder   official encoder (embedded tiny vqv12 on synthetic music): token agreement with fp32 per level
    mula      HeartMuLa (embedded tiny): teacher-forced next-token (argmax) agreement bf16 vs fp32

``--size``: ``tiny`` (the random tiny codec), ``mini`` (the shipped miniature, default) or ``full``
(full-size width with key-seeded random weights as in ``bench_codec.py``; ``--layers`` reduces the
estimator's depth to keep one process near 3 GB). Codes are random (seeded). Times are process CPU
seconds; state the machine and its load with any figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PARTS = ("codec", "solvers", "encoder", "mula")
SOLVER_SETTINGS = (  # (solver, steps, time_power)
    [("euler", n, 1.0) for n in (2, 4, 5, 10)]
    + [("midpoint", n, 1.0) for n in (2, 3, 5)]
    + [("heun", n, 1.0) for n in (2, 3, 5)]
    + [("ab2", n, 1.0) for n in (4, 5, 10)]
    + [("euler", n, 0.5) for n in (5, 10)]
    + [("midpoint", 2, 0.5), ("heun", 2, 0.5)]
    + [("ab2", n, 0.5) for n in (3, 4, 5)]
)
#: the few settings the full-size run can afford on a shared 2-core machine
SMALL_SOLVER_SETTINGS = [("euler", 5, 1.0), ("euler", 10, 1.0), ("midpoint", 2, 1.0), ("ab2", 5, 1.0), ("ab2", 5, 0.5)]


def build(size: str, layers: tuple[int, int] | None, with_scalar_model: bool = True):
    from heartcodec_lab.codec import RANDOM_CODEC, load_codec

    if size == "tiny":
        return load_codec(RANDOM_CODEC)
    if size == "mini":
        return load_codec(None)
    from heartcodec_lab.codec import HeartCodec, HeartCodecConfig
    from heartcodec_lab.codec.benchmark_models import randomize_
    from heartcodec_lab.codec.weights import skip_weight_init

    config = HeartCodecConfig() if not layers else HeartCodecConfig(num_layers=layers[0], num_layers_2=layers[1])
    with skip_weight_init(), torch.device("meta"):
        codec = HeartCodec(config)
    if not with_scalar_model:  # latents only: the ScalarModel (1.6 GB) stays on the meta device
        randomize_(codec.flow_matching.to_empty(device="cpu"))
        return codec.eval().requires_grad_(False)
    codec = codec.to_empty(device="cpu")
    randomize_(codec)
    return codec.eval().requires_grad_(False)


def random_codes(codec, seconds: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    cfg = codec.config
    return torch.randint(
        0,
        cfg.codebook_size,
        (cfg.num_quantizers, max(1, int(seconds * cfg.codes_per_second))),
        generator=g,
    )


def codec_part(args) -> dict:
    from heartcodec_lab.codec.fidelity import precision_fidelity
    from heartcodec_lab.codec.precision import resolve_precision

    codec = build(args.size, args.layers, with_scalar_model=not args.latents_only)
    # auto first; bf16 separately only where auto stays fp32 (else it is the same run)
    names = ("auto",) if resolve_precision("auto", "estimator").name == "bf16" else ("auto", "bf16")
    codes = random_codes(codec, args.seconds)
    return precision_fidelity(codec, codes, args.seconds, args.steps, names, decode=not args.latents_only)


def solvers_part(args) -> list[dict]:
    from heartcodec_lab.codec.fidelity import solver_table

    codec = build(args.size, args.layers)
    return solver_table(
        codec,
        random_codes(codec, args.seconds),
        args.seconds,
        SMALL_SOLVER_SETTINGS if args.solver_set == "small" else SOLVER_SETTINGS,
        reference=("heun", args.reference_steps),
        with_audio=args.size != "full",
    )


def encoder_part(args) -> dict:
    from heartcodec_lab.codec import RANDOM_CODEC, load_codec
    from heartcodec_lab.data.synth import synth_music
    from heartcodec_lab.encoders.official import load_official_encoder

    encoder = load_official_encoder(None, load_codec(RANDOM_CODEC))
    audio = torch.cat(
        [synth_music(args.encoder_seconds, seed) for seed in range(args.encoder_clips)],
        dim=1,
    )
    rows = {}
    for name in ("fp32", "bf16"):
        encoder.set_precision(name)
        c0 = __import__("time").process_time()
        rows[name] = {
            "tokens": encoder.encode(audio, 48000).tokens,
            "cpu_s": __import__("time").process_time() - c0,
        }
    ref, low = rows["fp32"]["tokens"], rows["bf16"]["tokens"]
    return {
        "frames": ref.shape[1],
        "agreement_per_level": (ref == low).float().mean(1).tolist(),
        "fp32_cpu_s": rows["fp32"]["cpu_s"],
        "bf16_cpu_s": rows["bf16"]["cpu_s"],
    }


def mula_part(args) -> dict:
    from heartcodec_lab.mula import load_mula
    from heartcodec_lab.mula.scoring import next_token_agreement

    f32, low = load_mula(None, dtype=torch.float32), load_mula(None, dtype=torch.bfloat16)
    return next_token_agreement(
        f32, low, "piano,happy", "[verse]\nthe sun creeps in across the floor", args.mula_frames
    )


def print_report(results: dict, args) -> None:
    from heartcodec_lab.codec.precision import cpu_flags, fast_bf16

    print(
        f"machine: {os.cpu_count()} CPUs, fast bf16: {fast_bf16('cpu')}; flags with bf16: "
        f"{sorted(f for f in cpu_flags() if 'bf16' in f)}; load {os.getloadavg()[0]:.1f}; threads {args.threads}"
    )
    if "codec" in results:
        r = results["codec"]
        s = r["spread"]
        print(
            f"\ndetokenize {args.size} {args.seconds:g} s, {args.steps} Euler steps "
            f"(audio rms {r.get('reference_audio_rms', float('nan')):.4f}, latent rms {r['reference_latent_rms']:.3f}):"
        )
        print(
            "| setting | latent rms dev | audio rms dev | ninth flips % | dev / seed spread (audio; latents with --latents-only) | CPU s |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        print(
            f"| fp32 seed 1 vs seed 0 (spread) | {s['latent_rms']:.4g} | {s.get('audio_rms', float('nan')):.4g} | "
            f"{100 * s['rounding_flips']:.2f} | 1 | {r['fp32_cpu_s']:.1f} |"
        )
        for name in ("auto", "bf16"):
            if name in r and isinstance(r[name], dict):
                x = r[name]
                print(
                    f"| {name} -> {x['chosen']} | {x['latent_rms']:.4g} | {x.get('audio_rms', float('nan')):.4g} | "
                    f"{100 * x['rounding_flips']:.2f} | {x['inside_spread']:.4f} | {x['cpu_s']:.1f} |"
                )
        print(f"auto: {r['auto']['reason']}" if "auto" in r else "")
    if "solvers" in results:
        print(f"\nsolvers, {args.size} {args.seconds:g} s, error to heun x {args.reference_steps}:")
        print(
            "| solver | steps | time power | estimator evaluations | latent rms error | relative | audio rms error "
            "| CPU s |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for x in results["solvers"]:
            audio = f"{x['audio_rms_error']:.4g}" if "audio_rms_error" in x else ""
            print(
                f"| {x['solver']} | {x['steps']} | {x['time_power']:g} | {x['evaluations']} | {x['latent_rms_error']:.4g} | "
                f"{x['relative_error']:.4f} | {audio} | {x['cpu_s']:.1f} |"
            )
    if "encoder" in results:
        e = results["encoder"]
        levels = " ".join(f"{100 * a:.2f}" for a in e["agreement_per_level"])
        print(
            f"\nofficial encoder (embedded tiny), {e['frames']} frames: bf16 token agreement with fp32 per level % "
            f"{levels}; CPU s fp32 {e['fp32_cpu_s']:.1f}, bf16 {e['bf16_cpu_s']:.1f}"
        )
    if "mula" in results:
        m = results["mula"]
        print(
            f"\nHeartMuLa (embedded tiny), {m['frames']} frames x 8: next-token agreement "
            f"{100 * m['next_token_agreement']:.2f} %, max |logit difference| {m['max_logit_difference']:.3g}"
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=PARTS)
    parser.add_argument("--size", choices=("tiny", "mini", "full"), default="mini")
    parser.add_argument(
        "--layers",
        type=int,
        nargs=2,
        help="full size: estimator depth (stage 1, stage 2)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=7.44,
        help="detokenize length (one window at 7.44)",
    )
    parser.add_argument("--steps", type=int, default=10, help="Euler steps of the precision comparison")
    parser.add_argument("--latents-only", action="store_true", help="codec: skip the ScalarModel (memory)")
    parser.add_argument("--reference-steps", type=int, default=64, help="steps of the Heun reference")
    parser.add_argument("--solver-set", choices=("all", "small"), default="all", help="solver settings to tabulate")
    parser.add_argument("--encoder-seconds", type=float, default=30.0)
    parser.add_argument("--encoder-clips", type=int, default=2)
    parser.add_argument("--mula-frames", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    for part in args.only or PARTS:
        results[part] = globals()[f"{part}_part"](args)
    print_report(results, args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
    return results


if __name__ == "__main__":
    main()
