"""Decode in worker processes, batch chunks from several files through the encoder, reassemble per file.

Workers (a torch ``DataLoader`` over an ``IterableDataset``) each take every ``num_workers``-th file,
hash it, stream it into native-rate chunks (:mod:`.stream`) and send ``("chunk", ...)`` items followed by
one ``("last", ...)`` item (the final chunk, with what was learned reading the file) or a ``("fail", ...)``
item. The main process fills batches of ``batch_chunks`` chunks regardless of which file they come
from, encodes and quantizes them, and hands a file's tokens ``[8, T]`` on as soon as all of its chunks
are through. A final chunk goes through the encoder's ``encode_last_chunk`` on its own when the
encoder has a shortcut for it (a 5 s file then costs 5 s of encoding, not 29.76 s). Only chunks in
flight are held in memory.
"""

from __future__ import annotations

import ctypes
import functools
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from heartcodec_lab.audio import AudioError
from heartcodec_lab.audio.stream import ChunkStream, stream_chunks
from heartcodec_lab.codec.weights import file_sha256
from heartcodec_lab.encoders.base import AudioEncoder
from heartcodec_lab.tokenize.inputs import InputFile
from heartcodec_lab.tokenize.sources import local_audio


@dataclass
class FileResult:
    """A finished file: tokens int64 ``[8, T]`` and what was learned reading it, or a failure."""

    index: int
    item: InputFile
    tokens: torch.Tensor | None = None
    info: ChunkStream | None = None
    sha256: str | None = None
    stage: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ChunkSource(IterableDataset):
    """Yields ``("chunk", i, k, [2, chunk_samples])`` for each chunk but the final one, then
    ``("last", i, k, chunk, ChunkStream, sha256)`` or ``("fail", i, stage, error)`` for each file
    ``i`` this worker owns."""

    def __init__(self, items: list[InputFile], native_rate: int, chunk_samples: int, block_seconds: float = 10.0):
        self.items, self.native_rate, self.chunk_samples = items, native_rate, chunk_samples
        self.block_seconds = block_seconds

    def __iter__(self) -> Iterator[tuple]:
        worker = get_worker_info()
        wid, nw = (worker.id, worker.num_workers) if worker else (0, 1)
        for i in range(wid, len(self.items), nw):
            yield from self._one(i)

    def _one(self, i: int) -> Iterator[tuple]:
        item = self.items[i]
        info = ChunkStream()
        try:
            with local_audio(item) as path:  # remote audio (URL, dataset row): a temporary local copy
                # hash first: a file that is unreadable fails here with a clear OSError
                sha = file_sha256(path) if path.is_file() else None
                held = None  # one chunk of lookahead: the final one is only known once the stream ends
                for k, chunk in enumerate(
                    stream_chunks(path, self.native_rate, self.chunk_samples, info, self.block_seconds)
                ):
                    if held is not None:
                        yield ("chunk", i, k - 1, held)
                    held = chunk
            yield ("last", i, k, held, info, sha)
        except AudioError as err:
            yield ("fail", i, err.stage, err.problem)
        except OSError as err:
            yield ("fail", i, "read", f"cannot read file ({err.strerror or err})")
        except Exception as err:  # a decoder bug must not stop the job either
            last = traceback.format_exception_only(type(err), err)[-1].strip()
            yield ("fail", i, "read", f"unexpected error while decoding: {last}")


def _one_thread(_: int) -> None:
    # several decoding workers each using every core for resampling would only fight over them
    torch.set_num_threads(1)


@dataclass
class _Pending:
    chunks: dict[int, torch.Tensor] = field(default_factory=dict)  # chunk index -> codes [8, F]
    end: tuple | None = None  # (ChunkStream, sha256) once the worker is done with the file
    n_chunks: int | None = None


