"""The miniature HeartCodec shipped in the package: strict loading, interface sizes, a known answer.

The known answer: on a held-out clip (unseen seed and instrument programs) the shipped codec's
reconstructions are closer to the original (log-mel L1) than the random-weight embedded codec's,
and its true-encoder tokens decode to the right rhythm.
"""

from __future__ import annotations

import pytest
import torch

from heartcodec_lab.codec.miniature import load_minicodec, shipped_codec_dir, shipped_encoder_dir
from heartcodec_lab.codec.random_codec import build_random_codec
from heartcodec_lab.encoders import build_encoder
from heartcodec_lab.evaluate.metrics.audio import log_mel_l1
from heartcodec_lab.evaluate.metrics.music import onset_corr
from heartcodec_lab.minicodec.data import held_out_pieces
from heartcodec_lab.minicodec.quality import scalar_roundtrip

SR = 48000


@pytest.fixture(scope="module")
def mini():
    return load_minicodec()


@pytest.fixture(scope="module")
def clip():
    return held_out_pieces(1, 2.0)[0]


def test_shipped_files_are_small_and_in_the_released_layout():
    files = sorted(p.name for p in shipped_codec_dir().iterdir()) + sorted(
        p.name for p in shipped_encoder_dir().iterdir()
    )
    assert files == ["config.json", "model.safetensors", "projection.safetensors", "projection_config.json"]
    total = sum(p.stat().st_size for d in (shipped_codec_dir(), shipped_encoder_dir()) for p in d.iterdir())
    assert total < 20 * 2**20


def test_shipped_codec_has_the_released_interface(mini):
    c = mini.config
    assert (c.sample_rate, c.hop_length, c.latent_hidden_dim, c.out_channels) == (48000, 1920, 128, 256)
    assert (c.dim, c.codebook_size, c.num_quantizers, c.in_channels) == (512, 8192, 8, 1024)
    assert not mini.training and not any(p.requires_grad for p in mini.parameters())
    assert mini.describe()["kind"] == "embedded-minicodec"


def test_true_encoder_loads_through_build_encoder(mini, clip):
    enc = build_encoder("minicodec", None, mini)
    tokens = enc.tokenize(clip, SR)
    assert tokens.shape == (8, 26) and tokens.dtype == torch.int64
    assert enc.describe()["encoder"] == "minicodec-true"


def test_stage1_reconstruction_beats_the_random_codec(mini, clip):
    random_codec = build_random_codec()
    ours = log_mel_l1(clip, scalar_roundtrip(mini.scalar_model, clip), SR)
    theirs = log_mel_l1(clip, scalar_roundtrip(random_codec.scalar_model, clip), SR)
    assert ours < 0.85 * theirs, (ours, theirs)


@pytest.mark.timeout(120)
def test_token_round_trip_keeps_the_rhythm(mini, clip):
    tokens = build_encoder("minicodec", None, mini).tokenize(clip, SR)
    torch.manual_seed(0)
    audio = mini.detokenize(tokens, num_steps=4)
    assert audio.shape == (2, 26 * 3840)
    other = held_out_pieces(2, 2.0)[1]
    assert onset_corr(clip, audio, SR) > onset_corr(clip, other, SR) + 0.2
    assert log_mel_l1(clip, audio, SR) < log_mel_l1(clip, other, SR)
