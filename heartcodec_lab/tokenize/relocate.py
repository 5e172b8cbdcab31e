"""What ``heartcodec-tokenize-relocate`` does (heartcodec_lab/cli/tokenize_relocate.py): re-point a tokenized dataset that moved.

Inside a dataset every path is relative to its root (``file_name``, ``audio_tokens_path``) except two:
``multidatabackend.json`` names the root and its ``metadata.jsonl`` absolutely (SimpleTuner needs
that), and ``audio`` links to the input music. After moving the folder, this rewrites the first for
the folder's new place; after moving the music too, ``audio_root`` re-points the link (or, for a
manifest input, each per-file link under ``audio/`` to the same relative path under ``audio_root``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from heartcodec_lab.atomic import atomic_path, atomic_write_text
from heartcodec_lab.tokenize.layout import AUDIO_DIR

BACKEND_FILE = "multidatabackend.json"


class RelocateError(ValueError):
    """The folder is not a tokenized dataset, or its audio cannot be found; one line naming the file."""


def _repoint(link: Path, target: Path) -> None:
    with atomic_path(link, fsync=False) as tmp:  # atomic: the link is never missing
        os.symlink(target, tmp, target_is_directory=target.is_dir())


def relink_audio(out: Path, audio_root: Path | None) -> int:
    """Re-point ``out/audio`` to ``audio_root``; returns how many links changed. Refuses broken links without one."""
    link = out / AUDIO_DIR
    if link.is_symlink():
        if audio_root is None:
            if not link.exists():
                raise RelocateError(
                    f"{link} -> {os.readlink(link)} is broken: pass audio_root=<where the music is now>"
                )
            return 0
        _repoint(link, audio_root)
        return 1
    if not link.is_dir():  # the dataset is the input folder itself: no link
        return 0
    changed = 0
    for entry in sorted(link.rglob("*")):  # manifest input: one link per file
        if not entry.is_symlink():
            continue
        if audio_root is None:
            if not entry.exists():
                raise RelocateError(
                    f"{entry} -> {os.readlink(entry)} is broken: pass audio_root=<where the music is now>"
                )
            continue
        target = audio_root / entry.relative_to(link)
        if not target.exists():
            raise RelocateError(f"{entry}: {target} not found under audio_root={audio_root}")
        _repoint(entry, target)
        changed += 1
    return changed


def relocate(dataset_dir: str | Path, audio_root: str | Path | None = None) -> dict:
    """Rewrite ``multidatabackend.json`` for the dataset's current folder and (with ``audio_root``) its audio links."""
    out = Path(dataset_dir).expanduser().resolve()
    backend_file = out / BACKEND_FILE
    if not backend_file.is_file():
        raise RelocateError(f"{backend_file}: not found ({out} is not a finished tokenized dataset)")
    try:
        backends = json.loads(backend_file.read_text(encoding="utf-8"))
        previous = [b["instance_data_dir"] for b in backends]
    except (json.JSONDecodeError, TypeError, KeyError) as err:
        raise RelocateError(f"{backend_file}: not a SimpleTuner backend list ({err})") from None
    root = Path(audio_root).expanduser().resolve() if audio_root is not None else None
    if root is not None and not root.is_dir():
        raise RelocateError(f"audio_root={audio_root}: no such folder")
    links = relink_audio(out, root)
    for backend in backends:
        backend["instance_data_dir"] = str(out)
        parquet = backend.get("parquet")
        if isinstance(parquet, dict) and parquet.get("path"):
            parquet["path"] = str(out / Path(parquet["path"]).name)
    atomic_write_text(backend_file, json.dumps(backends, indent=2) + "\n")
    unresolved = _unresolved_audio(out)
    return {"dataset_dir": str(out), "previous_dirs": previous, "links_changed": links, "unresolved_audio": unresolved}


def _unresolved_audio(out: Path) -> int:
    meta = out / "metadata.jsonl"
    if not meta.is_file():
        return 0
    rows = (json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line.strip())
    return sum(not (out / row["file_name"]).is_file() for row in rows)
