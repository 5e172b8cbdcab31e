"""How far a precision or solver setting moves detokenize from the float32 Euler reference.

Used by ``benchmarks/bench_precision.py`` (tables in docs/performance.md) and by the tests at tiny
size. All comparisons share the noise (same seed), except the *seed spread*: the difference between
two float32 runs with different noise seeds, the variation detokenize has anyway. A setting is
harmless when its deviation sits well inside that spread.
"""

from __future__ import annotations

import time

import torch

from .scalar_model import LATENT_LEVELS
from .solvers import evaluations


def rms(x: torch.Tensor) -> float:
    return x.float().square().mean().sqrt().item()


def run_latents(
    codec,
    codes: torch.Tensor,
    seed: int,
    duration: float,
    num_steps: int,
    solver: str = "euler",
    time_power: float = 1.0,
) -> tuple[torch.Tensor, float]:
    """Latents of every window ``[W, 2 * window, 256]`` (float32) for ``seed``, and the process CPU seconds."""
    torch.manual_seed(seed)
    c0 = time.process_time()
    extra = {} if (solver, time_power) == ("euler", 1.0) else {"solver": solver, "time_power": time_power}
    windows = codec.generate_latents(codes, duration=duration, num_steps=num_steps, **extra)
    return torch.cat(windows).float(), time.process_time() - c0


def audio_of(codec, latents: torch.Tensor, duration: float) -> torch.Tensor:
    """Stereo audio ``[2, N]`` of window latents ``[W, 2 * window, 256]`` (float32 ScalarModel)."""
    return codec.latents_to_wav([w[None] for w in latents], duration)


def rounding_flips(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of latent values that the ScalarModel decoder rounds to a different ninth."""
    return (torch.round(a * LATENT_LEVELS) != torch.round(b * LATENT_LEVELS)).float().mean().item()


def compare(ref_latents, ref_audio, latents, audio) -> dict:
    """Deviation of one setting from the reference (same noise): rms of latents and audio, rounding flips.

    ``audio`` None (latents only): no audio deviation.
    """
    out = {"latent_rms": rms(latents - ref_latents), "rounding_flips": rounding_flips(latents, ref_latents)}
    if audio is not None:
        out["audio_rms"] = rms(audio - ref_audio)
    return out


def precision_fidelity(
    codec, codes: torch.Tensor, duration: float, num_steps: int, precisions=("bf16",), seeds=(0, 1), decode: bool = True
) -> dict:
    """fp32 with two seeds (the spread), then each precision with the first seed, against fp32.

    The codec must be float32; it is left at the last precision (bf16 narrowing is in place).
    Returns ``{"spread": {...}, "fp32_cpu_s": s, "<precision>": {..., "cpu_s": s, "inside_spread": r}}``
    where ``inside_spread`` is the audio deviation divided by the seed spread (the latent one with
    ``decode=False``, which skips the ScalarModel: latents only).
    """

    def audio(latents):
        return audio_of(codec, latents, duration) if decode else None

    ref, cpu = run_latents(codec, codes, seeds[0], duration, num_steps)
    ref_audio = audio(ref)
    other, _ = run_latents(codec, codes, seeds[1], duration, num_steps)
    spread = compare(ref, ref_audio, other, audio(other))
    out = {"spread": spread, "fp32_cpu_s": cpu, "reference_latent_rms": rms(ref)}
    if decode:
        out["reference_audio_rms"] = rms(ref_audio)
    key = "audio_rms" if decode else "latent_rms"
    for name in precisions:
        choice = codec.set_precision(name)
        lat, cpu = run_latents(codec, codes, seeds[0], duration, num_steps)
        row = compare(ref, ref_audio, lat, audio(lat))
        row.update(
            cpu_s=cpu, chosen=choice.name, reason=choice.reason, inside_spread=row[key] / max(spread[key], 1e-30)
        )
        out[name] = row
    return out


def solver_table(
    codec,
    codes: torch.Tensor,
    duration: float,
    settings,
    reference=("heun", 64),
    seed: int = 0,
    with_audio: bool = False,
) -> list[dict]:
    """Error of each ``(solver, steps, time_power)`` in ``settings`` to a many-step reference (same noise).

    Rows: solver, steps, time_power, estimator evaluations (guided calls per window), latent rms error,
    relative latent error, CPU seconds (and audio rms error with ``with_audio``).
    """
    ref, _ = run_latents(codec, codes, seed, duration, reference[1], reference[0])
    ref_audio = audio_of(codec, ref, duration) if with_audio else None
    rows = []
    for solver, steps, power in settings:
        lat, cpu = run_latents(codec, codes, seed, duration, steps, solver, power)
        row = {
            "solver": solver,
            "steps": steps,
            "time_power": power,
            "evaluations": evaluations(solver, steps),
            "latent_rms_error": rms(lat - ref),
            "relative_error": rms(lat - ref) / rms(ref),
            "cpu_s": cpu,
        }
        if with_audio:
            row["audio_rms_error"] = rms(audio_of(codec, lat, duration) - ref_audio)
        rows.append(row)
    return rows
