"""The embedded default: a tiny vqv12 encoder the package builds itself (no download).

Same code path, frame structure and chunking as the released encoder, with narrow,
shallow sub-models (see :func:`config.embedded_tiny_config`), random weights drawn
from a fixed seed. Its tokens mean nothing musically; it exists so that every command
and test runs in seconds without a checkpoint.
"""

from __future__ import annotations

import math

import torch

from .config import embedded_tiny_config
from .model import VQV12Encoder

EMBEDDED_SEED = 20260123
# Sharper attention logits: with plain random weights attention is nearly uniform over the
# whole 29.76 s chunk and every output frame comes out the same.
_QUERY_KEY_GAIN = 3.0
_QUERY_KEY_NAMES = ("q_proj.", "k_proj.", "linear_q.", "linear_k.")


def _randomise(model: VQV12Encoder, generator: torch.Generator) -> None:
    """Unit-scale random weights (std 1/sqrt(fan_in)) so that every stream follows the audio.

    transformers' default init (std 0.02) makes the conformer and query outputs almost
    constant over time, which would give one repeated token per quantizer.
    """
    for name, param in model.named_parameters():
        if name.endswith("original0"):
            continue  # weight-norm magnitude: keeps the layer's scale, the direction is redrawn
        if param.dim() >= 2:
            fan_in = param[0].numel()
            # Not WavLM: its gated relative-position attention amplifies rounding noise when sharpened.
            sharpen = "wavlm" not in name and any(k in name for k in _QUERY_KEY_NAMES)
            gain = _QUERY_KEY_GAIN if sharpen else 1.0
            param.copy_(torch.randn(param.shape, generator=generator) * gain / math.sqrt(fan_in))
        elif name.endswith("bias"):
            param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    for name, param in model.query.named_parameters():
        if name.endswith(("q_norm.weight", "k_norm.weight")):
            param.fill_(_QUERY_KEY_GAIN)
        elif name.endswith("_scale.scale"):
            param.fill_(0.5)


def build_embedded_encoder(seed: int = EMBEDDED_SEED) -> VQV12Encoder:
    """Deterministic tiny encoder module (float32, eval mode, about 5 M parameters)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the sub-models' own init draws from the global generator
        model = VQV12Encoder(embedded_tiny_config())
    _randomise(model, generator)
    return model.requires_grad_(False).eval()
