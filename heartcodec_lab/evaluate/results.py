"""Per-item results as JSON lines, appended as each item finishes, so a rerun resumes."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from heartcodec_lab.atomic import atomic_write_json, write_jsonl

log = logging.getLogger(__name__)


def _clean(value):
    """NaN/inf -> None so the files stay strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def read_jsonl(path: str | Path) -> list[dict]:
    """All complete records of a JSONL file ([] if absent). A torn last line (interrupted write) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                log.warning("%s: skipping an incomplete last line (interrupted run)", path)
                continue
            raise ValueError(f"{path}:{number}: not valid JSON") from None
    return records


class JsonlLog:
    """Append-only record file keyed by ``key_fields``; :meth:`done` tells what a previous run finished."""

    def __init__(self, path: str | Path, key_fields: tuple[str, ...], resume: bool = True):
        self.path = Path(path)
        self.key_fields = key_fields
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume and self.path.exists():
            self.path.unlink()
        self.records = read_jsonl(self.path)
        self._done = {self.key(r) for r in self.records}
        self._repair_torn_tail()

    def _repair_torn_tail(self) -> None:
        # rewrite the file without a torn last line so the next append starts on a fresh line
        if self.path.is_file() and self.path.stat().st_size:
            text = self.path.read_text(encoding="utf-8")
            if not text.endswith("\n"):
                write_jsonl(self.path, self.records, ensure_ascii=True, sort_keys=False)

    def key(self, record: dict) -> tuple:
        return tuple(record.get(f) for f in self.key_fields)

    def done(self, **key) -> bool:
        return tuple(key.get(f) for f in self.key_fields) in self._done

    def drop(self, records: list[dict]) -> None:
        """Remove ``records`` (objects of :attr:`records`) from memory and rewrite the file without them."""
        gone = {id(r) for r in records}
        self.records = [r for r in self.records if id(r) not in gone]
        self._done = {self.key(r) for r in self.records}
        write_jsonl(self.path, self.records, ensure_ascii=True, sort_keys=False)

    def append(self, record: dict) -> None:
        record = _clean(record)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        self.records.append(record)
        self._done.add(self.key(record))


def write_json(path: str | Path, data) -> Path:
    return atomic_write_json(path, _clean(data))
