"""Atomic file writes, in one place: write beside the target, fsync, rename over it.

A reader (or a resumed job after a kill) sees the old file or the new one, never a partial one.
The temporary name is ``<name>.tmp-<tag>`` (``tag`` defaults to the process id, so concurrent
writers of one file never share a temporary); anything matching ``*.tmp-*`` is debris of a kill.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, tag: str = "", fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends cleanly it replaces ``path``.

    The block writes the temporary (any writer: ``sf.write``, ``torch.save``, ``os.symlink``...).
    On an exception the temporary is removed and ``path`` is left as it was. ``fsync=False`` skips
    flushing the file and its folder to disk (for links, or files that are cheap to remake).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{tag or os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    try:
        yield tmp
        if fsync:
            _fsync_path(tmp)
        os.replace(tmp, path)
        if fsync:
            _fsync_path(path.parent)
    finally:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes, tag: str = "") -> Path:
    """Write ``data`` to ``path`` atomically (and durably: file and folder fsynced)."""
    with atomic_path(path, tag) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, tag: str = "") -> Path:
    """UTF-8 text, atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), tag)


def atomic_write_json(path: str | Path, data, tag: str = "", **dumps_kwargs) -> Path:
    """One JSON document (``indent=2`` unless given) with a final newline, atomically."""
    dumps_kwargs.setdefault("indent", 2)
    return atomic_write_text(path, json.dumps(data, **dumps_kwargs) + "\n", tag)


def write_jsonl(path: str | Path, rows, tag: str = "", **dumps_kwargs) -> Path:
    """One JSON object per line, atomically (``ensure_ascii=False, sort_keys=True`` unless given)."""
    dumps_kwargs.setdefault("ensure_ascii", False)
    dumps_kwargs.setdefault("sort_keys", True)
    return atomic_write_text(path, "".join(json.dumps(r, **dumps_kwargs) + "\n" for r in rows), tag)
