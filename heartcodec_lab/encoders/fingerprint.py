"""Fingerprints that say whether two token sets came from the same encoder and the same codec RVQ.

``encoder_fingerprint(encoder)`` -> ``"<encoder id>@<12 hex>"``: a hash of the encoder's
description without file locations *and of its weights* (every tensor of its state, the shared
ResidualVQ included, the frozen codec behind a projection represented by its own description),
so a retrained projection, another seed of a stand-in or another codec's RVQ gives another
fingerprint while a moved checkpoint folder does not. ``rvq_fingerprint(quantizer)`` ->
``"rvq@<12 hex>"`` identifies the codebooks alone, to say *what* differs.
"""

from __future__ import annotations

import hashlib
import json

import torch
from torch import nn

# Left out of a description before hashing: where files are, and the hash of the projection's own
# weights file (safetensors writes its metadata map in a per-process order, so the same weights saved
# twice can hash differently; the weights themselves are hashed instead).
_NOT_IDENTITY = ("path", "root", "dir", "weights_file", "files", "source_checkpoint", "weights_sha256")


def strip_locations(value):
    """``value`` without the keys that name file locations (and the projection's file hash)."""
    if isinstance(value, dict):
        return {k: strip_locations(v) for k, v in value.items() if k not in _NOT_IDENTITY}
    if isinstance(value, (list, tuple)):
        return [strip_locations(v) for v in value]
    return value


def state_digest(module: nn.Module, skip_prefixes: tuple[str, ...] = ()) -> str:
    """sha256 over every tensor of ``module.state_dict()`` (name, dtype, shape, bytes), sorted by name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        if name.startswith(skip_prefixes) or not torch.is_tensor(tensor):
            continue
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # bytes of the raw storage (bfloat16 has no numpy dtype)
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def rvq_fingerprint(quantizer: nn.Module) -> str:
    """``rvq@<12 hex>`` of the codebooks a set of tokens refers to."""
    return f"rvq@{state_digest(quantizer)[:12]}"


def encoder_fingerprint(encoder: nn.Module) -> str:
    """``<encoder id>@<12 hex>`` of the description (locations stripped) and the weights.

    A projection encoder's frozen codec enters through its description (config and file hashes,
    or the embedded seed) rather than by hashing 1.6 B parameters on every run.
    """
    description = encoder.describe() if hasattr(encoder, "describe") else {}
    blob = json.dumps(strip_locations(description), sort_keys=True, default=str)
    weights = state_digest(encoder, skip_prefixes=("codec.",))
    digest = hashlib.sha256(f"{blob}|{weights}".encode()).hexdigest()
    return f"{description.get('encoder') or getattr(encoder, 'encoder_id', 'encoder')}@{digest[:12]}"
