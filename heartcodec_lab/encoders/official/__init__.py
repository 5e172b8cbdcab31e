"""The official HeartCodec audio encoder (vqv12): audio -> 8 x 12.5 Hz tokens.

``load_official_encoder(path, codec)`` loads a released ``HeartCodec-oss-encoder`` folder
(or builds the embedded tiny default when ``path`` is None) and shares ``codec.quantizer``.
"""

from .config import embedded_tiny_config, released_config, stream_widths
from .embedded import build_embedded_encoder
from .loading import CheckpointError, load_encoder_module, load_official_encoder, load_residual_vq
from .model import OfficialEncoder, VQV12Encoder

__all__ = [
    "CheckpointError",
    "OfficialEncoder",
    "VQV12Encoder",
    "build_embedded_encoder",
    "embedded_tiny_config",
    "load_encoder_module",
    "load_official_encoder",
    "load_residual_vq",
    "released_config",
    "stream_widths",
]