class _Assembler:
    """The main-process side: batch chunks across files, encode them, put each file's tokens back together.

    Steps: :meth:`receive` one worker message -> :meth:`add_chunk` / :meth:`add_last` / :meth:`fail`;
    full batches go through :meth:`encode`; :meth:`finished` yields every file whose chunks are all in.
    """

    def __init__(
        self,
        encoder: AudioEncoder,
        items: list[InputFile],
        batch_chunks: int,
        device,
        on_chunk: Callable[[float], None] | None,
    ):
        self.encoder, self.items, self.batch_chunks, self.device, self.on_chunk = (
            encoder,
            items,
            batch_chunks,
            device,
            on_chunk,
        )
        self.pending: dict[int, _Pending] = {}
        self.batch: list[tuple[int, int, torch.Tensor]] = []
        self.dead: set[int] = set()  # files already reported as failed; later messages about them are ignored
        self.shortcut = type(encoder).encode_last_chunk is not AudioEncoder.encode_last_chunk

    def receive(self, msg: tuple) -> Iterator[FileResult]:
        kind, i = msg[0], msg[1]
        if i in self.dead:
            return
        if kind == "chunk":
            yield from self.add_chunk(i, msg[2], msg[3])
        elif kind == "last":
            yield from self.add_last(*msg[1:])
        else:
            yield from self.fail(i, stage=msg[2], error=msg[3])

    def add_chunk(self, i: int, k: int, chunk: torch.Tensor) -> Iterator[FileResult]:
        self.pending.setdefault(i, _Pending())
        self.batch.append((i, k, chunk))
        if len(self.batch) >= self.batch_chunks:
            yield from self.flush()

    def add_last(self, i: int, k: int, chunk: torch.Tensor, info: ChunkStream, sha: str | None) -> Iterator[FileResult]:
        """The file's final chunk: on its own through ``encode_last_chunk`` when shorter and the encoder has a shortcut."""
        p = self.pending.setdefault(i, _Pending())
        p.end, p.n_chunks = (info, sha), k + 1
        enc = self.encoder
        frames = enc.num_frames(info.native_samples, enc.native_sample_rate) - k * enc.frames_per_chunk
        if self.shortcut and 0 < frames < enc.frames_per_chunk:
            yield from self.encode([(i, k, chunk)], lambda: enc.encode_last_chunk(chunk[None].to(self.device), frames))
        else:
            yield from self.add_chunk(i, k, chunk)
        yield from self.finished()

    def fail(self, i: int, stage: str, error: str) -> Iterator[FileResult]:
        self.pending.pop(i, None)
        self.dead.add(i)
        yield FileResult(i, self.items[i], stage=stage, error=error)

    def flush(self) -> Iterator[FileResult]:
        """Encode the batch gathered so far."""
        if not self.batch:
            return
        entries, self.batch = self.batch, []
        stacked = lambda: to_device(torch.stack([c for _, _, c in entries]), self.device)  # noqa: E731
        yield from self.encode(entries, lambda: self.encoder.encode_chunks(stacked()))

    def encode(
        self, entries: list[tuple[int, int, torch.Tensor]], features: Callable[[], torch.Tensor]
    ) -> Iterator[FileResult]:
        """Quantize ``features()`` of ``entries`` (file, chunk index, chunk) and store their codes."""
        try:
            with torch.no_grad():
                codes = self.encoder.quantize(features()).cpu()  # [B, 8, F]
            trim_heap()
        except Exception as err:  # e.g. out of memory: fail these files, keep going
            last = traceback.format_exception_only(type(err), err)[-1].strip()
            for i in dict.fromkeys(i for i, _, _ in entries):
                self.dead.add(i)
                if self.pending.pop(i, None) is not None:
                    yield FileResult(i, self.items[i], stage="encode", error=f"encoder failed: {last}")
            return
        for (i, k, _), c in zip(entries, codes):
            if i in self.pending:  # the file may have failed meanwhile
                self.pending[i].chunks[k] = c
        if self.on_chunk:
            self.on_chunk(len(entries) * self.encoder.chunk_seconds)
        yield from self.finished()

    def finished(self) -> Iterator[FileResult]:
        """Every file whose chunks are all encoded: tokens ``[8, T]`` cut to the file's own frame count."""
        enc = self.encoder
        for i in [i for i, p in self.pending.items() if p.end is not None and len(p.chunks) == p.n_chunks]:
            p = self.pending.pop(i)
            info, sha = p.end
            n_frames = enc.num_frames(info.native_samples, enc.native_sample_rate)
            tokens = torch.cat([p.chunks[k] for k in range(p.n_chunks)], dim=1)[:, :n_frames]
            yield FileResult(i, self.items[i], tokens=tokens, info=info, sha256=sha)


def to_device(batch: torch.Tensor, device) -> torch.Tensor:
    """A stacked CPU batch onto ``device``; for CUDA through pinned host memory, copied asynchronously,
    so the decoding workers' next chunks are read while the GPU works (the codes' ``.cpu()`` syncs)."""
    device = torch.device(device)
    if device.type != "cuda":
        return batch.to(device)
    return batch.pin_memory().to(device, non_blocking=True)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


def trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Called after every encoded batch: a chunk's activations are freed and re-allocated in
    slightly different places each time, and without the trim glibc keeps the freed pages
    resident, so peak RSS crept up with file length (+0.36 GiB for 20 minutes against 1).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def tokenize_stream(
    encoder: AudioEncoder,
    items: list[InputFile],
    batch_chunks: int = 1,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    block_seconds: float = 10.0,
    on_chunk: Callable[[float], None] | None = None,
) -> Iterator[FileResult]:
    """Tokenize ``items``; yield one :class:`FileResult` per file (in completion order).

    ``on_chunk(seconds)`` is called after each encoded batch with the audio seconds it covered.
    """
    source = ChunkSource(items, encoder.native_sample_rate, encoder.chunk_samples, block_seconds)
    loader = DataLoader(
        source,
        batch_size=None,
        num_workers=num_workers,
        worker_init_fn=_one_thread,
        prefetch_factor=2 if num_workers else None,
        persistent_workers=False,
    )
    assembler = _Assembler(encoder, items, batch_chunks, device, on_chunk)
    for msg in loader:
        yield from assembler.receive(msg)
    yield from assembler.flush()
    yield from assembler.finished()
