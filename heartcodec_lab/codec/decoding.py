"""One set of decoder settings for every caller of :meth:`HeartCodec.detokenize`.

Reconstruction, generation, evaluation and the training preview all decode tokens ``[8, T]``
to 48 kHz stereo ``[2, T * 3840]`` with the same settings (the ``detokenize`` config group):
Euler steps, guidance, window length, the seed of the flow-matching noise, ``compile`` (opt-in inductor compilation of the
estimator, :mod:`heartcodec_lab.codec.compiling`; off by default), ``solver`` (euler, the released one and the
default; midpoint, heun or ab2: :mod:`heartcodec_lab.codec.solvers`), ``time_power`` (the solver's time grid) and ``precision`` (fp32, bf16 or auto for the
estimator: :mod:`heartcodec_lab.codec.precision`; None in Python leaves the codec as it is).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from .model import WINDOW_SECONDS
from .precision import check_precision
from .solvers import check_solver, evaluations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetokenizeSettings:
    num_steps: int = 10
    guidance_scale: float = 1.25
    duration: float = WINDOW_SECONDS
    seed: int | None = 0  # None: the noise continues the global random stream
    compile: bool = False  # torch.compile the estimator before decoding (rounding-level differences)
    solver: str = "euler"  # euler | midpoint | heun | ab2 (midpoint and heun: 2 estimator calls per step)
    time_power: float = 1.0  # time grid linspace(0, 1, n + 1) ** time_power; 1 = the released uniform grid
    precision: str | None = None  # fp32 | bf16 | auto for the estimator; None: as the codec is (config: fp32)

    def __post_init__(self):
        check_solver(self.solver)
        if not self.time_power > 0:
            raise ValueError(f"detokenize.time_power must be positive, got {self.time_power}")
        if self.precision is not None:
            object.__setattr__(self, "precision", check_precision(self.precision))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> DetokenizeSettings:
        """From a config node / dict; unknown keys are an error (a typo must not fall back to a default)."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"detokenize: unknown setting(s) {unknown}; known: {sorted(known)}")
        seed = values.get("seed", cls.seed)
        return cls(
            num_steps=int(values.get("num_steps", cls.num_steps)),
            guidance_scale=float(values.get("guidance_scale", cls.guidance_scale)),
            duration=float(values.get("duration", cls.duration)),
            seed=None if seed is None else int(seed),
            compile=_flag(values.get("compile", cls.compile)),
            solver=str(values.get("solver", cls.solver)),
            time_power=float(values.get("time_power", cls.time_power)),
            precision=None if values.get("precision") is None else str(values["precision"]),
        )

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def apply_precision(self, codec) -> str:
        """Set the codec's estimator precision (when ``precision`` is set); returns a header line: what and why."""
        choice = None
        if self.precision is not None and hasattr(codec, "set_precision"):
            choice = codec.set_precision(self.precision)
        what = str(choice) if choice is not None else f"estimator: {getattr(codec, 'precision', 'fp32')} (as loaded)"
        line = (
            f"detokenize: {what}; ScalarModel, RVQ and conditioning fp32; solver {self.solver}, "
            f"{self.num_steps} steps (time grid power {self.time_power:g}) = "
            f"{evaluations(self.solver, self.num_steps)} guided estimator calls per window"
        )
        if getattr(codec, "_precision_header", None) != line:  # once per codec and setting, not per call
            log.info(line)
            try:
                codec._precision_header = line
            except AttributeError:  # a stand-in that takes no attributes
                pass
        return line

    @torch.no_grad()
    def decode(self, codec, codes: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """Codes ``[8, T]`` -> float32 stereo ``[2, T * 3840]`` on the CPU; seeds the global RNG first (when set).

        ``num_quantizers=k`` decodes from the first k residual levels only (codebook-depth curves).
        """
        if self.seed is not None:
            torch.manual_seed(self.seed)
        try:
            device = next(codec.parameters()).device
        except (AttributeError, StopIteration):  # a stand-in without parameters
            device = torch.device("cpu")
        if self.precision is not None:
            self.apply_precision(codec)
        if self.compile and hasattr(codec, "flow_matching"):
            from .compiling import compile_estimator

            compile_estimator(codec)
        depth = {} if num_quantizers is None else {"num_quantizers": int(num_quantizers)}
        if self.solver != "euler":
            depth["solver"] = self.solver
        if self.time_power != 1.0:
            depth["time_power"] = self.time_power
        wav = codec.detokenize(
            codes.to(device=device, dtype=torch.long),
            duration=self.duration,
            num_steps=self.num_steps,
            guidance_scale=self.guidance_scale,
            disable_progress=True,
            **depth,
        )
        return wav.detach().float().cpu()


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"detokenize.compile must be true or false, got {value!r}")
