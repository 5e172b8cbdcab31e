"""Devices, dtypes and frozen modules: one definition for the codec, encoders, HeartMuLa, training and jobs."""

from __future__ import annotations

import torch
from torch import nn

#: dtype names accepted by every ``dtype`` setting
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` (or None / empty): CUDA when available, else the CPU; anything else as torch reads it."""
    if device is None or str(device) in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def parse_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``"bf16"``, ``"float32"``, ``"torch.float16"``, a torch dtype; None / ``"auto"`` -> None (decide by device)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower().removeprefix("torch.")
    if name in ("auto", "", "none"):
        return None
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPES)} or auto")
    return DTYPES[name]


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA devices that support it, float32 everywhere else (never for the codec: it is float32 only)."""
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def freeze(module: nn.Module | None) -> nn.Module | None:
    """Eval mode and ``requires_grad=False`` everywhere (no autograd graph, no dropout, no EMA updates)."""
    if module is not None:
        module.eval()
        module.requires_grad_(False)
    return module
