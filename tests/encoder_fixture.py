"""The official-encoder fixture (``fixtures/encoder-tiny``): cached decompression, readers, tolerances.

The tiny encoder checkpoint ships xz-compressed (12 MB -> 544 MB). It is decompressed once per
machine into ``$HEARTCODEC_CACHE`` (default ``~/.cache/heartcodec_lab``)
``/fixtures/<sha256 of the .xz, 16 hex>/``: written to a temporary folder beside it, checked against
the SHA-256 in the fixture manifest, then renamed into place. A rename is atomic, so two pytest-xdist
workers (or two CI runs) racing each other both end up with one complete copy, and a reader never
sees a half-written file. A fresh clone on the same machine reuses the cache.

Tolerances are the fixture README's cross-CPU acceptance limits: the reference values carry the
generating machine's FFT/GEMM rounding (an AVX2-only CPU differs by 3.8e-3 dB on the mel, 4e-4 on
fused features and up to 0.021 on 744-frame channel sums), so limits measured on one machine are
too tight elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

MEL_DB_TOL = 1e-2  # mu mel dB values
MEL_DB_SUM_TOL_PER_BAND = 5e-4  # its frame sums over 128 bands
VALUE_TOL = 1e-3  # feature streams, fused features, query output, Whisper log-mel, resampled samples
SUM_TOL_PER_VALUE = 5e-5  # other sums: x the number of summed values
NEAR_TIE = 1e-3  # a differing token is excused only where the stored margin is below this
MAX_DIFFERING_FRAMES = 0.05
STREAMS = ("acoustic", "semantic", "whisper", "wavlm")
RECORDINGS = {  # expected file -> (input file, token frames)
    "chunk": ("chunk_24k_stereo.flac", 372),
    "tokenize_a": ("tok_a_48k_stereo_10s.flac", 126),
    "tokenize_b": ("tok_b_44k1_mono_40s.flac", 501),
}


def cache_root() -> Path:
    return Path(os.environ.get("HEARTCODEC_CACHE") or Path.home() / ".cache" / "heartcodec_lab")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def cached_checkpoint(fixture: Path, cache: Path | None = None) -> Path:
    """``fixture`` (the encoder-tiny folder) -> a folder with ``encoder.safetensors`` + ``encoder_config.json``."""
    manifest = json.loads((fixture / "manifest.json").read_text())
    xz = fixture / "encoder" / "encoder.safetensors.xz"
    if manifest["files"]["encoder/encoder.safetensors.xz"]["bytes"] != xz.stat().st_size:
        raise AssertionError(f"{xz}: size differs from manifest.json")
    expected_sha = manifest["encoder"]["safetensors_sha256"]
    expected_bytes = manifest["encoder"]["safetensors_bytes"]
    parent = (cache or cache_root()) / "fixtures"
    final = parent / sha256_file(xz)[:16]
    if (final / "encoder.safetensors").is_file() and (final / "encoder.safetensors").stat().st_size == expected_bytes:
        return final
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=parent))
    try:
        digest = hashlib.sha256()
        with lzma.open(xz) as src, open(tmp / "encoder.safetensors", "wb") as dst:
            while block := src.read(1 << 24):
                digest.update(block)
                dst.write(block)
        if digest.hexdigest() != expected_sha:
            raise AssertionError(f"{xz}: decompressed SHA-256 {digest.hexdigest()} != {expected_sha} (manifest.json)")
        shutil.copy(fixture / "encoder" / "encoder_config.json", tmp / "encoder_config.json")
        if final.exists():  # a stale or broken copy (the size check above failed): replace it
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another worker renamed its copy first: use that one
            if not (final / "encoder.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_pcm16(path: Path) -> tuple[torch.Tensor, int]:
    """The fixture's decoding rule: int16 samples / 32768, channels first."""
    pcm, rate = sf.read(str(path), dtype="int16", always_2d=True)
    return torch.from_numpy(pcm.T.astype(np.float32) / 32768.0), rate


def max_abs_diff(actual: torch.Tensor, expected: torch.Tensor, what: str) -> float:
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    )
    return (actual.double() - expected.double()).abs().max().item()


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float, what: str) -> None:
    err = max_abs_diff(actual, expected, what)
    assert err <= tol, f"{what}: max abs difference {err:.3g} > {tol:.3g}"


def assert_sum_close(
    actual: torch.Tensor, expected: torch.Tensor, summed: int, what: str, per_value: float = SUM_TOL_PER_VALUE
) -> None:
    assert_close(actual, expected, per_value * summed, what)


def assert_tokens_match(
    tokens: torch.Tensor, expected: torch.Tensor, margins: torch.Tensor, what: str = "tokens"
) -> None:
    """Equal, except frames whose first differing layer was a near-tie (the later layers may then differ)."""
    assert tokens.dtype == torch.int64 and tokens.shape == expected.shape, (
        f"{what}: {tokens.dtype} {tuple(tokens.shape)}"
    )
    differs = tokens != expected
    frames = differs.any(0).nonzero().flatten().tolist()
    for frame in frames:
        layer = int(differs[:, frame].nonzero()[0])
        assert margins[layer, frame] < NEAR_TIE, (
            f"{what}: frame {frame} layer {layer}: token {int(tokens[layer, frame])} != "
            f"{int(expected[layer, frame])} with margin {float(margins[layer, frame]):.3g}"
        )
    assert len(frames) <= MAX_DIFFERING_FRAMES * tokens.shape[1], f"{what}: {len(frames)} frames differ"


def check_resampled(native: torch.Tensor, expected: dict, what: str) -> None:
    """The 24 kHz stereo waveform of recordings 2 / 3 against ``resampled_*`` of their expected file."""
    assert_close(native[:, :4800], expected["resampled_head"], VALUE_TOL, f"{what} resampled head")
    assert_close(native[:, -4800:], expected["resampled_tail"], VALUE_TOL, f"{what} resampled tail")
    n = native.double()
    for key, value in (("sum", n.sum(1)), ("abs_sum", n.abs().sum(1)), ("sq_sum", (n * n).sum(1))):
        assert_sum_close(value, expected[f"resampled_{key}"], n.shape[1], f"{what} resampled {key}")


def check_streams(streams: list[torch.Tensor], expected: dict) -> None:
    """Recording 1's four feature streams ``[744, W]`` against ``chunk.safetensors``."""
    index = expected["frame_index"]
    for name, stream in zip(STREAMS, streams):
        width = expected[f"{name}.frames"].shape[1]
        assert stream.shape == (744, width), f"{name}: {tuple(stream.shape)}"
        s = stream.double()
        assert_close(s[index], expected[f"{name}.frames"], VALUE_TOL, f"{name} frames")
        assert_sum_close(s.sum(1), expected[f"{name}.frame_sum"], width, f"{name} frame sums")
        assert_sum_close(s.abs().sum(1), expected[f"{name}.frame_abs_sum"], width, f"{name} frame abs sums")
        assert_sum_close(s.sum(0), expected[f"{name}.channel_sum"], 744, f"{name} channel sums")
        assert_sum_close(s.abs().sum(0), expected[f"{name}.channel_abs_sum"], 744, f"{name} channel abs sums")
