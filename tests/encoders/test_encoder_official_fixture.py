"""The official vqv12 encoder against the reference outputs of the tiny fixture checkpoint, in the default suite.

One pass of the bulk tokenizer (streaming block resampler, two decoding-worker chunks per encoder
call, batched across files) over the three fixture recordings is the only expensive step (four
29.76 s chunks, about 30-60 s on one core). Forward hooks on the encoder record what it computed on
the way, so the same pass checks the four feature streams of recording 1, the query-encoder output of
every chunk and the tokens of every file. The cheap front ends (mel, 16 kHz resampler, Whisper
log-mel, 24 kHz resampling of recordings 2 and 3) are checked directly. Limits: the fixture README's
cross-CPU ones (see ``encoder_fixture.py``). ``test_encoder_official_parity.py`` (slow) repeats the
features and tokens through ``encode()``.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os

import numpy as np
import pytest
import torch
from encoder_fixture import (
    MEL_DB_SUM_TOL_PER_BAND,
    MEL_DB_TOL,
    RECORDINGS,
    VALUE_TOL,
    assert_close,
    assert_sum_close,
    assert_tokens_match,
    cached_checkpoint,
    check_resampled,
    check_streams,
    max_abs_diff,
    read_pcm16,
)
from safetensors.torch import load_file
from test_tokenize_support import job_config

from heartcodec_lab.encoders.official import load_official_encoder, load_residual_vq
from heartcodec_lab.tokenize.runner import run


@pytest.fixture(scope="module")
def tiny_dir(fixtures_dir):
    return fixtures_dir / "encoder-tiny"


@pytest.fixture(scope="module")
def expected(tiny_dir):
    return {name: load_file(str(tiny_dir / "expected" / f"{name}.safetensors")) for name in RECORDINGS}


@pytest.fixture(scope="module")
def encoder(tiny_dir):
    return load_official_encoder(
        cached_checkpoint(tiny_dir), quantizer=load_residual_vq(tiny_dir / "rvq"), batch_chunks=2
    )


@pytest.fixture(scope="module")
def bulk(tmp_path_factory, tiny_dir, encoder):
    """The three recordings through ``heartcodec-tokenize``'s job; what the encoder saw and wrote."""
    root = tmp_path_factory.mktemp("official-bulk")
    (root / "in").mkdir()
    for file, _ in RECORDINGS.values():
        os.symlink(tiny_dir / "inputs" / file, root / "in" / file)
    streams, queries = [], []
    hooks = [
        encoder.encoder.feature_extractors.register_forward_hook(
            lambda m, i, out: streams.append([s.clone() for s in out])
        ),
        encoder.encoder.register_forward_hook(lambda m, i, out: queries.append(out.clone())),
    ]
    try:
        # num_workers=1: decoding and resampling in a worker process, as in real runs; batch_chunks=2
        # puts chunks of different files into one encoder call (4 chunks -> 2 calls)
        code = run(job_config(root / "in", root / "out", num_workers=1, batch_chunks=2), encoder=encoder)
    finally:
        for hook in hooks:
            hook.remove()
    assert code == 0
    tokens = {name: np.load(root / "out" / "tokens" / f"{file}.npy") for name, (file, _) in RECORDINGS.items()}
    return {"tokens": tokens, "streams": streams, "queries": queries}


def expected_chunks(expected: dict) -> dict[str, torch.Tensor]:
    """Every chunk's expected query output ``[372, 512]``: chunk, tokenize_a, tokenize_b/0, tokenize_b/1."""
    out = {}
    for name, exp in expected.items():
        for k, q in enumerate(exp["query_output"]):
            out[name if exp["query_output"].shape[0] == 1 else f"{name}/{k}"] = q
    return out


def test_checkpoint_cache_is_reused_and_refuses_a_wrong_file(tmp_path, tiny_dir):
    fake = tmp_path / "fixture"
    (fake / "encoder").mkdir(parents=True)
    payload = b"not the encoder" * 1000
    with lzma.open(fake / "encoder" / "encoder.safetensors.xz", "wb") as f:
        f.write(payload)
    (fake / "encoder" / "encoder_config.json").write_text("{}")
    size = (fake / "encoder" / "encoder.safetensors.xz").stat().st_size
    manifest = {
        "files": {"encoder/encoder.safetensors.xz": {"bytes": size}},
        "encoder": {"safetensors_sha256": "0" * 64, "safetensors_bytes": len(payload)},
    }
    (fake / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AssertionError, match="decompressed SHA-256"):
        cached_checkpoint(fake, tmp_path / "cache")
    assert list((tmp_path / "cache" / "fixtures").iterdir()) == []  # no partial copy left behind
    manifest["encoder"]["safetensors_sha256"] = hashlib.sha256(payload).hexdigest()
    (fake / "manifest.json").write_text(json.dumps(manifest))
    first = cached_checkpoint(fake, tmp_path / "cache")
    assert (first / "encoder.safetensors").read_bytes() == payload and (first / "encoder_config.json").is_file()
    stamp = (first / "encoder.safetensors").stat().st_mtime_ns
    assert cached_checkpoint(fake, tmp_path / "cache") == first  # reused, not rewritten
    assert (first / "encoder.safetensors").stat().st_mtime_ns == stamp
    # the real fixture decompresses to the released file name and size
    real = cached_checkpoint(tiny_dir)
    assert (real / "encoder.safetensors").stat().st_size == 544_463_160


