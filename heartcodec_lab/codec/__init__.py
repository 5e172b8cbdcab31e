"""HeartCodec, the decoder side: tokens [8, T] at 12.5 Hz <-> RVQ embeddings, latents and 48 kHz stereo audio.

``load_codec(path)`` loads a released checkpoint folder strictly; ``load_codec()`` loads the
embedded default, the shipped miniature codec trained on synthetic music; ``load_codec(RANDOM_CODEC)``
(``"embedded:random"``) builds the tiny random-weight codec (right shapes, no meaningful audio).
"""

from heartcodec_lab.codec.checkpoints import RANDOM_CODEC, CheckpointError, embedded_codec_name, locate_checkpoint
from heartcodec_lab.codec.config import ConfigError, HeartCodecConfig
from heartcodec_lab.codec.decoding import DetokenizeSettings
from heartcodec_lab.codec.loading import load_codec
from heartcodec_lab.codec.model import WINDOW_SECONDS, HeartCodec, WindowPlan
from heartcodec_lab.codec.quantizer import QuantizerModeError
from heartcodec_lab.codec.random_codec import build_random_codec
from heartcodec_lab.codec.scalar_model import ScalarModel

__all__ = [
    "WINDOW_SECONDS",
    "CheckpointError",
    "ConfigError",
    "DetokenizeSettings",
    "HeartCodec",
    "HeartCodecConfig",
    "QuantizerModeError",
    "RANDOM_CODEC",
    "ScalarModel",
    "WindowPlan",
    "build_random_codec",
    "embedded_codec_name",
    "load_codec",
    "locate_checkpoint",
]
