"""The miniature HeartCodec trained in this toolkit (``python -m heartcodec_lab.minicodec.train``).

Its weights ship inside the package (``heartcodec_lab/assets/minicodec/``) in the released
layouts: ``codec/`` (``config.json`` + ``model.safetensors``, for :func:`load_codec`) and
``encoder/`` (its true encoder, for ``build_encoder("minicodec", None, codec)``).
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
    """The shipped miniature HeartCodec, frozen, float32 (a clear error if the package lacks it)."""
    from .loading import CheckpointError, load_codec

    folder = shipped_codec_dir()
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: the miniature codec's weights are not in this installation")
    codec = load_codec(folder, device=device)
    codec.source["kind"] = "embedded-minicodec"
    return codec
