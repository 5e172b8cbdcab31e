"""Metadata records and ledger entries for one file, and the 'is it done already?' test for resuming."""

from __future__ import annotations

import time
from pathlib import Path

from heartcodec_lab.data.text import normalize_lyrics, normalize_tags
from heartcodec_lab.tokenize.inputs import InputFile
from heartcodec_lab.tokenize.layout import AUDIO_DIR, tokens_rel_path
from heartcodec_lab.tokenize.sources import item_sha256, item_stat

RECORD_FIELDS = (
    "file_name",
    "audio_tokens_path",
    "tags",
    "tags_raw",
    "lyrics",
    "duration_s",
    "frames",
    "sample_rate",
    "channels",
    "encoder",
    "embedded",
    "audio_sha256",
)


class Naming:
    """How an input file is named inside the dataset (``file_name`` and its token path)."""

    def __init__(self, out: Path, input_root: Path | None):
        # the audio is reached through OUT/audio -> input root, unless the dataset *is* the input folder
        # (remote input, root None: still audio/<rel>, where a copy of the audio can be put)
        self.prefix = "" if input_root is not None and out.resolve() == input_root.resolve() else f"{AUDIO_DIR}/"

    def file_name(self, item: InputFile) -> str:
        return f"{self.prefix}{item.rel}"

    @staticmethod
    def tokens_path(item: InputFile) -> str:
        return tokens_rel_path(item.rel)


def text_fields(item: InputFile, default_tags: str, instrumental_lyrics: str) -> dict:
    """tags/lyrics as written to metadata, with the fallbacks SimpleTuner needs (never empty).

    ``tags`` follow the released convention (:func:`normalize_tags`), ``tags_raw`` is the text as
    given (None when the file had none); lyrics keep their section markers (:func:`normalize_lyrics`).
    """
    raw = item.tags.strip() if item.tags and item.tags.strip() else None
    tags = normalize_tags(raw) or None
    lyrics = normalize_lyrics(item.lyrics) or None
    return {
        "tags": tags or normalize_tags(default_tags),
        "tags_raw": raw,
        "lyrics": lyrics or instrumental_lyrics,
        "default_tags": tags is None,
        "instrumental": lyrics is None,
    }


def make_record(
    naming: Naming,
    item: InputFile,
    text: dict,
    *,
    frames: int,
    pad_frames: int,
    sample_rate: int,
    channels: int,
    num_samples: int,
    encoder: str,
    sha256: str,
    embedded: str = "",
) -> dict:
    """One metadata row; ``embedded``: comma-separated components that had built-in random weights."""
    return {
        "file_name": naming.file_name(item),
        "audio_tokens_path": naming.tokens_path(item),
        "tags": text["tags"],
        "tags_raw": text["tags_raw"],
        "lyrics": text["lyrics"],
        "duration_s": round(num_samples / sample_rate, 6),
        "frames": frames,
        "sample_rate": sample_rate,
        "channels": channels,
        "encoder": encoder,
        "embedded": embedded,
        "audio_sha256": sha256,
        "num_samples": num_samples,
        "pad_frames": pad_frames,
        "default_tags": text["default_tags"],
        "instrumental": text["instrumental"],
    }


def source_stat(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def ok_entry(record: dict, source: dict) -> dict:
    return {"kind": "ok", "file_name": record["file_name"], "seq": time.time_ns(), "record": record, "source": source}


def failure_entry(file_name: str, stage: str, error: str) -> dict:
    return {
        "kind": "failed",
        "file_name": file_name,
        "seq": time.time_ns(),
        "failure": {"file_name": file_name, "stage": stage, "error": error},
    }


def is_done(entry: dict | None, item: InputFile, out: Path, fingerprint: str) -> bool:
    """True when ``entry`` is a finished record of this very audio by this encoder, token file present.

    Same audio = same size and modification time (or a remote store's version stamp), or (after a
    copy/touch) the same content hash.
    """
    if not entry or entry.get("kind") != "ok":
        return False
    rec = entry["record"]
    if rec.get("encoder") != fingerprint or not (out / rec["audio_tokens_path"]).is_file():
        return False
    try:
        now = item_stat(item)
    except OSError:
        return False
    src = entry.get("source", {})
    stamp = [k for k in ("mtime_ns", "version") if now.get(k) is not None]
    if now["size"] == src.get("size") and stamp and all(now[k] == src.get(k) for k in stamp):
        return True
    return now["size"] == src.get("size") and item_sha256(item) == rec.get("audio_sha256")
