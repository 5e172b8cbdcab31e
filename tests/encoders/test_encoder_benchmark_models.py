"""heartcodec_lab.encoders.benchmark_models: the full-size random-weight encoders the tokenizer benchmarks time."""

from __future__ import annotations

import pytest
import torch

from heartcodec_lab.codec import HeartCodecConfig
from heartcodec_lab.encoders.benchmark_models import encoding_codec, random_encoder


@pytest.fixture(scope="module")
def codec():
    return encoding_codec(width=8)


def test_encoding_codec_has_the_full_size_rvq_a_narrow_scalar_model_and_a_one_layer_estimator(codec):
    full = HeartCodecConfig()
    assert codec.config.init_channel == 8
    assert (codec.config.num_quantizers, codec.config.codebook_size) == (full.num_quantizers, full.codebook_size)
    assert (codec.config.num_layers, codec.config.num_layers_2) == (1, 1)
    params = list(codec.parameters())
    assert all(p.device.type == "cpu" and not p.requires_grad for p in params)
    assert all(torch.isfinite(p).all() for p in params)
    assert not codec.training


def test_encoding_codec_is_deterministic(codec):
    again = encoding_codec(width=8).state_dict()
    for key, value in codec.state_dict().items():
        assert torch.equal(value, again[key]), key


def test_projection_encoder_shares_the_codec_quantizer(codec):
    encoder = random_encoder("projection", codec)
    assert encoder.quantizer is codec.quantizer
    assert encoder.encoder_id == "projection-conv1d"
    assert not encoder.training


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda codec: random_encoder("minicodec", codec), "unknown encoder kind 'minicodec'"),
        (lambda codec: encoding_codec(width=0), "width"),
    ],
)
def test_bad_requests_are_refused_by_name(codec, call, message):
    with pytest.raises(ValueError, match=message):
        call(codec)
