"""Streaming a file into encoder chunks with bounded memory.

A file is read in blocks with soundfile, made stereo, resampled block by block and cut into the
encoder's ``chunk_samples`` chunks at its native rate. Nothing ever holds more than one block,
one chunk and a few seconds of resampling context, so a 30-minute file costs what a 1-minute one
does. The result equals ``encoder.prepare(whole_file)`` chunked the way
:meth:`AudioEncoder.encode` does it (to within float noise of the resampler's convolution).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from heartcodec_lab.audio import AudioError, load_audio, resample, to_stereo

# Containers libsndfile cannot open go through load_audio (ffmpeg) as a whole file.
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".w64", ".rf64")
TOKEN_FRAME_SECONDS = 0.08  # one 12.5 Hz token frame


class BlockResampler:
    """Resample a stream of ``[C, n]`` blocks exactly like one ``resample`` call on their concatenation.

    The windowed-sinc resampler is a polyphase FIR filter: with ``L/M`` the reduced rate ratio,
    output sample ``k`` depends only on input samples near ``(k // M) * L``. Keeping the buffer
    start on a multiple of ``L`` aligns the buffer's outputs with the whole-file outputs, and a
    context of several filter widths on each side keeps the zero padding at the buffer edges away
    from every sample that is emitted.
    """

    def __init__(self, sr_in: int, sr_out: int, resample_fn: Callable = resample, max_filter_width: int = 64):
        self.sr_in, self.sr_out, self.resample_fn = int(sr_in), int(sr_out), resample_fn
        g = math.gcd(self.sr_in, self.sr_out)
        self.L, self.M = self.sr_in // g, self.sr_out // g
        # filter half-width in input samples is about width * L / min(L, M); keep ample margin
        half_width = math.ceil((max_filter_width + 1) * self.L / min(self.L, self.M))
        self.context = self.L * math.ceil((half_width + 2 * self.L) / self.L)
        self.buffer: torch.Tensor | None = None
        self.buffer_start = 0  # input index of buffer[:, 0], always a multiple of L
        self.total_in = 0
        self.emitted = 0  # output samples already returned

    @property
    def passthrough(self) -> bool:
        return self.sr_in == self.sr_out

    def push(self, block: torch.Tensor) -> torch.Tensor:
        """Add input ``[C, n]``; return the output samples that are now final ``[C, k]``."""
        self.total_in += block.shape[-1]
        if self.passthrough:
            self.emitted += block.shape[-1]
            return block
        self.buffer = block if self.buffer is None else torch.cat([self.buffer, block], dim=-1)
        safe_blocks = (self.total_in - self.context) // self.L
        if safe_blocks * self.M <= self.emitted:
            return block.new_zeros(block.shape[0], 0)
        out = self._take(safe_blocks * self.M)
        keep_from = max(self.buffer_start, safe_blocks * self.L - self.context)
        self.buffer = self.buffer[:, keep_from - self.buffer_start :]
        self.buffer_start = keep_from
        return out

    def flush(self) -> torch.Tensor:
        """The remaining output at end of stream (total length ``ceil(total_in * M / L)``)."""
        if self.passthrough or self.buffer is None:
            return torch.zeros(0, 0) if self.buffer is None else self.buffer.new_zeros(self.buffer.shape[0], 0)
        return self._take(-(-self.total_in * self.M // self.L))

    def _take(self, until: int) -> torch.Tensor:
        out = self.resample_fn(self.buffer, self.sr_in, self.sr_out)
        offset = self.buffer_start // self.L * self.M
        piece = out[:, self.emitted - offset : until - offset]
        self.emitted = until
        return piece


@dataclass
class ChunkStream:
    """What :func:`stream_chunks` learned about a file once its last chunk was produced."""

    sample_rate: int = 0
    channels: int = 0
    num_samples: int = 0  # at the file's own rate
    native_samples: int = 0  # at the encoder's rate


def check_container(path: Path) -> None:
    """Raise :class:`AudioError` for files that are missing, empty, or WAVs cut short of their header's size."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    if path.suffix.lower() == ".wav":
        declared = _wav_data_end(path)
        if declared is not None and declared > size:
            raise AudioError(path, f"truncated WAV: header declares {declared} bytes, file has {size}")


def _wav_data_end(path: Path) -> int | None:
    """Byte offset where the WAV 'data' chunk should end, or None if not a plain RIFF/WAVE."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                return None
            cid, csize = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"data":
                # 0xFFFFFFFF / 0 mark streamed WAVs of unknown length: nothing to check
                return None if csize in (0, 0xFFFFFFFF) else pos + 8 + csize
            pos += 8 + csize + (csize & 1)
            f.seek(pos)


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
    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        blocks = _soundfile_blocks(path, info, block_seconds)
    else:
        blocks = _whole_file_blocks(path, info)
    resampler: BlockResampler | None = None
    pending: list[torch.Tensor] = []
    pending_len = 0
    for block in blocks:
        if not torch.isfinite(block).all():
            bad = int((~torch.isfinite(block)).sum())
            at = info.num_samples + int((~torch.isfinite(block)).any(0).nonzero()[0])
            raise AudioError(path, f"contains non-finite samples (NaN/Inf), first at {at / info.sample_rate:.3f} s "
                             f"({bad} in that block)", stage="check")
        if resampler is None:
            resampler = BlockResampler(info.sample_rate, native_rate)
        info.num_samples += block.shape[-1]
        out = resampler.push(to_stereo(block, source=str(path)))
        pending.append(out)
        pending_len += out.shape[-1]
        while pending_len >= chunk_samples:
            chunk, pending, pending_len = _cut(pending, chunk_samples)
            info.native_samples += chunk_samples
            yield chunk
    if info.num_samples == 0 or resampler is None:
        raise AudioError(path, "contains no samples", stage="check")
    if info.num_samples < TOKEN_FRAME_SECONDS * info.sample_rate:
        raise AudioError(path, f"too short: {info.num_samples / info.sample_rate * 1000:.1f} ms is under one "
                         f"80 ms token frame", stage="check")
    tail = resampler.flush()
    if tail.numel():
        pending.append(tail)
        pending_len += tail.shape[-1]
    while pending_len >= chunk_samples:
        chunk, pending, pending_len = _cut(pending, chunk_samples)
        info.native_samples += chunk_samples
        yield chunk
    if pending_len or info.native_samples == 0:
        rest = torch.cat(pending, dim=-1) if pending else torch.zeros(2, 0)
        info.native_samples += pending_len
        yield torch.nn.functional.pad(rest, (0, chunk_samples - pending_len))


def _cut(pending: list[torch.Tensor], n: int) -> tuple[torch.Tensor, list[torch.Tensor], int]:
    joined = torch.cat(pending, dim=-1)
    rest = joined[:, n:]
    return joined[:, :n].contiguous(), [rest], rest.shape[-1]


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
                raise AudioError(path, f"decoding failed after {at:.2f} s, file damaged or truncated "
                                 f"({_clean(err)})") from err
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
