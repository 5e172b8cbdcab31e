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

import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from heartcodec_lab.audio import AudioError
from heartcodec_lab.encoders.base import AudioEncoder
from heartcodec_lab.tokenize.inputs import InputFile
from heartcodec_lab.codec.weights import file_sha256
from heartcodec_lab.tokenize.stream import ChunkStream, stream_chunks


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
            # hash first: a file that is unreadable fails here with a clear OSError
            sha = file_sha256(item.path) if item.path.is_file() else None
            held = None  # one chunk of lookahead: the final one is only known once the stream ends
            for k, chunk in enumerate(stream_chunks(item.path, self.native_rate, self.chunk_samples, info,
                                                    self.block_seconds)):
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
    loader = DataLoader(source, batch_size=None, num_workers=num_workers, worker_init_fn=_one_thread,
                        prefetch_factor=2 if num_workers else None, persistent_workers=False)
    pending: dict[int, _Pending] = {}
    batch: list[tuple[int, int, torch.Tensor]] = []
    dead: set[int] = set()  # files already reported as failed; later messages about them are ignored

    shortcut = type(encoder).encode_last_chunk is not AudioEncoder.encode_last_chunk

    def run(entries: list[tuple[int, int, torch.Tensor]], encode: Callable[[], torch.Tensor]) -> Iterator[FileResult]:
        """Encode ``entries`` (file, chunk index, chunk) with ``encode() -> features``; store their codes."""
        try:
            with torch.no_grad():
                codes = encoder.quantize(encode()).cpu()  # [B, 8, F]
        except Exception as err:  # e.g. out of memory: fail these files, keep going
            last = traceback.format_exception_only(type(err), err)[-1].strip()
            for i in dict.fromkeys(i for i, _, _ in entries):
                dead.add(i)
                if pending.pop(i, None) is not None:
                    yield FileResult(i, items[i], stage="encode", error=f"encoder failed: {last}")
            return
        for (i, k, _), c in zip(entries, codes):
            if i in pending:  # the file may have failed meanwhile
                pending[i].chunks[k] = c
        if on_chunk:
            on_chunk(len(entries) * encoder.chunk_seconds)
        yield from finished()

    def run_batch() -> Iterator[FileResult]:
        if not batch:
            return
        entries = list(batch)
        batch.clear()
        yield from run(entries, lambda: encoder.encode_chunks(torch.stack([c for _, _, c in entries]).to(device)))

    def finished() -> Iterator[FileResult]:
        for i in [i for i, p in pending.items() if p.end is not None and len(p.chunks) == p.n_chunks]:
            p = pending.pop(i)
            info, sha = p.end
            n_frames = encoder.num_frames(info.native_samples, encoder.native_sample_rate)
            tokens = torch.cat([p.chunks[k] for k in range(p.n_chunks)], dim=1)[:, :n_frames]
            yield FileResult(i, items[i], tokens=tokens, info=info, sha256=sha)

    for msg in loader:
        kind, i = msg[0], msg[1]
        if i in dead:
            continue
        if kind == "chunk":
            pending.setdefault(i, _Pending())
            batch.append((i, msg[2], msg[3]))
            if len(batch) >= batch_chunks:
                yield from run_batch()
        elif kind == "last":
            _, _, k, chunk, info, sha = msg
            p = pending.setdefault(i, _Pending())
            p.end, p.n_chunks = (info, sha), k + 1
            frames = encoder.num_frames(info.native_samples, encoder.native_sample_rate) - k * encoder.frames_per_chunk
            if shortcut and 0 < frames < encoder.frames_per_chunk:
                entry = [(i, k, chunk)]
                yield from run(entry, lambda: encoder.encode_last_chunk(chunk[None].to(device), frames))
            else:
                batch.append((i, k, chunk))
                if len(batch) >= batch_chunks:
                    yield from run_batch()
            yield from finished()
        else:
            pending.pop(i, None)
            dead.add(i)
            yield FileResult(i, items[i], stage=msg[2], error=msg[3])
    yield from run_batch()
    yield from finished()
