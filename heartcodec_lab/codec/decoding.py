"""One set of decoder settings for every caller of :meth:`HeartCodec.detokenize`.

Reconstruction, generation, evaluation and the training preview all decode tokens ``[8, T]``
to 48 kHz stereo ``[2, T * 3840]`` with the same settings (the ``detokenize`` config group):
Euler steps, guidance, window length, the seed of the flow-matching noise, and ``compile`` (opt-in inductor compilation of the
estimator, :mod:`heartcodec_lab.codec.compiling`; off by default).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch

from .model import WINDOW_SECONDS


@dataclass(frozen=True)
class DetokenizeSettings:
    num_steps: int = 10
    guidance_scale: float = 1.25
    duration: float = WINDOW_SECONDS
    seed: int | None = 0  # None: the noise continues the global random stream
    compile: bool = False  # torch.compile the estimator before decoding (rounding-level differences)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "DetokenizeSettings":
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
        )

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

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
        if self.compile and hasattr(codec, "flow_matching"):
            from .compiling import compile_estimator

            compile_estimator(codec)
        depth = {} if num_quantizers is None else {"num_quantizers": int(num_quantizers)}
        wav = codec.detokenize(codes.to(device=device, dtype=torch.long), duration=self.duration,
                               num_steps=self.num_steps, guidance_scale=self.guidance_scale, disable_progress=True,
                               **depth)
        return wav.detach().float().cpu()


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"detokenize.compile must be true or false, got {value!r}")
