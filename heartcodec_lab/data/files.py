"""Finding audio files, reading manifests and sidecar text (tags ``.txt``, lyrics ``.lyrics``)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from heartcodec_lab.audio import audio_extensions


@dataclass
class AudioItem:
    """One input: ``path`` is absolute; tags/lyrics None when the source gives none."""

    path: Path
    tags: str | None = None
    lyrics: str | None = None
    extra: dict = field(default_factory=dict)


def find_audio_files(root: str | Path, extensions: tuple[str, ...] | None = None) -> list[Path]:
    """Every audio file under ``root`` (recursive, hidden files skipped), sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: input folder not found")
    exts = set(audio_extensions(extensions))
    found = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in exts
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def sidecar_text(audio_path: str | Path, suffix: str) -> str | None:
    """Stripped text of ``<name><suffix>`` beside the audio (``song.mp3`` -> ``song.txt``), or None if absent/empty."""
    path = Path(audio_path).with_suffix(suffix)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    return text or None


def read_manifest(path: str | Path) -> list[AudioItem]:
    """JSONL or CSV with a ``path`` column (relative paths resolve from the manifest's folder), optional tags/lyrics."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    rows: list[dict] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    else:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{n}: not valid JSON ({err.msg})") from err
    items = []
    for n, row in enumerate(rows, 1):
        p = row.get("path") or row.get("file_name") or row.get("audio")
        if not p:
            raise ValueError(f"{path}: row {n} has no 'path'")
        audio = Path(p) if Path(p).is_absolute() else (path.parent / p)
        extra = {k: v for k, v in row.items() if k not in ("path", "file_name", "audio", "tags", "lyrics")}
        items.append(AudioItem(audio, _clean(row.get("tags")), _clean(row.get("lyrics")), extra))
    return items


def items_from_folder(root: str | Path, extensions: tuple[str, ...] | None = None) -> list[AudioItem]:
    """Audio files under ``root`` with tags from ``<name>.txt`` and lyrics from ``<name>.lyrics``."""
    return [
        AudioItem(p, sidecar_text(p, ".txt"), sidecar_text(p, ".lyrics")) for p in find_audio_files(root, extensions)
    ]


def _clean(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
