"""``layout=hf``: a tokenized dataset as Parquet shards + a dataset card that ``datasets`` reads.

```
OUT/
  README.md                          dataset card: YAML with the features, the split and the data files
  data/train-00000-of-0000N.parquet  one row per tokenized file (sorted by file_name), FEATURES below
  failures.jsonl  dataset_info.json  as in the SimpleTuner layout
  tokens/ .parts/                    the job's working state (what resuming reads), as in the SimpleTuner layout
```

``datasets.load_dataset(OUT)`` and ``datasets.load_dataset("parquet", data_dir=OUT)`` read it; the card's
``tokens`` feature is ``List(List(int16), length=8)``, i.e. ``[8, T]`` per row. Every column of
``metadata.jsonl`` is a column here (same names and values), plus ``tokens`` and ``source_path`` (where
the audio was read: a path or URL), so :mod:`.hf_convert` turns a SimpleTuner-layout dataset into this
layout and back byte for byte.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

DATA_DIR = "data"
CARD = "README.md"
SPLIT = "train"
SHARD_ROWS = 10000  # about 0.4 GB of tokens for 3-minute songs
EXTRA_COLUMNS = ("tokens", "source_path")


def features():
    """The dataset's ``datasets.Features`` (metadata.jsonl's columns, ``tokens`` int16 ``[8, T]``, ``source_path``)."""
    from datasets import Features, List, Value

    s, i, f, b = Value("string"), Value("int64"), Value("float64"), Value("bool")
    return Features(
        {
            "file_name": s,
            "audio_tokens_path": s,
            "tokens": List(List(Value("int16")), length=8),
            "tags": s,
            "tags_raw": s,
            "lyrics": s,
            "duration_s": f,
            "frames": i,
            "sample_rate": i,
            "channels": i,
            "num_samples": i,
            "pad_frames": i,
            "encoder": s,
            "embedded": s,
            "audio_sha256": s,
            "default_tags": b,
            "instrumental": b,
            "source_path": s,
        }
    )


def shard_name(index: int, count: int) -> str:
    return f"{DATA_DIR}/{SPLIT}-{index:05d}-of-{count:05d}.parquet"


def tokens_array(arrays: list[np.ndarray]):
    """int16 ``[8, T_i]`` arrays -> an Arrow ``fixed_size_list<list<int16>>[8]`` column (no Python lists)."""
    import pyarrow as pa

    lengths = np.repeat([a.shape[1] for a in arrays], 8) if arrays else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = (
        np.concatenate([np.ascontiguousarray(a, np.int16).ravel() for a in arrays]) if arrays else np.zeros(0, np.int16)
    )
    rows = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.int16()))
    return pa.FixedSizeListArray.from_arrays(rows, 8)


def write_parquet(
    out: Path, records: list[dict], tokens: list[np.ndarray], sources: list[str], shard_rows: int = SHARD_ROWS
) -> list[str]:
    """Write ``data/train-*.parquet`` (atomically, stale shards removed); return the shard names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    feats = features()
    schema = feats.arrow_schema
    known = set(feats) - set(EXTRA_COLUMNS)
    for r in records[:1]:
        if set(r) != known:
            raise ValueError(f"{out}: metadata columns {sorted(set(r) ^ known)} do not match the Parquet layout's")
    count = max(1, math.ceil(len(records) / shard_rows))
    names = [shard_name(k, count) for k in range(count)]
    (out / DATA_DIR).mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        part = slice(k * shard_rows, (k + 1) * shard_rows)
        rows, arrays = records[part], tokens[part]
        columns = []
        for field in schema:
            if field.name == "tokens":
                columns.append(tokens_array(arrays))
            elif field.name == "source_path":
                columns.append(pa.array(sources[part], field.type))
            else:
                columns.append(pa.array([r[field.name] for r in rows], field.type))
        table = pa.Table.from_arrays(columns, schema=schema)
        tmp = out / f"{name}.tmp-{os.getpid()}"
        pq.write_table(table, tmp)
        os.replace(tmp, out / name)
    for stale in (out / DATA_DIR).glob(f"{SPLIT}-*.parquet"):
        if f"{DATA_DIR}/{stale.name}" not in names:
            stale.unlink()
    return names


