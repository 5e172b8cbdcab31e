"""Inputs beyond a local folder or manifest, and access to any input item, local or not.

``input=`` takes a local folder, a ``.jsonl``/``.csv`` manifest, an fsspec URL (``s3://bucket/songs/``,
``gs://...``, ``hf://datasets/user/repo/audio/``, ``memory://...``; ``file://`` is a local path) or a
Hugging Face dataset with an audio column (``hf:<repo id or folder>``; a folder written by
``save_to_disk`` is recognized without the prefix). Remote files are named by their path below the
URL (``rel``) exactly as local files are below their folder; dataset rows are named
``<split>/<row, zero-padded>[_<the audio's own file name>]``. Tags and lyrics come from ``<name>.txt`` /
``<name>.lyrics`` beside a remote file, or from a dataset's ``tags`` / ``lyrics`` columns.

Remote audio has no ``OUT/audio`` link (SimpleTuner reads local files): ``file_name`` is still
``audio/<rel>``, so syncing the audio under that folder (or ``heartcodec-tokenize-relocate
audio_root=...``) makes the dataset whole.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from heartcodec_lab.audio import audio_extensions
from heartcodec_lab.audio.sources import (
    HFDatasetRef,
    HFRowSource,
    UrlSource,
    is_saved_dataset,
    is_url,
    open_hf_dataset,
    url_to_fs,
)
from heartcodec_lab.codec.weights import file_sha256
from heartcodec_lab.tokenize.inputs import InputFile, collect_inputs

HF_PREFIX = "hf:"
MANIFEST_SUFFIXES = (".jsonl", ".csv")


@dataclass(frozen=True)
class InputSpec:
    """What ``input=`` names: ``kind`` is ``folder``, ``manifest``, ``url`` or ``hf``."""

    kind: str
    value: str

    @property
    def local(self) -> bool:
        return self.kind in ("folder", "manifest")


def classify_input(value: str) -> InputSpec:
    """Tell what ``input=`` names (a local one must exist; remote ones are checked when listed)."""
    text = str(value).strip()
    if text.startswith(HF_PREFIX) and not text.startswith("hf://"):
        return InputSpec("hf", text[len(HF_PREFIX) :])
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif is_url(text):
        return InputSpec("url", text)
    path = Path(text).expanduser()
    if path.is_dir():
        return InputSpec("hf" if is_saved_dataset(path) else "folder", str(path))
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        return InputSpec("manifest", str(path))
    if path.is_file():
        raise ValueError(f"{value}: a single file is not an input; give its folder, a manifest listing it, or a URL")
    raise FileNotFoundError(f"{value}: input not found (a folder, a .jsonl/.csv manifest, a URL or hf:<dataset>)")


def resolve_inputs(job, exclude: Path | None = None) -> tuple[Path | None, str, list[InputFile]]:
    """(local input root or None, a label for records, files sorted by ``rel``) for a :class:`TokenizeJob`."""
    if job.input is None:
        root, items = collect_inputs(job.input_dir, job.input_manifest, job.extensions, exclude=exclude)
        return root, str(root), items
    spec = classify_input(job.input)
    if spec.kind == "url":
        return None, spec.value, collect_url_inputs(spec.value, job.extensions)
    if spec.kind == "hf":
        ref = HFDatasetRef(spec.value, job.input_split, job.audio_column)
        return None, f"{HF_PREFIX}{spec.value}[{job.input_split}]", collect_hf_inputs(ref)
    folder, manifest = (spec.value, None) if spec.kind == "folder" else (None, spec.value)
    root, items = collect_inputs(folder, manifest, job.extensions, exclude=exclude)
    return root, str(root), items


def collect_url_inputs(url: str, extensions=None, storage_options: dict | None = None) -> list[InputFile]:
    """Every audio file below an fsspec URL (recursive, hidden names skipped), with sidecar tags/lyrics.

    ``extensions``: None = :data:`heartcodec_lab.audio.AUDIO_EXTENSIONS`.
    """
    exts = set(audio_extensions(extensions))
    fs, root = url_to_fs(url, storage_options)
    if fs.isfile(root):
        paths, base = [root], posixpath.dirname(root.rstrip("/"))
    elif fs.isdir(root):
        paths, base = fs.find(root), root.rstrip("/")
    else:
        raise FileNotFoundError(f"{url}: nothing there (neither a file nor a folder)")
    names = set(paths)
    options = tuple(sorted((storage_options or {}).items()))
    items = []
    for p in sorted(paths):
        rel = posixpath.relpath(p, base) if base else p.lstrip("/")
        if posixpath.splitext(p)[1].lower() not in exts or any(part.startswith(".") for part in rel.split("/")):
            continue
        stem = posixpath.splitext(p)[0]
        tags, lyrics = (_remote_text(fs, stem + suffix, names) for suffix in (".txt", ".lyrics"))
        items.append(InputFile(None, rel, tags, lyrics, UrlSource(fs.unstrip_protocol(p), options)))
    return items


def _remote_text(fs, path: str, names: set) -> str | None:
    if path not in names:
        return None
    text = fs.cat_file(path).decode("utf-8", errors="replace").strip()
    return text or None


def collect_hf_inputs(ref: HFDatasetRef, tags_column: str = "tags", lyrics_column: str = "lyrics") -> list[InputFile]:
    """One item per row of a dataset split; the audio stays in the dataset until a worker reads it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ds = open_hf_dataset(ref)
    column = ds.data.column(ref.audio_column)
    if pa.types.is_struct(column.type) and column.type.get_field_index("path") >= 0:
        paths = pc.struct_field(column, "path").to_pylist()
    elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        paths = column.to_pylist()
    else:
        paths = [None] * len(ds)
    texts = {}
    for key, name in (("tags", tags_column), ("lyrics", lyrics_column)):
        texts[key] = ds.data.column(name).to_pylist() if name in ds.column_names else [None] * len(ds)
    width = max(8, len(str(len(ds))))
    items = []
    for row, path in enumerate(paths):
        own = posixpath.basename(path) if path else ""
        rel = f"{ref.split}/{row:0{width}d}" + (f"_{own}" if own else "")
        items.append(
            InputFile(None, rel, _text(texts["tags"][row]), _text(texts["lyrics"][row]), HFRowSource(ref, row, own))
        )
    return items


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):  # tags given as a list
        value = ",".join(str(v) for v in value)
    return str(value).strip() or None


# -- one item, wherever it is ------------------------------------------------------------------------------
def item_location(item: InputFile) -> str:
    return item.source.uri if item.source is not None else str(item.path)


def item_stat(item: InputFile) -> dict:
    """``{"path", "size", "mtime_ns"}`` of a local file, ``{"path", "size", "version"}`` of a remote one."""
    if item.source is not None:
        return item.source.stat()
    st = os.stat(item.path)
    return {"path": str(item.path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def item_sha256(item: InputFile) -> str:
    return item.source.sha256() if item.source is not None else file_sha256(item.path)


@contextmanager
def local_audio(item: InputFile) -> Iterator[Path]:
    """The item as a local file for the decoders: the file itself, or a temporary copy of remote audio."""
    if item.source is None:
        yield item.path
    else:
        with item.source.local_file() as path:
            yield path
