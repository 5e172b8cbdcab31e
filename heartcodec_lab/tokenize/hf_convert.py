"""What ``heartcodec-tokenize-convert input=DATASET output=DIR layout=hf|simpletuner`` does
(heartcodec_lab/cli/tokenize_convert.py): a tokenized dataset from one layout into the other, without loss.

- ``layout=hf``: a SimpleTuner-layout dataset (``tokens/*.npy`` + ``metadata.jsonl``) -> Parquet shards + card
  (:mod:`.hf_layout`); ``failures.jsonl`` and ``dataset_info.json`` are copied byte for byte.
- ``layout=simpletuner``: back: every token file, ``metadata.jsonl`` (same bytes as the original),
  ``failures.jsonl``, ``dataset_info.json``, ``multidatabackend.json`` for the new folder, and the ``audio``
  link (to ``audio_root=`` or the input folder recorded in ``dataset_info.json``, when it exists).

"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from heartcodec_lab.tokenize import hf_layout
from heartcodec_lab.tokenize.layout import AUDIO_DIR, atomic_write_text, save_tokens, write_jsonl

COPIED = ("failures.jsonl", "dataset_info.json")


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_target(src: Path, dst: Path) -> None:
    if dst.resolve() == src.resolve():
        raise ValueError(f"{dst}: output must be another folder than the input")
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"{dst}: output folder is not empty")


def to_hf(src: str | Path, dst: str | Path, shard_rows: int = hf_layout.SHARD_ROWS) -> int:
    """SimpleTuner layout at ``src`` -> layout=hf at ``dst``; returns the number of rows."""
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    if not (src / "metadata.jsonl").is_file():
        raise FileNotFoundError(f"{src}: no metadata.jsonl, so not a SimpleTuner-layout tokenized dataset")
    _check_target(src, dst)
    dst.mkdir(parents=True, exist_ok=True)
    records = _read_jsonl(src / "metadata.jsonl")
    arrays = []
    for r in records:
        path = src / r["audio_tokens_path"]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: token file of {r['file_name']} missing")
        arrays.append(np.load(path, allow_pickle=False))
    info = json.loads((src / "dataset_info.json").read_text()) if (src / "dataset_info.json").is_file() else {}
    backend_id = "heartmula-tokens"
    if (src / "multidatabackend.json").is_file():
        backend_id = json.loads((src / "multidatabackend.json").read_text())[0].get("id", backend_id)
    sources = [
        str((src / r["file_name"]).resolve()) if (src / r["file_name"]).exists() else r["file_name"] for r in records
    ]
    hf_layout.write_parquet(dst, records, arrays, sources, shard_rows)
    hf_layout.write_card(dst, info, len(records), backend_id)
    for name in COPIED:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    return len(records)


def to_simpletuner(src: str | Path, dst: str | Path, audio_root: str | Path | None = None) -> int:
    """layout=hf at ``src`` -> SimpleTuner layout at ``dst``; returns the number of rows."""
    from heartcodec_lab.tokenize.simpletuner import multidatabackend

    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    records, arrays, sources = hf_layout.read_rows(src)
    _check_target(src, dst)
    dst.mkdir(parents=True, exist_ok=True)
    for r, arr in zip(records, arrays):
        save_tokens(dst / r["audio_tokens_path"], arr)
    write_jsonl(dst / "metadata.jsonl", records)
    for name in COPIED:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    card = hf_layout.read_card_yaml(src).get("heartcodec") or {}
    backend = multidatabackend(dst, backend_id=card.get("simpletuner_backend_id", "heartmula-tokens"))
    atomic_write_text(dst / "multidatabackend.json", json.dumps(backend, indent=2) + "\n")
    _link_audio(dst, records, sources, src, audio_root)
    return len(records)


def _link_audio(dst: Path, records: list[dict], sources: list[str], src: Path, audio_root) -> None:
    """``dst/audio -> the input folder`` when the rows' audio lies under one; else one link per file found."""
    info = json.loads((src / "dataset_info.json").read_text()) if (src / "dataset_info.json").is_file() else {}
    root = Path(audio_root or info.get("input_root") or "").expanduser()
    prefix = f"{AUDIO_DIR}/"
    if not records or not all(r["file_name"].startswith(prefix) for r in records):
        return
    if str(root) not in ("", ".") and root.is_dir():
        os.symlink(root, dst / AUDIO_DIR, target_is_directory=True)
        return
    for r, source in zip(records, sources):
        target = Path(source)
        if target.is_absolute() and target.exists():
            link = dst / r["file_name"]
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, link)


def convert(
    input: str, output: str, layout: str, audio_root: str | None = None, shard_rows: int = hf_layout.SHARD_ROWS
) -> int:
    if layout == "hf":
        return to_hf(input, output, shard_rows)
    if layout == "simpletuner":
        return to_simpletuner(input, output, audio_root)
    raise ValueError(f"layout={layout}: use hf or simpletuner")