def test_front_ends_match_reference(tiny_dir, encoder, expected):
    audio, rate = read_pcm16(tiny_dir / "inputs" / RECORDINGS["chunk"][0])
    assert rate == 24000 and audio.shape == (2, 714240)
    exp = expected["chunk"]
    fx = encoder.encoder.feature_extractors
    with_tail = torch.nn.functional.pad(audio, (0, 240))
    with torch.inference_mode():
        mel = fx.muencoder.mel_db(with_tail)
        resampled = fx.resample_16k(with_tail)
        whisper_mel = fx.whisper_log_mel(resampled)
    assert mel.shape == (2, 128, 2976)
    assert_close(mel[:, :, exp["mu_mel_db.frame_index"]], exp["mu_mel_db.frames"], MEL_DB_TOL, "mu mel dB")
    assert_sum_close(mel.double().sum(1), exp["mu_mel_db.frame_sum"], 128, "mu mel frame sums", MEL_DB_SUM_TOL_PER_BAND)
    assert resampled.shape == (2, 476320)
    assert_close(resampled[:, :3200], exp["resampled_16k.head"], VALUE_TOL, "16 kHz head")
    assert_close(resampled[:, -3200:], exp["resampled_16k.tail"], VALUE_TOL, "16 kHz tail")
    r = resampled.double()
    for key, value in (("sum", r.sum(1)), ("abs_sum", r.abs().sum(1)), ("sq_sum", (r * r).sum(1))):
        assert_sum_close(value, exp[f"resampled_16k.{key}"], r.shape[1], f"16 kHz {key}")
    assert whisper_mel.shape == (2, 80, 3000)
    idx = exp["whisper_log_mel.frame_index"]
    assert_close(whisper_mel[:, :, idx], exp["whisper_log_mel.frames"], VALUE_TOL, "whisper log-mel")
    assert_sum_close(whisper_mel.double().sum(1), exp["whisper_log_mel.frame_sum"], 80, "whisper frame sums")


@pytest.mark.parametrize("name", ["tokenize_a", "tokenize_b"])
def test_resampling_to_24k_matches_reference(tiny_dir, encoder, expected, name):
    """Recording 2 (48 kHz stereo) and 3 (44.1 kHz mono, passed 1-D as the reference does)."""
    audio, rate = read_pcm16(tiny_dir / "inputs" / RECORDINGS[name][0])
    check_resampled(encoder.prepare(audio[0] if audio.shape[0] == 1 else audio, rate), expected[name], name)


def test_bulk_tokenizer_gives_the_reference_tokens(bulk, expected):
    for name, (file, frames) in RECORDINGS.items():
        tokens = torch.from_numpy(bulk["tokens"][name].astype(np.int64))
        assert tokens.shape == (8, frames), file
        assert_tokens_match(tokens, expected[name]["tokens"], expected[name]["margins"], file)


def test_query_output_of_every_chunk_matches_reference(bulk, expected):
    """Each expected chunk's 512-d features are among what the encoder computed (calls batch files in any order)."""
    computed = torch.cat(bulk["queries"])
    assert computed.shape == (4, 372, 512)
    for what, reference in expected_chunks(expected).items():
        errors = [max_abs_diff(row, reference, what) for row in computed]
        assert min(errors) <= VALUE_TOL, f"{what}: no computed chunk within {VALUE_TOL} (closest {min(errors):.3g})"


def test_feature_streams_of_recording_1_match_reference(bulk, expected):
    queries = torch.cat(bulk["queries"])
    streams = [torch.cat(s) for s in zip(*bulk["streams"])]
    reference = expected["chunk"]["query_output"][0]
    row = min(range(len(queries)), key=lambda r: max_abs_diff(queries[r], reference, "query"))
    check_streams([s[row] for s in streams], expected["chunk"])
