"""Transcribe a file or a folder into JSON lines, resumably.

``out`` gets one line per transcribed file ``{"file", "text", "duration_s", "seconds"}``, appended
as each finishes; a rerun skips files already there. Files that cannot be read or transcribed go
to ``<out stem>.failures.jsonl`` ``{"file", "error"}`` and are retried on the next run.
``file`` is the path relative to the input folder (the file name for a single file).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from heartcodec_lab.audio import WHISPER_SAMPLE_RATE, AudioError, audio_extensions, load_audio
from heartcodec_lab.transcribe.model import HeartTranscriptor

log = logging.getLogger(__name__)


def list_inputs(source: str | Path, extensions=None) -> list[tuple[str, Path]]:
    """``(key, path)`` for a file, or for every audio file under a folder (sorted)."""
    source = Path(source)
    if source.is_file():
        return [(source.name, source)]
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such file or folder")
    exts = set(audio_extensions(extensions))
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    if not files:
        raise FileNotFoundError(f"{source}: no audio files with extensions {sorted(exts)}")
    return [(p.relative_to(source).as_posix(), p) for p in files]


def _read_done(path: Path) -> set[str]:
    done = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                done.add(json.loads(line)["file"])
            except (json.JSONDecodeError, KeyError):
                continue  # a torn last line from an interrupted run: that file is redone
    return done


def _end_torn_line(path: Path) -> None:
    """After an interrupted run the last line may be cut: end it so the next record starts clean."""
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as f:
            f.seek(-1, 2)
            torn = f.read(1) != b"\n"
        if torn:
            with path.open("a", encoding="utf-8") as f:
                f.write("\n")


def _append(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def failures_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".failures.jsonl")


def transcribe_files(
    transcriber: HeartTranscriptor, source: str | Path, out: str | Path, extensions=None, resume: bool = True
) -> dict:
    """Transcribe ``source`` (file or folder) into ``out``; returns counts ``{done, skipped, failed}``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    failed_path = failures_path(out)
    if not resume:
        out.unlink(missing_ok=True)
    failed_path.unlink(missing_ok=True)  # failures are retried, so only this run's are kept
    done = _read_done(out)
    _end_torn_line(out)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    for key, path in list_inputs(source, extensions):
        if key in done:
            counts["skipped"] += 1
            continue
        start = time.perf_counter()
        try:
            audio, sr = load_audio(path, sample_rate=WHISPER_SAMPLE_RATE, channels="mono", min_seconds=0.1)
            text = transcriber.transcribe(audio, sr)
        except (AudioError, ValueError, RuntimeError) as err:
            log.warning("skipping %s: %s", path, err)
            _append(failed_path, {"file": key, "error": str(err)})
            counts["failed"] += 1
            continue
        _append(
            out, {"file": key, "text": text, "duration_s": audio.shape[-1] / sr, "seconds": time.perf_counter() - start}
        )
        counts["done"] += 1
    return counts
