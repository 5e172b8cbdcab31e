"""The SimpleTuner side of a tokenized dataset: ``multidatabackend.json`` and a reader that applies
SimpleTuner's own HeartMuLa rules, so a dataset can be checked before a GPU is rented.

SimpleTuner's parquet metadata backend (which also reads JSON lines) lists the audio files under
``instance_data_dir``, looks each up by its path relative to that folder (``filename_column`` with
``identifier_includes_extension``), takes the caption column as ``tags``, the lyrics column only when
it is non-empty, and ``audio_tokens_path`` as given; the HeartMuLa trainer then resolves relative
token paths from ``instance_data_dir`` and loads a 2-D ``[8, T]`` / ``[T, 8]`` integer array (8 x 8 is
refused as ambiguous). Empty lyrics are dropped by the backend and then refused by the trainer,
hence the instrumental placeholder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

NUM_CODEBOOKS = 8
CODEBOOK_SIZE = 8192


def multidatabackend(
    dataset_root: Path, backend_id: str = "heartmula-tokens", caption_column: str = "tags"
) -> list[dict]:
    """The ``multidatabackend.json`` content for a tokenized dataset at ``dataset_root`` (absolute)."""
    return [
        {
            "id": backend_id,
            "type": "local",
            "dataset_type": "audio",
            "instance_data_dir": str(dataset_root),
            "caption_strategy": "parquet",
            "metadata_backend": "parquet",
            "parquet": {
                "path": str(dataset_root / "metadata.jsonl"),
                "filename_column": "file_name",
                "caption_column": caption_column,
                "lyrics_column": "lyrics",
                "identifier_includes_extension": True,
                "audio_sample_rate_column": "sample_rate",
                "audio_duration_column": "duration_s",
                "audio_channels_column": "channels",
                "audio_num_samples_column": "num_samples",
            },
            "repeats": 0,
            "disabled": False,
        }
    ]


class SimpleTunerCheckError(ValueError):
    """A dataset row SimpleTuner's HeartMuLa trainer would reject; the message names the row and why."""


def load_tokens_like_simpletuner(path: Path) -> np.ndarray:
    """Load a token file as SimpleTuner does and return it ``[T, 8]`` (int64), or raise why it would fail."""
    payload = np.load(path, allow_pickle=False)
    if hasattr(payload, "files"):
        payload = payload["tokens"] if "tokens" in payload.files else payload[payload.files[0]]
    arr = np.asarray(payload)
    if arr.ndim != 2:
        raise SimpleTunerCheckError(f"{path}: tokens must be 2-D, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise SimpleTunerCheckError(f"{path}: tokens must be integers, got {arr.dtype}")
    if arr.shape == (NUM_CODEBOOKS, NUM_CODEBOOKS):
        raise SimpleTunerCheckError(f"{path}: an 8 x 8 token array is ambiguous ([8, T] or [T, 8]?)")
    if arr.shape[0] == NUM_CODEBOOKS:
        arr = arr.T
    elif arr.shape[1] != NUM_CODEBOOKS:
        raise SimpleTunerCheckError(f"{path}: no dimension of size {NUM_CODEBOOKS} in shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= CODEBOOK_SIZE):
        raise SimpleTunerCheckError(f"{path}: codes outside 0..{CODEBOOK_SIZE - 1} (min {arr.min()}, max {arr.max()})")
    return arr.astype(np.int64)


def check_dataset(root: str | Path) -> list[dict]:
    """Read ``root/metadata.jsonl`` the way SimpleTuner would; return the samples it would train on.

    Each returned dict has ``file_name``, ``tags``, ``lyrics`` and ``tokens`` ``[T, 8]``. Raises
    :class:`SimpleTunerCheckError` on the first row the trainer would reject.
    """
    root = Path(root)
    meta = root / "metadata.jsonl"
    if not meta.is_file():
        raise SimpleTunerCheckError(f"{meta}: not found")
    samples = []
    for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{meta}:{n}"
        row = json.loads(line)
        name = row.get("file_name")
        if not isinstance(name, str) or not name or Path(name).is_absolute():
            raise SimpleTunerCheckError(f"{where}: file_name must be a path relative to the dataset root, got {name!r}")
        if not (root / name).is_file():
            raise SimpleTunerCheckError(f"{where}: audio {name} does not resolve from {root}")
        for key in ("tags", "lyrics"):
            value = row.get(key)
            # pandas turns numeric-looking strings into numbers and SimpleTuner drops empty values
            if not isinstance(value, str) or not value.strip():
                raise SimpleTunerCheckError(f"{where}: {key} must be a non-empty string, got {value!r}")
            if _becomes_number(value):
                raise SimpleTunerCheckError(
                    f"{where}: {key} {value!r} looks like a number; SimpleTuner's backend "
                    f"converts it to one and the HeartMuLa trainer then refuses it"
                )
        tok = row.get("audio_tokens_path")
        if not isinstance(tok, str) or not tok or Path(tok).is_absolute():
            raise SimpleTunerCheckError(f"{where}: audio_tokens_path must be relative to the dataset root, got {tok!r}")
        if not (root / tok).is_file():
            raise SimpleTunerCheckError(f"{where}: token file {tok} does not resolve from {root}")
        tokens = load_tokens_like_simpletuner(root / tok)
        duration = row.get("duration_s")
        if not isinstance(duration, (int, float)) or not math.isfinite(duration) or duration <= 0:
            raise SimpleTunerCheckError(f"{where}: duration_s must be a positive number, got {duration!r}")
        samples.append({"file_name": name, "tags": row["tags"], "lyrics": row["lyrics"], "tokens": tokens})
    return samples


def _becomes_number(text: str) -> bool:
    """SimpleTuner's parquet backend turns strings that parse as int (or float, when they hold a '.') into numbers."""
    try:
        float(text) if "." in text else int(text)
    except ValueError:
        return False
    return True
