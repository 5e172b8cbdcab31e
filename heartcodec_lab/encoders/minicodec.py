"""The miniature codec's true encoder behind the one encoder interface (kind ``"minicodec"``).

Audio (48 kHz stereo) -> the miniature's own ScalarModel encoder (both channels, 25 Hz)
-> a conv1d network trained jointly with the RVQ and the flow-matching decoder -> 512-d
features at 12.5 Hz -> the codec's RVQ. It is stored as a projection checkpoint
(``projection.safetensors`` + ``projection_config.json``) and differs from the projection
recipes in how it was trained (with the codec, as vqv12 was with HeartCodec), not in layout.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .projection import ProjectionEncoder

from heartcodec_lab.codec.miniature import shipped_encoder_dir


def load_minicodec_encoder(path: str | Path | None, codec: nn.Module, batch_chunks: int = 1) -> ProjectionEncoder:
    """The true encoder from ``path`` (None: the one shipped in the package) for ``codec``."""
    from .projection.export import load_projection_encoder

    folder = shipped_encoder_dir() if path is None else Path(path)
    encoder = load_projection_encoder(folder, codec, batch_chunks)
    encoder.encoder_id = "minicodec-true"
    return encoder
