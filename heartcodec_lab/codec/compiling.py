"""Opt-in ``torch.compile`` (inductor) of the flow-matching estimator, off by default.

The estimator is where detokenize spends its time (about 95 % of the FLOPs); it is called
with the same shapes for every Euler step and window (``[2, frames, in_channels]`` with
guidance), so one compilation serves a whole job. Compiling happens in place
(``nn.Module.compile``): parameters and state-dict keys stay as they are, and the first
call pays the compilation (minutes on a loaded 2-core CPU; a C++ compiler is needed there).

Numbers: inductor fuses and reorders float32 arithmetic, so results differ from eager by
rounding only (tests/codec/test_codec_compile.py bounds it on the tiny codec). The ScalarModel is
not compiled: its streamed decode carries Python-side state between blocks.
"""

from __future__ import annotations

from torch import nn


def is_compiled(module: nn.Module) -> bool:
    return getattr(module, "_compiled_call_impl", None) is not None


def compile_estimator(codec: nn.Module, mode: str | None = None) -> nn.Module:
    """Compile ``codec.flow_matching.estimator`` with inductor in place (idempotent); returns ``codec``.

    ``mode``: a ``torch.compile`` mode (None = default; "max-autotune" tries more kernels and
    takes longer to compile).
    """
    estimator = codec.flow_matching.estimator
    if not is_compiled(estimator):
        estimator.compile(backend="inductor", mode=mode, dynamic=False)
    return codec
