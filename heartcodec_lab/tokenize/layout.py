"""Where things live in a tokenized dataset folder (files are written with :mod:`heartcodec_lab.atomic`).

```
OUT/
  audio -> IN                 link to the input audio (SimpleTuner lists audio under its data root)
  tokens/<rel>.npy            int16 [8, T]; <rel> keeps the audio suffix (a.mp3 and a.ogg never collide)
  metadata.jsonl  failures.jsonl  dataset_info.json  multidatabackend.json   (written by finalize)
  .parts/<shard>/ledger.jsonl one line per finished file (ok or failed), appended as files finish
  .parts/<shard>/run.json     the shard's encoder and config, for finalize
```
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from heartcodec_lab.atomic import TMP_MARK, atomic_write_bytes, atomic_write_text, write_jsonl  # noqa: F401 (re-exported)

PARTS_DIR = ".parts"
TOKENS_DIR = "tokens"
AUDIO_DIR = "audio"
MAX_CODE = 8191


def shard_tag(shard: int, num_shards: int) -> str:
    return f"shard-{shard:05d}-of-{num_shards:05d}"


def tokens_rel_path(rel: str) -> str:
    """``sub/song.mp3`` -> ``tokens/sub/song.mp3.npy`` (relative to the dataset root)."""
    return f"{TOKENS_DIR}/{rel}.npy"


def tokens_to_file_array(tokens, pad_eight: bool = True) -> tuple[np.ndarray, int]:
    """int64 ``[8, T]`` -> (int16 ``[8, T']``, frames added).

    SimpleTuner rejects an 8 x 8 array as ambiguous ([8, T] or [T, 8]?), so an 8-frame clip gets
    its last frame repeated once (T' = 9); the number of added frames is recorded in metadata.
    """
    arr = np.asarray(tokens)
    if arr.ndim != 2 or arr.shape[0] != 8 or arr.shape[1] < 1:
        raise ValueError(f"tokens must be [8, T] with T >= 1, got {arr.shape}")
    if arr.min() < 0 or arr.max() > MAX_CODE:
        raise ValueError(f"token codes outside 0..{MAX_CODE}: min {arr.min()}, max {arr.max()}")
    pad = 0
    if pad_eight and arr.shape[1] == 8:
        arr = np.concatenate([arr, arr[:, -1:]], axis=1)
        pad = 1
    return np.ascontiguousarray(arr.astype(np.int16)), pad


def save_tokens(path: Path, arr: np.ndarray, tag: str = "") -> None:
    """Save an int16 ``.npy`` atomically."""
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue(), tag)


class Ledger:
    """Append-only JSON-lines journal of one shard; a line is written only after its token file exists.

    A line torn by a kill is ignored when read and dropped when the shard restarts
    (:meth:`rewrite_keeping`), so appends always follow a complete line.
    """

    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = None

    @staticmethod
    def read(path: Path) -> list[dict]:
        rows = []
        if not path.is_file():
            return rows
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # torn last line from an interrupted append
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return rows

    def rewrite_keeping(self, keep) -> None:
        """Drop every entry for which ``keep(entry)`` is false (and any torn line), atomically."""
        rows = [r for r in self.read(self.path) if keep(r)]
        write_jsonl(self.path, rows)

    def append(self, entry: dict) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_all_ledgers(out: Path) -> list[dict]:
    """Every complete entry of every shard's ledger under ``out/.parts``, in a stable order."""
    rows = []
    for ledger in sorted((out / PARTS_DIR).glob("*/ledger.jsonl")):
        rows.extend(Ledger.read(ledger))
    return rows


def latest_by_file(entries: list[dict]) -> dict[str, dict]:
    """The newest entry (highest ``seq``) per ``file_name``."""
    latest: dict[str, dict] = {}
    for e in entries:
        name = e["file_name"]
        if name not in latest or e["seq"] > latest[name]["seq"]:
            latest[name] = e
    return latest
