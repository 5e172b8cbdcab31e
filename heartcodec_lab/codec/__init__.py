"""HeartCodec, the decoder side: tokens [8, T] at 12.5 Hz <-> RVQ embeddings, latents and 48 kHz stereo audio.

``load_codec(path)`` loads a released checkpoint folder strictly; ``load_codec()``
builds the embedded tiny default (random weights, no meaningful audio).
"""

from heartcodec_lab.codec.config import ConfigError, HeartCodecConfig
from heartcodec_lab.codec.decoding import DetokenizeSettings
from heartcodec_lab.codec.default import build_default_codec
from heartcodec_lab.codec.checkpoints import CheckpointError, locate_checkpoint
from heartcodec_lab.codec.loading import load_codec
from heartcodec_lab.codec.model import WINDOW_SECONDS, HeartCodec, WindowPlan
from heartcodec_lab.codec.quantizer import QuantizerModeError
from heartcodec_lab.codec.scalar_model import ScalarModel

__all__ = [
    "WINDOW_SECONDS",
    "CheckpointError",
    "ConfigError",
    "DetokenizeSettings",
    "HeartCodec",
    "HeartCodecConfig",
    "QuantizerModeError",
    "ScalarModel",
    "WindowPlan",
    "build_default_codec",
    "load_codec",
    "locate_checkpoint",
]
