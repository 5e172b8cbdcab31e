"""Parity of the official vqv12 encoder with the reference outputs of the tiny fixture checkpoint.

The checkpoint is 544 MB decompressed (one decompression per session) and each 29.76 s
chunk takes 10-30 s on 2 cores, so these tests are ``slow``. Tolerances are the ones the
fixture README suggests: 1e-4 absolute on values, 1e-5 x (number of summed values) on
sums, identical tokens except at near-ties (margin < 1e-3) and the later layers of that frame.
"""

from __future__ import annotations

import hashlib
import lzma
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from heartcodec_lab.encoders.official import load_official_encoder, load_residual_vq

pytestmark = pytest.mark.slow

TINY_SHA256 = "13e0d9d00dae490c31547f477e866c2634fde3c792fd5bdc79b05cb922b5ddfa"
VALUE_TOL = 1e-4
SUM_TOL_PER_VALUE = 1e-5
NEAR_TIE = 1e-3
STREAMS = ("acoustic", "semantic", "whisper", "wavlm")


@pytest.fixture(scope="session")
def tiny_dir(fixtures_dir):
    return fixtures_dir / "encoder-tiny"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_dir):
    """The decompressed tiny encoder folder (encoder.safetensors + encoder_config.json)."""
    folder = tmp_path_factory.mktemp("encoder-tiny")
    digest = hashlib.sha256()
    with lzma.open(tiny_dir / "encoder" / "encoder.safetensors.xz") as src, open(folder / "encoder.safetensors", "wb") as dst:
        while block := src.read(1 << 24):
            digest.update(block)
            dst.write(block)
    assert digest.hexdigest() == TINY_SHA256
    shutil.copy(tiny_dir / "encoder" / "encoder_config.json", folder / "encoder_config.json")
    return folder


@pytest.fixture(scope="session")
def encoder(tiny_checkpoint, tiny_dir):
    rvq = load_residual_vq(tiny_dir / "rvq")
    return load_official_encoder(tiny_checkpoint, quantizer=rvq)


def read_pcm16(path) -> tuple[torch.Tensor, int]:
    """The fixture's decoding rule: int16 samples / 32768, channels first."""
    pcm, rate = sf.read(str(path), dtype="int16", always_2d=True)
    return torch.from_numpy(pcm.T.astype(np.float32) / 32768.0), rate


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    err = (actual.double() - expected.double()).abs().max().item()
    assert err <= tol, f"{what}: max abs difference {err:.3g} > {tol:.3g}"


def assert_sum_close(actual: torch.Tensor, expected: torch.Tensor, summed: int, what: str) -> None:
    assert_close(actual, expected, SUM_TOL_PER_VALUE * summed, what)


def assert_tokens_match(tokens: torch.Tensor, expected: torch.Tensor, margins: torch.Tensor) -> None:
    """Equal, except where the first differing layer of a frame was a near-tie."""
    assert tokens.dtype == torch.int64 and tokens.shape == expected.shape
    differs = tokens != expected
    for frame in differs.any(0).nonzero().flatten().tolist():
        layer = int(differs[:, frame].nonzero()[0])
        assert margins[layer, frame] < NEAR_TIE, (
            f"frame {frame} layer {layer}: token {int(tokens[layer, frame])} != {int(expected[layer, frame])} "
            f"with margin {float(margins[layer, frame]):.3g}"
        )
    assert differs.any(0).float().mean() < 0.05, "too many frames differ"


@pytest.fixture(scope="session")
def chunk_case(tiny_dir, encoder):
    """Recording 1 with its tail, its expected outputs and our four streams."""
    audio, rate = read_pcm16(tiny_dir / "inputs" / "chunk_24k_stereo.flac")
    assert rate == 24000 and audio.shape == (2, 714240)
    expected = load_file(str(tiny_dir / "expected" / "chunk.safetensors"))
    with torch.inference_mode():
        streams = encoder.encoder.feature_extractors(torch.nn.functional.pad(audio, (0, 240))[None])
    return audio, expected, streams


