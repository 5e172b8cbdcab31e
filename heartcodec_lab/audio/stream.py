"""Streaming a file into encoder chunks with bounded memory.

A file is read in blocks with soundfile, made stereo, resampled block by block and cut into the
encoder's ``chunk_samples`` chunks at its native rate. Nothing ever holds more than one block,
one chunk and a few seconds of resampling context, so a 30-minute file costs what a 1-minute one
does. The result equals ``encoder.prepare(whole_file)`` chunked the way
:meth:`AudioEncoder.encode` does it (to within float noise of the resampler's convolution).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from heartcodec_lab.audio.channels import to_stereo
from heartcodec_lab.audio.io import FFMPEG_EXTENSIONS, AudioError, check_container, load_audio
from heartcodec_lab.audio.rates import TOKEN_RATE_HZ
from heartcodec_lab.audio.resample import BlockResampler

TOKEN_FRAME_SECONDS = 1.0 / TOKEN_RATE_HZ  # 80 ms


@dataclass
class ChunkStream:
    """What :func:`stream_chunks` learned about a file once its last chunk was produced."""

    sample_rate: int = 0
    channels: int = 0
    num_samples: int = 0  # at the file's own rate
    native_samples: int = 0  # at the encoder's rate


def stream_chunks(
    path: str | Path,
    native_rate: int,
    chunk_samples: int,
    info: ChunkStream,
    block_seconds: float = 10.0,
) -> Iterator[torch.Tensor]:
    """Yield float32 stereo chunks ``[2, chunk_samples]`` at ``native_rate`` (last one zero-padded).

    Fills ``info`` as it goes; raises :class:`AudioError` (with a ``stage``) for unreadable,
    non-finite or too-short audio. Too-short and empty audio is detected before anything is yielded
    only when the header says so; callers must discard partial results when an error is raised.
    """
    path = Path(path)
    check_container(path)
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        blocks = _whole_file_blocks(path, info)
    else:
        blocks = _soundfile_blocks(path, info, block_seconds)
    resampler: BlockResampler | None = None
    chunker = _Chunker(chunk_samples)
    for block in blocks:
        if not torch.isfinite(block).all():
            bad = int((~torch.isfinite(block)).sum())
            at = info.num_samples + int((~torch.isfinite(block)).any(0).nonzero()[0])
            raise AudioError(
                path,
                f"contains non-finite samples (NaN/Inf), first at {at / info.sample_rate:.3f} s ({bad} in that block)",
                stage="check",
            )
        if resampler is None:
            resampler = BlockResampler(info.sample_rate, native_rate)
        info.num_samples += block.shape[-1]
        for chunk in chunker.add(resampler.push(to_stereo(block, source=str(path)))):
            info.native_samples += chunk_samples
            yield chunk
    if info.num_samples == 0 or resampler is None:
        raise AudioError(path, "contains no samples", stage="check")
    if info.num_samples < TOKEN_FRAME_SECONDS * info.sample_rate:
        raise AudioError(
            path,
            f"too short: {info.num_samples / info.sample_rate * 1000:.1f} ms is under one 80 ms token frame",
            stage="check",
        )
    for chunk in chunker.add(resampler.flush()):
        info.native_samples += chunk_samples
        yield chunk
    if chunker.length or info.native_samples == 0:
        info.native_samples += chunker.length
        yield chunker.padded_rest()


class _Chunker:
    """Collects resampled pieces ``[2, k]`` and hands out whole chunks ``[2, n]``; the rest waits for more."""

    def __init__(self, n: int):
        self.n, self.pending, self.length = n, [], 0

    def add(self, piece: torch.Tensor) -> Iterator[torch.Tensor]:
        if piece.numel():
            self.pending.append(piece)
            self.length += piece.shape[-1]
        while self.length >= self.n:
            joined = torch.cat(self.pending, dim=-1)
            self.pending, self.length = [joined[:, self.n :]], joined.shape[-1] - self.n
            yield joined[:, : self.n].contiguous()

    def padded_rest(self) -> torch.Tensor:
        """What is left, zero-padded to one chunk (a chunk of zeros when nothing is)."""
        rest = torch.cat(self.pending, dim=-1) if self.pending else torch.zeros(2, 0)
        return torch.nn.functional.pad(rest, (0, self.n - self.length))


def _soundfile_blocks(path: Path, info: ChunkStream, block_seconds: float) -> Iterator[torch.Tensor]:
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(path, f"not readable as audio ({_clean(err)})") from err
    with f:
        info.sample_rate, info.channels = int(f.samplerate), int(f.channels)
        if info.channels < 1:
            raise AudioError(path, "audio has no channels", stage="check")
        if f.frames == 0:
            raise AudioError(path, "contains no samples", stage="check")
        blocksize = max(1024, int(block_seconds * info.sample_rate))
        while True:
            try:
                data = f.read(blocksize, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                at = info.num_samples / info.sample_rate
                raise AudioError(
                    path, f"decoding failed after {at:.2f} s, file damaged or truncated ({_clean(err)})"
                ) from err
            if len(data) == 0:
                return
            yield torch.from_numpy(np.ascontiguousarray(data.T))


def _whole_file_blocks(path: Path, info: ChunkStream) -> Iterator[torch.Tensor]:
    # ffmpeg-only containers (m4a/aac): no streaming decoder here, so memory follows file length
    audio, sr = load_audio(path, channels="keep")
    info.sample_rate, info.channels = int(sr), int(audio.shape[0])
    yield audio


def _clean(err: Exception) -> str:
    return " ".join(str(err).split())
