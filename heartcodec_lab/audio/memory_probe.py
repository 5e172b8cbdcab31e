"""Peak memory of streaming a long file: ``python -m heartcodec_lab.audio.memory_probe MINUTES`` prints one JSON line.

A fresh process writes ``MINUTES`` of 44.1 kHz stereo noise to a temporary WAV and streams it into
the official encoder's 24 kHz chunks (no encoder). Its peak RSS must not follow the file's length
(``benchmarks/bench_tokenize.py --memory`` and a slow test compare 1 with 15-20 minutes).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from heartcodec_lab.audio.rates import OFFICIAL_ENCODER_SAMPLE_RATE
from heartcodec_lab.audio.stream import ChunkStream, stream_chunks

OFFICIAL_CHUNK_SAMPLES = 714240  # 29.76 s at 24 kHz, the released encoder's chunk


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def stream_memory(minutes: float) -> dict:
    """Stream ``minutes`` of audio in this process: chunks, seconds taken, peak RSS and its growth while streaming."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        rng = np.random.default_rng(0)
        with sf.SoundFile(str(path), "w", 44100, 2, subtype="PCM_16") as f:
            for _ in range(int(minutes * 6)):  # 10-s blocks
                f.write((0.1 * rng.standard_normal((441000, 2))).astype(np.float32))
        base = _peak_rss_kib()
        info = ChunkStream()
        t0 = time.perf_counter()
        n = sum(1 for _ in stream_chunks(path, OFFICIAL_ENCODER_SAMPLE_RATE, OFFICIAL_CHUNK_SAMPLES, info))
        wall = time.perf_counter() - t0
    peak = _peak_rss_kib()
    return {
        "minutes": minutes,
        "chunks": n,
        "stream_s": round(wall, 1),
        "peak_rss_gib": round(peak / 2**20, 3),
        "rss_growth_mib": round((peak - base) / 1024, 1),
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m heartcodec_lab.audio.memory_probe MINUTES")
    print(json.dumps(stream_memory(float(args[0]))))


if __name__ == "__main__":
    main()
