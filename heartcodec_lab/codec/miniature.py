"""The miniature HeartCodec trained in this toolkit (``python -m heartcodec_lab.minicodec.train``).

Its weights ship inside the package (``heartcodec_lab/assets/minicodec/``) in the released
layouts: ``codec/`` (``config.json`` + ``model.safetensors``, for :func:`load_codec`) and
``encoder/`` (its true encoder, for ``build_encoder("minicodec", None, codec)``).
It is the embedded default: ``load_codec(None)`` and ``codec.path: null`` load it (source kind
``embedded-minicodec``); ``codec.path=embedded:random`` gives the random tiny codec instead.
"""

from __future__ import annotations

from pathlib import Path

import torch

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets" / "minicodec"


def shipped_codec_dir() -> Path:
    return ASSETS_DIR / "codec"


def shipped_encoder_dir() -> Path:
    return ASSETS_DIR / "encoder"


def load_minicodec(device: str | torch.device = "cpu"):
    """The shipped miniature HeartCodec, frozen, float32: the same as ``load_codec(None)``."""
    from .loading import load_codec

    return load_codec(None, device=device)
