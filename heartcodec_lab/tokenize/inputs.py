"""The job's input list: a folder (recursive) or a manifest, with tags/lyrics, split into shards."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from heartcodec_lab.audio import audio_extensions
from heartcodec_lab.data.files import find_audio_files, read_manifest, sidecar_text

EXTERNAL_PREFIX = "_external"


@dataclass
class InputFile:
    """One audio file to tokenize.

    path: absolute path. rel: posix name relative to the input root (the key for its token file).
    tags/lyrics: from the manifest or sidecars (None when absent; defaults are applied later).
    """

    path: Path
    rel: str
    tags: str | None = None
    lyrics: str | None = None


def _rel_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        # outside the manifest's folder: keep the absolute path under a fixed prefix so names stay unique
        return f"{EXTERNAL_PREFIX}/{path.as_posix().lstrip('/')}"


def collect_inputs(
    input_dir: str | None,
    input_manifest: str | None,
    extensions=None,
    exclude: Path | None = None,
) -> tuple[Path, list[InputFile]]:
    """(input root, files sorted by ``rel``). Exactly one of ``input_dir`` / ``input_manifest``.

    Tags come from the manifest, else ``<name>.txt``; lyrics from the manifest, else ``<name>.lyrics``.
    ``extensions``: None takes the audio layer's list. Files under ``exclude`` (the output folder, when it lies
    inside the input) are left out.
    """
    if bool(input_dir) == bool(input_manifest):
        raise ValueError("give exactly one of input_dir=FOLDER or input_manifest=FILE.jsonl|.csv")
    exts = audio_extensions(extensions)
    items: list[InputFile] = []
    if input_dir:
        root = Path(input_dir).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: input folder not found")
        for p in find_audio_files(root, exts):
            p = p.resolve() if not p.is_absolute() else p
            items.append(InputFile(p, _rel_name(p, root), sidecar_text(p, ".txt"), sidecar_text(p, ".lyrics")))
    else:
        manifest = Path(input_manifest).expanduser().resolve()
        root = manifest.parent
        seen: set[str] = set()
        for row in read_manifest(manifest):
            p = Path(os.path.abspath(row.path))
            rel = _rel_name(p, root)
            if rel in seen:
                warnings.warn(f"{manifest}: {p} listed twice; the first row is used", stacklevel=2)
                continue
            seen.add(rel)
            tags = row.tags if row.tags is not None else sidecar_text(p, ".txt")
            lyrics = row.lyrics if row.lyrics is not None else sidecar_text(p, ".lyrics")
            items.append(InputFile(p, rel, tags, lyrics))
    if exclude is not None and exclude.resolve() != root:
        # (a dataset written into the input folder itself holds no audio of its own: nothing to leave out)
        exclude = exclude.resolve()
        items = [it for it in items if not it.path.is_relative_to(exclude)]
    return root, sorted(items, key=lambda it: it.rel)


def select_shard(items: list[InputFile], shard: int, num_shards: int) -> list[InputFile]:
    """Shard ``shard`` of ``num_shards``: every ``num_shards``-th file of the sorted list.

    Disjoint, and together the shards cover every file exactly once; round-robin over sorted names
    keeps shards balanced in count and makes the split the same on every machine.
    """
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ValueError(f"need 0 <= shard < num_shards, got shard={shard} num_shards={num_shards}")
    return sorted(items, key=lambda it: it.rel)[shard::num_shards]
