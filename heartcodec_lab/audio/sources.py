"""Audio that is not a local file: fsspec URLs (``s3://``, ``gs://``, ``hf://datasets/...``, ``memory://``)
and rows of a Hugging Face dataset with an audio column.

Every source is opened the same way: :meth:`AudioSource.local_file` copies the bytes to a temporary local
file in 1 MiB blocks (memory stays bounded, and every decoder the toolkit has, libsndfile and ffmpeg,
reads it) and removes it afterwards. :meth:`AudioSource.stat` gives the size and a version stamp
(modification time, ETag, generation: whatever the store reports) so a rerun can tell unchanged audio
without reading it; :meth:`AudioSource.sha256` hashes the content.

fsspec and ``datasets`` are imported only when such a source is used.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from heartcodec_lab.audio.io import AUDIO_EXTENSIONS, AudioError

BLOCK_BYTES = 1 << 20
#: keys of fsspec's ``info()`` that change when an object's content changes, in order of preference
VERSION_KEYS = (
    "mtime",
    "LastModified",
    "last_modified",
    "updated",
    "generation",
    "ETag",
    "etag",
    "md5Hash",
    "created",
    "last_commit",
)
MAGIC = (
    (b"RIFF", ".wav"),
    (b"fLaC", ".flac"),
    (b"OggS", ".ogg"),
    (b"ID3", ".mp3"),
    (b"\xff\xfb", ".mp3"),
    (b"\xff\xf3", ".mp3"),
    (b"\xff\xf2", ".mp3"),
    (b"FORM", ".aiff"),
)


def is_url(value: str) -> bool:
    """True for ``scheme://...`` (any fsspec protocol, ``file://`` included)."""
    scheme, sep, _ = str(value).partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").isalnum() and len(scheme) > 1


def guess_suffix(head: bytes) -> str:
    """An audio file suffix from the first bytes (``.wav``, ``.flac`` ...), ``""`` when unknown."""
    for magic, suffix in MAGIC:
        if head.startswith(magic):
            return suffix
    if head[4:8] == b"ftyp":
        return ".m4a"
    return ""


class AudioSource:
    """One audio file somewhere else. ``uri`` names it (for messages and the dataset's records)."""

    uri: str = ""
    name: str = ""  # the file's own name (its suffix tells the container)

    def open(self) -> BinaryIO:
        raise NotImplementedError

    def stat(self) -> dict:
        """``{"path": uri, "size": bytes, "version": str | None}``."""
        raise NotImplementedError

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.open() as f:
            while block := f.read(BLOCK_BYTES):
                digest.update(block)
        return digest.hexdigest()

    @contextmanager
    def local_file(self) -> Iterator[Path]:
        """A temporary local copy (suffix kept, or guessed from the content), removed afterwards."""
        tmp = tempfile.mkdtemp(prefix="heartcodec-src-")
        try:
            try:
                src = self.open()
            except FileNotFoundError as err:
                raise AudioError(self.uri, "file not found") from err
            except OSError as err:
                raise AudioError(self.uri, f"cannot open ({err})") from err
            with src:
                head = src.read(BLOCK_BYTES)
                suffix = PurePosixPath(self.name).suffix.lower()
                if suffix not in AUDIO_EXTENSIONS:
                    suffix = guess_suffix(head) or suffix
                path = Path(tmp) / f"audio{suffix}"
                with open(path, "wb") as dst:
                    dst.write(head)
                    shutil.copyfileobj(src, dst, BLOCK_BYTES)
            yield path
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def url_to_fs(url: str, storage_options: dict | None = None):
    """(fsspec filesystem, path inside it) for ``url`` (fsspec keeps one filesystem instance per settings)."""
    import fsspec

    return fsspec.core.url_to_fs(url, **(storage_options or {}))


def version_of(info: dict) -> str | None:
    for key in VERSION_KEYS:
        if info.get(key) is not None:
            return f"{key}={info[key]}"
    return None