def write_card(out: Path, info: dict, num_rows: int, backend_id: str = "heartmula-tokens") -> None:
    """``README.md``: YAML (configs, features, split size, the SimpleTuner backend id for converting back) + text."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    from heartcodec_lab.tokenize.layout import atomic_write_text

    data = DatasetCardData(
        configs=[{"config_name": "default", "data_files": [{"split": SPLIT, "path": f"{DATA_DIR}/{SPLIT}-*.parquet"}]}],
        tags=["audio", "music", "heartmula", "heartcodec", "audio-tokens"],
        heartcodec={
            "format": "heartcodec-lab tokenized dataset",
            "layout": "hf",
            "simpletuner_backend_id": backend_id,
            "encoder_fingerprint": info.get("encoder_fingerprint"),
        },
    )
    splits = SplitDict()
    splits.add(SplitInfo(name=SPLIT, num_examples=num_rows))
    DatasetInfosDict({"default": DatasetInfo(features=features(), splits=splits)}).to_dataset_card_data(data)
    encoder = info.get("encoder") or {}
    c = info.get("counts", {})
    body = f"""
# HeartMuLa tokens

Audio tokenized with `heartcodec-tokenize` (heartcodec_lab {info.get("toolkit", {}).get("version", "")}):
{c.get("files", num_rows)} files, {info.get("hours", 0):.3f} hours, {info.get("frames", 0)} token frames,
{c.get("failed", 0)} files failed (`failures.jsonl`).

- `tokens`: int16 `[8, T]`, codes 0..8191, 12.5 frames per second (an 8-frame clip has its last frame
  repeated once, `pad_frames = 1`).
- encoder: `{encoder.get("encoder", "?") if isinstance(encoder, dict) else encoder}`, fingerprint
  `{info.get("encoder_fingerprint")}` (the `encoder` column; built-in parts in `embedded` and in
  `dataset_info.json`'s `provenance`).
- `tags` (lower case, comma-separated), `lyrics`, `duration_s`, `source_path` and `audio_sha256` of the audio.

```python
from datasets import load_dataset
ds = load_dataset("path/to/this/folder", split="train")   # or load_dataset("parquet", data_dir=...)
```

`heartcodec-tokenize-convert input=THIS output=DIR layout=simpletuner` writes the
SimpleTuner layout (`tokens/*.npy`, `metadata.jsonl`, `multidatabackend.json`) back.
"""
    atomic_write_text(out / CARD, f"---\n{data.to_yaml()}\n---\n{body}")


def read_card_yaml(folder: Path) -> dict:
    from huggingface_hub import DatasetCard

    return DatasetCard.load(folder / CARD).data.to_dict()


def write_from_ledger(out: Path, records: list[dict], sources: dict[str, str], info: dict, backend_id: str) -> None:
    """finalize's ``layout=hf`` step: the records' token files into Parquet shards, then the card."""
    arrays = [np.load(out / r["audio_tokens_path"]) for r in records]
    write_parquet(out, records, arrays, [sources.get(r["file_name"], "") for r in records])
    write_card(out, info, len(records), backend_id)


def read_rows(folder: Path) -> tuple[list[dict], list[np.ndarray], list[str]]:
    """(records as in metadata.jsonl, token arrays int16 ``[8, T]``, source paths) from the Parquet shards."""
    import pyarrow.parquet as pq

    records, arrays, sources = [], [], []
    shards = sorted((folder / DATA_DIR).glob(f"{SPLIT}-*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{folder}: no {DATA_DIR}/{SPLIT}-*.parquet shards, so not a layout=hf dataset")
    for shard in shards:
        table = pq.read_table(shard)
        tokens = table.column("tokens").combine_chunks()
        inner = tokens.flatten()
        values = inner.flatten().to_numpy(zero_copy_only=False)
        offsets = inner.offsets.to_numpy()
        offsets = offsets - offsets[0]
        meta = table.drop_columns(list(EXTRA_COLUMNS)).to_pylist()
        for n, row in enumerate(meta):
            lo, hi = offsets[8 * n], offsets[8 * n + 8]
            arrays.append(values[lo:hi].astype(np.int16).reshape(8, -1))
            records.append(row)
        sources.extend(table.column("source_path").to_pylist())
    return records, arrays, sources
