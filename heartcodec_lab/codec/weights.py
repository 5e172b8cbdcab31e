"""Small tools for codec weights: key spellings, the ``initted`` quirk, init-free construction, hashing."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

#: Old ``torch.nn.utils.weight_norm`` suffixes -> parametrization keys used by this package.
_WEIGHT_NORM_SPELLINGS = {
    ".weight_g": ".parametrizations.weight.original0",
    ".weight_v": ".parametrizations.weight.original1",
}

#: The ``torch.nn.init`` functions module constructors call to fill weights.
_INIT_FUNCTIONS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)


def canonical_key(key: str) -> str:
    """Map the legacy weight-norm spelling (``weight_g`` / ``weight_v``) to ``parametrizations.weight.original0/1``."""
    for old, new in _WEIGHT_NORM_SPELLINGS.items():
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def is_initted_flag(key: str) -> bool:
    return key.endswith("._codebook.initted")


def adapt_initted(stored: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """The RVQ ``initted`` flag: float ``[1]`` in the released files, bool ``[]`` in vector-quantize-pytorch >= 1.27.

    Any one-element tensor is accepted; non-zero means initialised.
    """
    if stored.numel() != 1:
        raise ValueError(f"expected a one-element flag, got shape {list(stored.shape)}")
    return (stored.reshape(()) != 0).to(expected.dtype).reshape(expected.shape)


@contextlib.contextmanager
def skip_weight_init() -> Iterator[None]:
    """Build modules without filling their weights (they are overwritten right after).

    ``torch.nn.init`` fill functions become no-ops for the duration, which saves
    tens of seconds for the 1.6 B-parameter codec, and the global RNG is forked
    so building a model never shifts the random stream a later ``detokenize``
    draws from. Not thread-safe: do not build other modules concurrently.
    """
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS}

    def keep(tensor, *args, **kwargs):
        return tensor

    try:
        for name in _INIT_FUNCTIONS:
            setattr(nn.init, name, keep)
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()
