"""One dataset, one encoder: the guards of resume and merge against tokens of different encoders or RVQs.

Every finished ledger entry carries the fingerprint of the encoder that made its tokens
(:func:`heartcodec_lab.encoders.fingerprint.encoder_fingerprint`, which covers the encoder's
weights and the codec RVQ it quantizes with); every shard's ``run.json`` also records the RVQ's
own fingerprint, so a refusal can say whether the encoder or the codebooks changed.
"""

from __future__ import annotations

import json
from pathlib import Path

from heartcodec_lab.provenance import ProvenanceError
from heartcodec_lab.tokenize.layout import PARTS_DIR, Ledger

_LISTED = 3


def tokens_by_encoder(out: Path) -> dict[str, dict[str, list[str]]]:
    """fingerprint -> {ledger file: [file_name, ...]} over the newest finished entry of every file."""
    latest: dict[str, tuple[Path, dict]] = {}
    for ledger in sorted((out / PARTS_DIR).glob("*/ledger.jsonl")):
        for entry in Ledger.read(ledger):
            name = entry["file_name"]
            if name not in latest or entry["seq"] > latest[name][1]["seq"]:
                latest[name] = (ledger, entry)
    groups: dict[str, dict[str, list[str]]] = {}
    for name, (ledger, entry) in sorted(latest.items()):
        if entry.get("kind") != "ok" or not (out / entry["record"]["audio_tokens_path"]).is_file():
            continue
        fingerprint = entry["record"].get("encoder")
        groups.setdefault(fingerprint, {}).setdefault(str(ledger), []).append(name)
    return groups


def _rvqs(out: Path) -> dict[str, set[str]]:
    """encoder fingerprint -> RVQ fingerprints recorded by the shards' run.json files."""
    found: dict[str, set[str]] = {}
    for run in sorted((out / PARTS_DIR).glob("*/run.json")):
        try:
            info = json.loads(run.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        found.setdefault(info.get("encoder_fingerprint"), set()).add(info.get("rvq_fingerprint"))
    return found


def describe_groups(groups: dict[str, dict[str, list[str]]]) -> str:
    """``enc@a: 2 file(s) (audio/x.wav, audio/y.wav) in <ledger>; enc@b: ...`` (one line)."""
    parts = []
    for fingerprint, by_ledger in sorted(groups.items(), key=lambda kv: str(kv[0])):
        for ledger, names in sorted(by_ledger.items()):
            shown = ", ".join(names[:_LISTED]) + (f", +{len(names) - _LISTED} more" if len(names) > _LISTED else "")
            parts.append(f"{fingerprint}: {len(names)} file(s) ({shown}) in {ledger}")
    return "; ".join(parts)


def _what_differs(out: Path, fingerprints: list[str], rvq: str | None = None) -> str:
    rvqs = _rvqs(out)
    seen = set().union(*(rvqs.get(f, set()) for f in fingerprints)) | ({rvq} if rvq else set())
    seen.discard(None)
    if len(seen) > 1:
        return f"the codec RVQ differs ({', '.join(sorted(seen))})"
    return "the encoder (weights or configuration) differs"


def check_resume(out: Path, fingerprint: str, rvq: str, reencode: bool) -> None:
    """Refuse to add tokens of ``fingerprint`` to a dataset holding another encoder's tokens (unless ``reencode``)."""
    groups = tokens_by_encoder(out)
    others = {f: g for f, g in groups.items() if f != fingerprint}
    if not others or reencode:
        return
    raise ProvenanceError(
        f"{out} holds tokens of another encoder than this run's {fingerprint} ({_what_differs(out, list(others), rvq)}): "
        f"{describe_groups(others)}; rerun with reencode=true to replace them, or choose a new output_dir"
    )


def check_single_encoder(out: Path) -> str | None:
    """The one fingerprint of a dataset's finished tokens (None if none); refuse a mix, naming the files."""
    groups = tokens_by_encoder(out)
    if len(groups) > 1:
        raise ProvenanceError(
            f"{out}: the shards hold tokens of different encoders ({_what_differs(out, list(groups))}): "
            f"{describe_groups(groups)}; rerun those shards with one encoder (reencode=true) or start a new output_dir"
        )
    return next(iter(groups), None)
