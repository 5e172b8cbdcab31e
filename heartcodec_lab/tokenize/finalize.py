"""Turn the shards' ledgers into the dataset files: metadata.jsonl, failures.jsonl, dataset_info.json,
multidatabackend.json. Deterministic: rows sorted by file name, nothing time- or machine-dependent."""

from __future__ import annotations

import json
from pathlib import Path

from heartcodec_lab import __version__
from heartcodec_lab.tokenize.consistency import check_single_encoder
from heartcodec_lab.tokenize.layout import (
    PARTS_DIR,
    TMP_MARK,
    TOKENS_DIR,
    atomic_write_text,
    latest_by_file,
    read_all_ledgers,
    write_jsonl,
)
from heartcodec_lab.tokenize.records import RECORD_FIELDS
from heartcodec_lab.tokenize.simpletuner import multidatabackend

FORMAT_VERSION = 1


def finalize(output_dir: str | Path, backend_id: str = "heartmula-tokens") -> dict:
    """Write the dataset files of ``output_dir`` from every shard's ledger; return dataset_info."""
    out = Path(output_dir).expanduser().resolve()
    if not (out / PARTS_DIR).is_dir():
        raise FileNotFoundError(f"{out}: no {PARTS_DIR}/ folder, so nothing was tokenized into it yet")
    latest = latest_by_file(read_all_ledgers(out))
    records, failures = [], []
    for name in sorted(latest):
        entry = latest[name]
        if entry["kind"] == "ok":
            if (out / entry["record"]["audio_tokens_path"]).is_file():
                records.append(entry["record"])
        else:
            failures.append(entry["failure"])
    runs = [json.loads(p.read_text()) for p in sorted((out / PARTS_DIR).glob("*/run.json"))]
    # refuses tokens of different encoders or RVQs, naming the ledgers and files of each
    fingerprint = check_single_encoder(out) or (runs[-1]["encoder_fingerprint"] if runs else None)
    run = next((r for r in runs if r["encoder_fingerprint"] == fingerprint), runs[-1] if runs else {})

    missing = [f for f in RECORD_FIELDS if records and f not in records[0]]
    if missing:
        raise ValueError(f"{out}: ledger records lack fields {missing}")
    layout = (run.get("config") or {}).get("layout", "simpletuner")
    if layout != "hf":
        write_jsonl(out / "metadata.jsonl", records)
    write_jsonl(out / "failures.jsonl", failures)
    info = {
        "format_version": FORMAT_VERSION,
        "toolkit": {"name": "heartcodec_lab", "version": __version__},
        "encoder_fingerprint": fingerprint,
        "encoder": run.get("encoder"),
        "rvq_fingerprint": run.get("rvq_fingerprint"),
        "provenance": run.get("provenance"),
        "config": run.get("config"),
        "input_root": run.get("input_root"),
        "token_format": {
            "dtype": "int16",
            "shape": "[8, T]",
            "codes": "0..8191",
            "frame_rate_hz": 12.5,
            "eight_frame_clips": "last frame repeated once (pad_frames = 1)",
        },
        "counts": {
            "files": len(records),
            "failed": len(failures),
            "default_tags": sum(bool(r.get("default_tags")) for r in records),
            "instrumental": sum(bool(r.get("instrumental")) for r in records),
            "padded": sum(int(r.get("pad_frames", 0) > 0) for r in records),
        },
        "hours": round(sum(r["duration_s"] for r in records) / 3600, 6),
        "frames": sum(r["frames"] for r in records),
        "shards": sorted(r["shard"] for r in runs),
    }
    atomic_write_text(out / "dataset_info.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    if layout == "hf":  # Parquet shards + dataset card instead of metadata.jsonl + multidatabackend.json
        from heartcodec_lab.tokenize.hf_layout import write_from_ledger

        sources = {name: (latest[name].get("source") or {}).get("path", "") for name in latest}
        write_from_ledger(out, records, sources, info, backend_id)
    else:
        backend = multidatabackend(out, backend_id=backend_id)
        atomic_write_text(out / "multidatabackend.json", json.dumps(backend, indent=2) + "\n")
    _remove_leftover_temporaries(out / TOKENS_DIR)
    return info


def _remove_leftover_temporaries(tokens: Path) -> None:
    # written by runs that were killed between writing and renaming; never part of the dataset
    if tokens.is_dir():
        for tmp in tokens.rglob(f"*{TMP_MARK}*"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
