"""Everything audio -> HeartMuLa tokens, behind one interface (:class:`AudioEncoder`).

* ``"official"``: the released vqv12 encoder (:mod:`heartcodec_lab.encoders.official`);
* ``"projection"``: light projections trained on ScalarModel latents
  (:mod:`heartcodec_lab.encoders.projection`);
* ``"minicodec"``: the true encoder of the miniature HeartCodec trained in this toolkit
  (:mod:`heartcodec_lab.encoders.minicodec`); use it with that codec.
"""

from __future__ import annotations

from torch import nn

from .base import FEATURE_DIM, NUM_QUANTIZERS, TOKEN_RATE_HZ, AudioEncoder, EncodedAudio, num_token_frames

ENCODER_KINDS = ("official", "projection", "minicodec")
_LAZY = {"OfficialEncoder", "load_official_encoder"}


def __getattr__(name: str):
    # The official encoder pulls in transformers (seconds to import): only on first use.
    if name in _LAZY:
        from . import official

        return getattr(official, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_encoder(kind: str, path: str | None, codec: nn.Module, **kwargs) -> AudioEncoder:
    """An encoder of ``kind`` ("official", "projection" or "minicodec") loaded from ``path`` (None: embedded default).

    The encoder shares ``codec.quantizer``; ``kwargs`` (e.g. ``batch_chunks``) go to the loader.
    ``allow_codec_mismatch`` only concerns projections and the minicodec encoder (an official encoder
    records no trained codec). The embedded default encoder is ``"minicodec"`` with ``path=None``.
    """
    if kind == "official":
        from .official import load_official_encoder

        kwargs.pop("allow_codec_mismatch", None)
        precision = kwargs.pop("precision", None)
        encoder = load_official_encoder(path, codec, **kwargs)
        if precision is not None:
            encoder.set_precision(precision)  # fp32 | bf16 | auto (heartcodec_lab.codec.precision)
        return encoder
    kwargs.pop("precision", None)  # the projection and minicodec encoders run float32 only
    if kind == "projection":
        from .projection import load_projection_encoder

        return load_projection_encoder(path, codec, **kwargs)
    if kind == "minicodec":
        from .minicodec import load_minicodec_encoder

        return load_minicodec_encoder(path, codec, **kwargs)
    raise ValueError(f"unknown encoder kind {kind!r}; expected one of {', '.join(ENCODER_KINDS)}")


__all__ = [
    "ENCODER_KINDS",
    "FEATURE_DIM",
    "NUM_QUANTIZERS",
    "TOKEN_RATE_HZ",
    "AudioEncoder",
    "EncodedAudio",
    "OfficialEncoder",
    "build_encoder",
    "load_official_encoder",
    "num_token_frames",
]
