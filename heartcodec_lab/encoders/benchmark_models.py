"""Full-size encoders with random weights, for the encoder and tokenizer benchmarks (nothing downloaded).

* :func:`encoding_codec`: the released RVQ and ScalarModel (``init_channel = width``; 64 is full size) with
  key-seeded random weights (:func:`heartcodec_lab.codec.benchmark_models.randomize_`); the flow-matching
  estimator, which encoding never runs, is one layer deep.
* :func:`random_encoder`: the ``official`` vqv12 encoder at the released size (transformers' own init, seed 0)
  or an untrained ``projection`` over that codec, sharing its quantizer.

``benchmarks/bench_tokenize.py`` and ``benchmarks/tokenize_scale.py`` build their models here, so what they
time is what the library builds.
"""

from __future__ import annotations

import torch

from .base import AudioEncoder

RANDOM_ENCODER_KINDS = ("official", "projection")


def encoding_codec(width: int = 64, device: str | torch.device = "cpu"):
    """A frozen ``HeartCodec`` for encoding: full-size RVQ, ScalarModel of ``init_channel = width``, 1-layer estimator.

    Built on the meta device and filled by :func:`randomize_` (deterministic: the same ``width`` gives the same
    weights). ``[B, C, S]`` 48 kHz audio -> ScalarModel latents -> RVQ codes, as the released codec does.
    """
    from heartcodec_lab.codec import HeartCodec, HeartCodecConfig
    from heartcodec_lab.codec.benchmark_models import randomize_
    from heartcodec_lab.codec.weights import skip_weight_init

    if width < 1:
        raise ValueError(f"width (the ScalarModel's init_channel) must be >= 1, got {width}")
    cfg = HeartCodecConfig(
        init_channel=width, num_layers=1, num_layers_2=1, num_attention_heads=2, attention_head_dim=8
    )
    with skip_weight_init(), torch.device("meta"):
        codec = HeartCodec(cfg)
    codec = codec.to_empty(device=device)
    randomize_(codec)
    return codec.eval().requires_grad_(False)


def random_encoder(kind: str, codec, batch_chunks: int = 1, seed: int = 0) -> AudioEncoder:
    """An encoder of ``kind`` (``official`` | ``projection``) with random weights over ``codec``'s quantizer (eval)."""
    if kind == "official":
        from .official import OfficialEncoder, VQV12Encoder, released_config

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = VQV12Encoder(released_config())
        encoder = OfficialEncoder(model, codec.quantizer, batch_chunks=batch_chunks)
    elif kind == "projection":
        from .projection import ProjectionEncoder
        from .projection.export import default_projection

        encoder = ProjectionEncoder(codec, default_projection(codec, seed=seed), batch_chunks=batch_chunks)
    else:
        raise ValueError(
            f"unknown encoder kind {kind!r} for a random full-size encoder; choose from "
            f"{', '.join(RANDOM_ENCODER_KINDS)}"
        )
    return encoder.eval()
