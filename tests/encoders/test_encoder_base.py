"""The shared encoder machinery: frame-count rule, chunking, and the short-tail shortcut."""

from __future__ import annotations

import pytest
import torch

from heartcodec_lab.codec import RANDOM_CODEC, load_codec
from heartcodec_lab.encoders.base import AudioEncoder, num_token_frames
from heartcodec_lab.encoders.projection import ProjectionEncoder
from heartcodec_lab.encoders.projection.modules import build_projection


@pytest.mark.parametrize(
    "samples, rate, expected",
    [
        (714240, 24000, 372),
        (240000, 24000, 126),
        (960000, 24000, 501),
        (3840, 48000, 2),
        (3839, 48000, 1),
        (1428480 * 2, 48000, 744),
        (1428481, 48000, 373),
    ],
)
def test_frame_rule(samples, rate, expected):
    assert num_token_frames(samples, rate, frames_per_chunk=372, chunk_seconds=29.76) == expected


def test_frame_rule_rejects_empty():
    with pytest.raises(ValueError):
        num_token_frames(0, 48000, 372, 29.76)


class CountingEncoder(AudioEncoder):
    """Features = mean of each 80 ms block of the left channel, so chunking is exact by construction."""

    native_sample_rate = 1000
    chunk_samples = 400  # 0.4 s -> 5 frames of 80 samples
    frames_per_chunk = 5

    def __init__(self, codec, batch_chunks=1):
        super().__init__(codec.quantizer, batch_chunks)
        self.calls = []

    def encode_chunks(self, chunks):
        self.calls.append(tuple(chunks.shape))
        b = chunks.shape[0]
        blocks = chunks[:, 0].reshape(b, -1, 80).mean(-1, keepdim=True)
        return blocks.expand(b, blocks.shape[1], 512).contiguous()


@pytest.fixture(scope="module")
def codec():
    return load_codec(RANDOM_CODEC)


def test_chunking_batches_full_chunks_and_trims(codec):
    enc = CountingEncoder(codec, batch_chunks=2)
    audio = torch.arange(1000 * 13 // 10, dtype=torch.float32)[None] / 1000  # 1.3 s mono at 1 kHz
    out = enc.encode(audio, 1000)
    assert out.tokens.shape == (8, 17) and out.tokens.dtype == torch.int64  # int(1.3 * 12.5) + 1
    assert out.features.shape == (17, 512)
    assert enc.calls == [(2, 2, 400), (1, 2, 400), (1, 2, 400)]  # 3 full chunks in batches of 2, then the tail
    expected = audio[0, : 16 * 80].reshape(16, 80).mean(-1)
    assert torch.allclose(out.features[:16, 0], expected)
    assert out.features[16, 0] == pytest.approx(float(audio[0, 1280:1300].sum() / 80))


def test_projection_tail_shortcut_equals_full_chunk(codec):
    torch.manual_seed(1)
    proj = build_projection("conv1d", hidden_dim=32, num_layers=2, kernel_size=5)
    enc = ProjectionEncoder(codec, proj)
    audio = torch.randn(2, int(48000 * 1.7)) * 0.1
    native = enc.prepare(audio, 48000)
    frames = enc.num_frames(native.shape[-1], 48000)
    chunk = torch.nn.functional.pad(native, (0, enc.chunk_samples - native.shape[-1]))[None]
    full = enc.encode_chunks(chunk)[:, :frames]
    short = enc.encode_last_chunk(chunk, frames)
    assert torch.allclose(short, full, atol=1e-5)
    assert torch.equal(enc.encode(audio, 48000).tokens, enc.quantize(full)[0])
