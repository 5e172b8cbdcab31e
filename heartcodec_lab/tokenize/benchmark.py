"""Measured runs of the bulk tokenizer, for ``benchmarks/bench_tokenize.py`` and ``benchmarks/tokenize_scale.py``.

Each run returns one row (a dict): audio seconds, wall seconds, CPU seconds (this process plus its finished
decoding workers, ``RUSAGE_CHILDREN``) and peak RSS of the process and of its workers, in GiB. Run each in its
own process when the peak RSS should be that run's alone.

* :func:`bulk_run`: :func:`run_shard` (decoding workers, resampling, encoding, writing) on one shard of a folder;
* :func:`encoder_alone_run`: the encoder on in-memory 29.76 s chunks, one per call (what the bulk job does per
  chunk), i.e. the single-stream rate the bulk job is compared with;
* :func:`write_tone_file` / :func:`write_mixed_folder`: long test inputs written block by block.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from heartcodec_lab.encoders.base import AudioEncoder
from heartcodec_lab.tokenize.job import run_shard
from heartcodec_lab.tokenize.job_config import TokenizeJob


def cpu_seconds() -> tuple[float, float]:
    """(this process's CPU seconds, its finished children's CPU seconds)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), kids.ru_utime + kids.ru_stime


def peak_rss() -> dict[str, float]:
    """Peak resident memory so far of this process and of its largest finished child, in GiB."""
    return {
        "peak_rss_main_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),  # KiB on Linux
        "peak_rss_worker_gib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 3),
    }


def bulk_run(
    input_dir: str | Path,
    encoder: AudioEncoder,
    label: str,
    shard: int = 0,
    num_shards: int = 1,
    workers: int = 2,
    batch_chunks: int = 1,
    extensions: tuple[str, ...] | None = None,
    device: str = "cpu",
) -> dict:
    """Tokenize shard ``shard`` of ``num_shards`` of ``input_dir`` into a temporary folder; one measured row.

    The row also has ``files`` (tokenized), ``failed`` and ``failures`` (``[{file_name, stage, error}]``).
    """
    with tempfile.TemporaryDirectory() as out:
        job = TokenizeJob(
            output_dir=Path(out),
            input_dir=Path(input_dir),
            extensions=extensions,
            num_workers=workers,
            batch_chunks=batch_chunks,
            progress=False,
        )
        wall0, (own0, kids0) = time.perf_counter(), cpu_seconds()
        summary = run_shard(job, encoder, shard, num_shards, device=device)
        wall, (own1, kids1) = time.perf_counter() - wall0, cpu_seconds()
    return {
        "run": label,
        "audio_s": summary.seconds,
        "files": summary.ok,
        "failed": summary.failed,
        "failures": list(summary.failures),
        "wall_s": wall,
        "cpu_s": (own1 - own0) + (kids1 - kids0),
        "cpu_main_s": own1 - own0,
        "cpu_workers_s": kids1 - kids0,
        **peak_rss(),
    }


def encoder_alone_run(encoder: AudioEncoder, chunks: int, seed: int = 0, warmup_samples: int | None = None) -> dict:
    """``chunks`` calls of ``encode_chunks`` + ``quantize`` on one ``[1, 2, chunk_samples]`` tone-plus-noise chunk.

    A warm-up call on the first ``warmup_samples`` (default: 1/50 of a chunk, 0: none) keeps lazy
    initialisation out of the figures.
    """
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(encoder.chunk_samples) / encoder.native_sample_rate
    chunk = (0.2 * torch.sin(2 * torch.pi * 220 * t) + 0.03 * torch.randn(2, t.numel(), generator=g))[None]
    with torch.inference_mode():
        warmup = encoder.chunk_samples // 50 if warmup_samples is None else warmup_samples
        if warmup:
            encoder.quantize(encoder.encode_chunks(chunk[..., :warmup]))
        wall0, (own0, _) = time.perf_counter(), cpu_seconds()
        for _ in range(chunks):
            encoder.quantize(encoder.encode_chunks(chunk))
        wall, cpu = time.perf_counter() - wall0, cpu_seconds()[0] - own0
    return {
        "run": f"encoder alone, {chunks} x {encoder.chunk_seconds:g} s chunks",
        "audio_s": chunks * encoder.chunk_seconds,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_main_s": cpu,
        "cpu_workers_s": 0.0,
        **peak_rss(),
    }


def write_tone_file(path: str | Path, seconds: float, sample_rate: int, seed: int, block_seconds: float = 10.0) -> None:
    """A 16-bit stereo file of two tones plus noise, written ``block_seconds`` at a time (never all in memory)."""
    rng = np.random.default_rng(seed)
    total, block = int(seconds * sample_rate), int(block_seconds * sample_rate)
    with sf.SoundFile(str(path), "w", sample_rate, 2, subtype="PCM_16") as f:
        done = 0
        while done < total:
            n = min(block, total - done)
            t = (done + np.arange(n)) / sample_rate
            tone = 0.2 * np.sin(2 * np.pi * (110 + 40 * seed) * t) + 0.1 * np.sin(2 * np.pi * 660 * t)
            f.write((tone[:, None] + 0.03 * rng.standard_normal((n, 2))).astype(np.float32))
            done += n


def write_mixed_folder(folder: str | Path, lengths: list[float]) -> list[Path]:
    """One file per length (seconds), sorted; 48 kHz FLAC and 44.1 kHz WAV alternate (so workers resample).

    Named ``NN_<seconds>s.ext`` so that with 2 shards and an even count the longest file lands in shard 1 and the others alternate.
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for i, seconds in enumerate(sorted(lengths)):
        ext, sample_rate = ("flac", 48000) if i % 2 == 0 else ("wav", 44100)
        path = Path(folder) / f"{i:02d}_{seconds:g}s.{ext}"
        write_tone_file(path, seconds, sample_rate, seed=i)
        paths.append(path)
    return paths
