"""Parity of ``OfficialEncoder.encode()`` (whole file in memory, no bulk job) with the tiny fixture's reference.

``test_encoder_official_fixture.py`` checks the same recordings in the default suite through the bulk
tokenizer; this slow file repeats features and tokens through the library call a notebook uses
(another four chunks, about a minute on one core). Limits: the fixture README's cross-CPU ones
(``encoder_fixture.py``); the checkpoint comes from the shared decompression cache.
"""

from __future__ import annotations

import pytest
from encoder_fixture import RECORDINGS, VALUE_TOL, assert_close, assert_tokens_match, cached_checkpoint, read_pcm16
from safetensors.torch import load_file

from heartcodec_lab.encoders.official import load_official_encoder, load_residual_vq

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoder(fixtures_dir):
    tiny = fixtures_dir / "encoder-tiny"
    return load_official_encoder(cached_checkpoint(tiny), quantizer=load_residual_vq(tiny / "rvq"))


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_encode_matches_reference(fixtures_dir, encoder, name):
    """Recording 1 (one full chunk: 372 frames, not the rule's 373), 2 (10 s, 48 kHz stereo) and 3
    (40 s, 44.1 kHz mono passed as 1-D, two chunks)."""
    file, frames = RECORDINGS[name]
    audio, rate = read_pcm16(fixtures_dir / "encoder-tiny" / "inputs" / file)
    expected = load_file(str(fixtures_dir / "encoder-tiny" / "expected" / f"{name}.safetensors"))
    out = encoder.encode(audio[0] if audio.shape[0] == 1 else audio, rate)
    assert out.tokens.shape == (8, frames) and out.features.shape == (frames, 512)
    assert_close(out.features, expected["query_output"].reshape(-1, 512)[:frames], VALUE_TOL, f"{name} features")
    assert_tokens_match(out.tokens, expected["tokens"], expected["margins"], name)