@dataclass(frozen=True)
class UrlSource(AudioSource):
    """A file at an fsspec URL."""

    uri: str
    storage_options: tuple = ()  # sorted (key, value) pairs, so the source stays hashable and picklable

    @property
    def name(self) -> str:
        return PurePosixPath(self.uri.split("://", 1)[-1]).name

    def _fs(self):
        return url_to_fs(self.uri, dict(self.storage_options))

    def open(self) -> BinaryIO:
        fs, path = self._fs()
        return fs.open(path, "rb")

    def stat(self) -> dict:
        fs, path = self._fs()
        info = fs.info(path)
        return {"path": self.uri, "size": int(info.get("size") or 0), "version": version_of(info)}


# -- Hugging Face datasets -------------------------------------------------------------------------------
@dataclass(frozen=True)
class HFDatasetRef:
    """Where a dataset is: a Hub repo id or a local folder (``save_to_disk``, Parquet, audiofolder), a split."""

    spec: str
    split: str = "train"
    audio_column: str = "audio"


def is_saved_dataset(folder: Path) -> bool:
    """A folder written by ``datasets``' ``save_to_disk`` (one dataset or a dict of splits)."""
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


@functools.lru_cache(maxsize=4)
def open_hf_dataset(ref: HFDatasetRef):
    """The split as a ``datasets.Dataset`` whose audio column is left undecoded (``{"bytes", "path"}``)."""
    import datasets

    local = Path(ref.spec).expanduser()
    if local.is_dir() and is_saved_dataset(local):
        ds = datasets.load_from_disk(str(local))
        if isinstance(ds, datasets.DatasetDict):
            if ref.split not in ds:
                raise ValueError(f"{ref.spec}: no split {ref.split!r} (has {sorted(ds)})")
            ds = ds[ref.split]
    else:
        ds = datasets.load_dataset(str(local) if local.is_dir() else ref.spec, split=ref.split)
    if ref.audio_column not in ds.column_names:
        raise ValueError(
            f"{ref.spec}: no audio column {ref.audio_column!r} (columns: {ds.column_names}); set audio_column="
        )
    if isinstance(ds.features[ref.audio_column], datasets.Audio):
        ds = ds.cast_column(ref.audio_column, datasets.Audio(decode=False))
    if getattr(ds, "_indices", None) is not None:
        ds = ds.flatten_indices()
    return ds


@dataclass(frozen=True)
class HFRowSource(AudioSource):
    """The audio of row ``row`` of a dataset: its bytes, or the file its ``path`` names when it has none."""

    ref: HFDatasetRef
    row: int
    name: str = ""

    @property
    def uri(self) -> str:
        return f"hf:{self.ref.spec}[{self.ref.split}][{self.row}]"

    def _value(self) -> tuple[bytes | None, str | None]:
        value = open_hf_dataset(self.ref)[self.row][self.ref.audio_column]
        if isinstance(value, (bytes, bytearray)):
            return bytes(value), None
        if isinstance(value, dict):
            return value.get("bytes"), value.get("path")
        if isinstance(value, str):
            return None, value
        raise AudioError(self.uri, f"audio column holds {type(value).__name__}, not bytes or a path")

    def open(self) -> BinaryIO:
        import io

        data, path = self._value()
        if data is not None:
            return io.BytesIO(data)
        if path is None:
            raise AudioError(self.uri, "the row has neither audio bytes nor a path")
        if is_url(path):
            return UrlSource(path).open()
        return open(path, "rb")

    def stat(self) -> dict:
        data, path = self._value()
        if data is not None:  # no modification time: a rerun compares size and then the content hash
            return {"path": self.uri, "size": len(data), "version": None}
        if is_url(path):
            return {**UrlSource(path).stat(), "path": self.uri}
        st = os.stat(path)
        return {"path": self.uri, "size": st.st_size, "version": f"mtime_ns={st.st_mtime_ns}"}
