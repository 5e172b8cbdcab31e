"""Reading a tokenized dataset (DESIGN.md section 4) for evaluation.

A dataset folder holds ``tokens/<audio path with suffix>.npy`` (int16 ``[8, T]``),
``metadata.jsonl`` (one object per line; ``audio_tokens_path`` relative to the root)
and ``dataset_info.json``. Without ``metadata.jsonl`` every ``tokens/**/*.npy`` is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from heartcodec_lab.codec.token_files import TokenFileError, read_token_file


class DatasetError(ValueError):
    """A dataset file that cannot be used; the message names the file and the problem."""


@dataclass
class DatasetItem:
    """One token file: ``key`` is its path relative to the dataset root; ``meta`` its metadata line (or {})."""

    key: str
    tokens_path: Path
    meta: dict = field(default_factory=dict)


def read_tokens(path: str | Path) -> np.ndarray:
    """A token ``.npy`` -> int64 ``[8, T]`` (``[T, 8]`` transposed; 8 x 8 read as ``[8, T]``)."""
    try:
        return read_token_file(path, allow_empty=True)
    except TokenFileError as err:
        raise DatasetError(str(err)) from err


def read_metadata(path: str | Path) -> list[dict]:
    """``metadata.jsonl`` -> list of dicts; a bad line is an error naming the file and line number."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}:{number}: not valid JSON ({err.msg})") from err
        if not isinstance(row, dict) or "audio_tokens_path" not in row:
            raise DatasetError(f"{path}:{number}: a metadata line needs an 'audio_tokens_path' field")
        rows.append(row)
    return rows


def read_dataset_info(dataset_dir: str | Path) -> dict:
    """``dataset_info.json`` as a dict ({} when absent)."""
    path = Path(dataset_dir) / "dataset_info.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON ({err.msg})") from err


def iter_dataset(dataset_dir: str | Path) -> Iterator[DatasetItem]:
    """Every token file of a dataset, in metadata order (or sorted path order without metadata)."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    metadata = root / "metadata.jsonl"
    if metadata.is_file():
        for row in read_metadata(metadata):
            key = str(row["audio_tokens_path"])
            path = root / key
            if not path.is_file():
                raise DatasetError(f"{metadata}: token file {key} listed but missing ({path})")
            yield DatasetItem(key=key, tokens_path=path, meta=row)
        return
    files = sorted((root / "tokens").rglob("*.npy")) if (root / "tokens").is_dir() else []
    if not files:
        raise DatasetError(f"{root}: no metadata.jsonl and no tokens/**/*.npy files")
    for path in files:
        yield DatasetItem(key=path.relative_to(root).as_posix(), tokens_path=path)
