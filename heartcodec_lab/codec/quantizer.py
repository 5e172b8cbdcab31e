"""Helpers over the shared residual VQ (``flow_matching.vq_embed``, a vector-quantize-pytorch ``ResidualVQ``).

The RVQ defines what the tokens mean, so nothing here may change it: lookups and
nearest-code searches run in eval mode (train mode would update the EMA
codebooks and expire "dead" codes on every call), in float32 with autocast off,
and never with a codebook whose ``initted`` flag is false (vector-quantize-pytorch
would then k-means re-initialise it on the first forward, even in eval mode).

Shapes: codes ``[B, 8, T]`` int64 (quantizer-major, as HeartMuLa and token files
use them); embeddings / features ``[B, T, dim]``.
"""

from __future__ import annotations

import torch
from torch import nn


class QuantizerModeError(RuntimeError):
    """The shared RVQ is in a state where using it would change or misuse its codebooks."""


def check_frozen(rvq: nn.Module) -> None:
    """Refuse an RVQ in train mode or with an un-initialised codebook."""
    if rvq.training:
        raise QuantizerModeError(
            "the shared ResidualVQ is in train mode; its forward would update the EMA codebooks "
            "and change what every token means. Call .eval() on it (or on the codec) first."
        )
    for i, layer in enumerate(rvq.layers):
        initted = getattr(layer._codebook, "initted", None)
        if initted is not None and not bool(initted):
            raise QuantizerModeError(
                f"codebook {i} of the shared ResidualVQ is flagged as not initialised; its forward would "
                "k-means re-initialise it. The checkpoint is incomplete or was loaded wrongly."
            )


def _check_codes(codes: torch.Tensor, num_quantizers: int, codebook_size: int) -> None:
    if codes.dim() != 3 or codes.shape[1] != num_quantizers:
        raise ValueError(f"codes must be [B, {num_quantizers}, T], got {tuple(codes.shape)}")
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ValueError(f"codes must be an integer tensor, got {codes.dtype}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= codebook_size):
        raise ValueError(
            f"codes must lie in [0, {codebook_size}), got values in [{int(codes.min())}, {int(codes.max())}]"
        )


def codes_to_embedding(rvq: nn.Module, codes: torch.Tensor) -> torch.Tensor:
    """Codes ``[B, 8, T]`` -> RVQ embedding ``[B, T, dim]`` (sum of the code vectors, then ``project_out``).

    Differentiable w.r.t. nothing (the codebooks are frozen buffers) but safe to call with grad enabled.
    """
    _check_codes(codes, len(rvq.layers), rvq.codebook_size)
    device = rvq.layers[0]._codebook.embed.device
    with torch.autocast(device_type=device.type, enabled=False):
        return rvq.get_output_from_indices(codes.to(device=device, dtype=torch.long).transpose(1, 2))


@torch.no_grad()
def nearest_codes(rvq: nn.Module, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy residual nearest codes of ``features [B, T, dim]``.

    Returns ``(quantized [B, T, dim] float32, codes [B, 8, T] int64)``; computed in
    float32 in eval mode, so no buffer of the RVQ changes.
    """
    check_frozen(rvq)
    if features.dim() != 3:
        raise ValueError(f"features must be [B, T, dim], got {tuple(features.shape)}")
    with torch.autocast(device_type=features.device.type, enabled=False):
        quantized, indices, _ = rvq(features.float())
    return quantized, indices.transpose(1, 2).long()


def straight_through(rvq: nn.Module, features: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    """``quantized`` (the RVQ output for ``features [B, T, dim]``) with gradients to ``features``.

    The straight-through estimate is taken in the codebook space, as the RVQ itself trains: the
    gradient is ``project_in^T project_out^T g``. One taken in the feature space (``features +
    (quantized - features).detach()``) is wrong whenever ``codebook_dim < dim`` (8 vs 512 for the
    embedded codec, 32 vs 512 for the released one): it moves features along directions the codes
    cannot follow, and training drifts. ``project_out`` is affine, so its bias cancels below.
    """
    with torch.autocast(device_type=features.device.type, enabled=False):
        lifted = rvq.project_out(rvq.project_in(features.float()))
        return quantized.float() + (lifted - lifted.detach())