def test_front_ends_match_reference(chunk_case, encoder):
    audio, expected, _ = chunk_case
    fx = encoder.encoder.feature_extractors
    with_tail = torch.nn.functional.pad(audio, (0, 240))
    with torch.inference_mode():
        mel = fx.muencoder.mel_db(with_tail)
        resampled = fx.resample_16k(with_tail)
        whisper_mel = fx.whisper_log_mel(resampled)
    assert mel.shape == (2, 128, 2976)
    assert_close(mel[:, :, expected["mu_mel_db.frame_index"]], expected["mu_mel_db.frames"], VALUE_TOL, "mu mel dB")
    assert_sum_close(mel.double().sum(1), expected["mu_mel_db.frame_sum"], 128, "mu mel frame sums")
    assert resampled.shape == (2, 476320)
    assert_close(resampled[:, :3200], expected["resampled_16k.head"], VALUE_TOL, "16 kHz head")
    assert_close(resampled[:, -3200:], expected["resampled_16k.tail"], VALUE_TOL, "16 kHz tail")
    r = resampled.double()
    for key, value in (("sum", r.sum(1)), ("abs_sum", r.abs().sum(1)), ("sq_sum", (r * r).sum(1))):
        assert_sum_close(value, expected[f"resampled_16k.{key}"], r.shape[1], f"16 kHz {key}")
    assert whisper_mel.shape == (2, 80, 3000)
    idx = expected["whisper_log_mel.frame_index"]
    assert_close(whisper_mel[:, :, idx], expected["whisper_log_mel.frames"], VALUE_TOL, "whisper log-mel")
    assert_sum_close(whisper_mel.double().sum(1), expected["whisper_log_mel.frame_sum"], 80, "whisper frame sums")


def test_feature_streams_match_reference(chunk_case):
    _, expected, streams = chunk_case
    index = expected["frame_index"]
    for name, stream in zip(STREAMS, streams):
        width = expected[f"{name}.frames"].shape[1]
        assert stream.shape == (1, 744, width), name
        s = stream[0].double()
        assert_close(s[index], expected[f"{name}.frames"], VALUE_TOL, f"{name} frames")
        assert_sum_close(s.sum(1), expected[f"{name}.frame_sum"], width, f"{name} frame sums")
        assert_sum_close(s.abs().sum(1), expected[f"{name}.frame_abs_sum"], width, f"{name} frame abs sums")
        assert_sum_close(s.sum(0), expected[f"{name}.channel_sum"], 744, f"{name} channel sums")
        assert_sum_close(s.abs().sum(0), expected[f"{name}.channel_abs_sum"], 744, f"{name} channel abs sums")


def test_query_output_matches_reference(chunk_case, encoder):
    _, expected, streams = chunk_case
    with torch.inference_mode():
        query = encoder.encoder.query(*streams)
    assert_close(query, expected["query_output"], VALUE_TOL, "query output")


def test_one_chunk_tokens_match_reference(chunk_case, encoder):
    """Recording 1: one full chunk gives 372 frames (not the rule's 373)."""
    audio, expected, _ = chunk_case
    out = encoder.encode(audio, 24000)
    assert out.tokens.shape == (8, 372) and out.features.shape == (372, 512)
    assert_close(out.features, expected["query_output"][0], VALUE_TOL, "features")
    assert_tokens_match(out.tokens, expected["tokens"], expected["margins"])


@pytest.mark.parametrize(
    ("name", "file", "frames"),
    [("tokenize_a", "tok_a_48k_stereo_10s.flac", 126), ("tokenize_b", "tok_b_44k1_mono_40s.flac", 501)],
)
def test_tokenize_matches_reference(tiny_dir, encoder, name, file, frames):
    """Recording 2 (10 s, 48 kHz stereo) and 3 (40 s, 44.1 kHz mono, passed as 1-D, two chunks)."""
    audio, rate = read_pcm16(tiny_dir / "inputs" / file)
    expected = load_file(str(tiny_dir / "expected" / f"{name}.safetensors"))
    if audio.shape[0] == 1:
        audio = audio[0]
    native = encoder.prepare(audio, rate)
    assert_close(native[:, :4800], expected["resampled_head"], VALUE_TOL, "resampled head")
    assert_close(native[:, -4800:], expected["resampled_tail"], VALUE_TOL, "resampled tail")
    n = native.double()
    for key, value in (("sum", n.sum(1)), ("abs_sum", n.abs().sum(1)), ("sq_sum", (n * n).sum(1))):
        assert_sum_close(value, expected[f"resampled_{key}"], n.shape[1], f"resampled {key}")
    out = encoder.encode(audio, rate)
    assert out.tokens.shape == (8, frames)
    assert_close(out.features, expected["query_output"].reshape(-1, 512)[:frames], VALUE_TOL, "features")
    assert_tokens_match(out.tokens, expected["tokens"], expected["margins"])
