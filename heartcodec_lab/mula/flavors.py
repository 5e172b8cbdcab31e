"""Sizes ("flavors") of the two torchtune LLaMA-3.2 stacks inside HeartMuLa.

A HeartMuLa ``config.json`` names its backbone and decoder by flavor
(``"backbone_flavor": "llama-3B"``). The released names, the two tiny fixture
sizes and the embedded default are registered here; any other size can be
registered with :func:`register_flavor` or given inline in the config as a
mapping of :func:`torchtune.models.llama3_2.llama3_2` keyword arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from torchtune.models import llama3_2

_COMMON = {"attn_dropout": 0.0, "norm_eps": 1e-5, "rope_base": 500_000, "scale_factor": 32}
_REQUIRED = ("num_layers", "num_heads", "num_kv_heads", "embed_dim", "max_seq_len", "intermediate_dim")

# vocab_size only sizes the token embedding and output layer, which HeartMuLa drops.
FLAVORS: dict[str, dict[str, Any]] = {
    "llama-3B": dict(
        _COMMON,
        vocab_size=128_256,
        num_layers=28,
        num_heads=24,
        num_kv_heads=8,
        embed_dim=3072,
        max_seq_len=8192,
        intermediate_dim=8192,
    ),
    "llama-300M": dict(
        _COMMON,
        vocab_size=128_256,
        num_layers=3,
        num_heads=8,
        num_kv_heads=4,
        embed_dim=3072,
        max_seq_len=2048,
        intermediate_dim=8192,
    ),
    "llama-7B": dict(
        _COMMON,
        vocab_size=128_256,
        num_layers=32,
        num_heads=32,
        num_kv_heads=8,
        embed_dim=4096,
        max_seq_len=8192,
        intermediate_dim=14336,
    ),
    "llama-400M": dict(
        _COMMON,
        vocab_size=128_256,
        num_layers=4,
        num_heads=8,
        num_kv_heads=4,
        embed_dim=3072,
        max_seq_len=2048,
        intermediate_dim=8192,
    ),
    # the tiny random fixtures (fixtures/tiny_configs.json)
    "llama-tiny-backbone": dict(
        _COMMON,
        vocab_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        embed_dim=64,
        max_seq_len=512,
        intermediate_dim=128,
    ),
    "llama-tiny-decoder": dict(
        _COMMON,
        vocab_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        embed_dim=32,
        max_seq_len=64,
        intermediate_dim=64,
    ),
}


def register_flavor(name: str, **kwargs: Any) -> None:
    """Add (or replace) a named size; ``kwargs`` are ``llama3_2`` arguments (missing common ones default)."""
    FLAVORS[name] = resolve_flavor(kwargs)


def resolve_flavor(flavor: str | Mapping[str, Any]) -> dict[str, Any]:
    """A flavor name or an inline mapping -> complete ``llama3_2`` keyword arguments."""
    if isinstance(flavor, str):
        if flavor not in FLAVORS:
            raise ValueError(
                f"unknown HeartMuLa flavor {flavor!r}; known: {sorted(FLAVORS)} "
                "(register a custom size with heartcodec_lab.mula.register_flavor or give the sizes inline)"
            )
        return dict(FLAVORS[flavor])
    if not isinstance(flavor, Mapping):
        raise TypeError(f"a flavor is a name or a mapping of llama3_2 arguments, got {type(flavor).__name__}")
    missing = [k for k in _REQUIRED if k not in flavor]
    if missing:
        raise ValueError(f"custom flavor {dict(flavor)} lacks {missing}")
    return {"vocab_size": 128, **_COMMON, **dict(flavor)}


def build_stack(flavor: str | Mapping[str, Any]) -> tuple[nn.Module, int]:
    """Build a torchtune ``TransformerDecoder`` without its token embedding and output layer.

    HeartMuLa feeds it summed embeddings ``[B, S, D]`` and reads hidden states
    ``[B, S, D]``, so both ends become identities. Returns ``(stack, D)``.
    """
    stack = llama3_2.llama3_2(**resolve_flavor(flavor))
    dim = stack.tok_embeddings.embedding_dim
    stack.tok_embeddings = nn.Identity()
    stack.output = nn.Identity()
    return stack, dim
