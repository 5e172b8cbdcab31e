"""Per-part precision policy: ``fp32 | bf16 | auto`` for the parts that tolerate bf16.

What runs in bf16 under ``bf16`` (measured by ``benchmarks/bench_precision.py``, see
docs/performance.md "Precision"):

- the flow-matching estimator (DiT): bf16 weights and matmuls; its timestep and rotary phases are
  still computed in float32, and the ODE state it integrates stays float32;
- the official encoder's transformers (Whisper, WavLM, query transformer): bf16 autocast, the
  mel / STFT front ends float32.

What never does: the ScalarModel (its decoder rounds latents to ninths), the residual VQ (nearest
codes by distance) and the conditioning layers. ``fp32`` is the reference and reproduces float32
results bit for bit.

``auto`` picks bf16 for a part only when (1) the device has fast bf16 (CUDA with bf16 support; on
the CPU the ``amx_bf16`` or ``avx512_bf16`` flag) and (2) the part's fidelity was measured to hold
(:data:`MEASURED_OK`); otherwise fp32. :func:`resolve_precision` returns the choice and the reason,
which the run headers print.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "auto")
#: CPU flags (``/proc/cpuinfo``) that make bf16 matmuls faster than float32.
FAST_BF16_FLAGS = ("amx_bf16", "avx512_bf16")

#: Parts whose bf16 fidelity passed ``benchmarks/bench_precision.py`` (miniature and full-size
#: key-seeded weights; bounds in docs/performance.md). ``auto`` uses bf16 only for these.
MEASURED_OK = {
    "estimator": True,  # detokenize deviation well inside the seed spread, rounding flips below 0.5 %
    # bf16 token agreement with fp32 on the embedded tiny vqv12: 98 % (level 0) down to 89 % (level 7), short
    # of the 99.5 % bound (though inside the encoder's own -60 dB-noise stability, 96 % .. 55 %): opt-in only
    "official_encoder": False,
}


@dataclass(frozen=True)
class PrecisionChoice:
    """What a part runs in and why (``dtype`` float32 or bfloat16)."""

    part: str
    requested: str
    dtype: torch.dtype
    reason: str

    @property
    def name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")

    def __str__(self) -> str:
        return f"{self.part}: {self.name} ({self.requested}: {self.reason})"


def check_precision(name: str) -> str:
    name = str(name).lower()
    aliases = {"float32": "fp32", "bfloat16": "bf16"}
    name = aliases.get(name, name)
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return name


@functools.cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where ``/proc/cpuinfo`` does not exist)."""
    path = Path(cpuinfo)
    if not path.is_file():
        return frozenset()
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def fast_bf16(device: str | torch.device = "cpu", flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """Whether ``device`` has fast bf16 matmuls, and the evidence."""
    device = torch.device(device)
    if device.type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, "CUDA device with bf16" if ok else "CUDA device without bf16 support"
    if device.type != "cpu":
        return False, f"no bf16 policy for {device.type} devices"
    flags = cpu_flags() if flags is None else flags
    found = [f for f in FAST_BF16_FLAGS if f in flags]
    if found:
        return True, f"CPU has {' + '.join(found)}"
    return (
        False,
        "CPU has neither amx_bf16 nor avx512_bf16 (bf16 matmuls would be slower than float32)",
    )


def resolve_precision(
    name: str,
    part: str,
    device: str | torch.device = "cpu",
    flags: frozenset[str] | None = None,
) -> PrecisionChoice:
    """``fp32 | bf16 | auto`` for ``part`` on ``device`` -> :class:`PrecisionChoice`."""
    name = check_precision(name)
    if name == "fp32":
        return PrecisionChoice(part, name, torch.float32, "requested")
    if name == "bf16":
        return PrecisionChoice(part, name, torch.bfloat16, "requested")
    fast, why = fast_bf16(device, flags)
    if not fast:
        return PrecisionChoice(part, name, torch.float32, why)
    if not MEASURED_OK.get(part, False):
        return PrecisionChoice(
            part,
            name,
            torch.float32,
            f"{why}, but bf16 fidelity of {part} not measured to pass",
        )
    return PrecisionChoice(part, name, torch.bfloat16, f"{why} and measured bf16 fidelity passes")


def autocast(dtype: torch.dtype, device: str | torch.device):
    """A bf16 autocast context on ``device`` for ``dtype == bfloat16``, a null context otherwise."""
    import contextlib

    if dtype != torch.bfloat16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
