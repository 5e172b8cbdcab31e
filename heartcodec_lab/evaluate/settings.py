"""What an evaluation result depends on: provenance of its models, and the settings that key resume.

Every record of ``items.jsonl`` / ``dataset_items.jsonl`` carries ``settings``: one short digest per
group of things that shape it (encoder identity and weights with its RVQ, codec, decoder settings,
metric settings, crop, reference encoder, HeartMuLa). On resume a record counts as done only when
every digest equals the current one; otherwise ``changed_settings`` decides: ``recompute`` (drop the
stale records and compute them again) or ``refuse`` (stop with a message naming the file, the
records and the groups that changed). A record is never reused under other settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from heartcodec_lab.encoders.fingerprint import encoder_fingerprint, strip_locations
from heartcodec_lab.provenance import (
    MINIATURE,
    RANDOM,
    Component,
    Provenance,
    ProvenanceError,
    check_components,
    codec_component,
    encoder_component,
)

log = logging.getLogger(__name__)
CHANGED_SETTINGS = ("recompute", "refuse")


def digest(value) -> str:
    """12 hex of a JSON-able value (file locations left out)."""
    if isinstance(value, DictConfig):
        value = OmegaConf.to_container(value, resolve=True)
    blob = json.dumps(strip_locations(value), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def decoder_settings(detokenize) -> dict:
    """The detokenize settings that key records; ``compile: false`` is left out so records made
    before the option existed keep their key."""
    values = (
        OmegaConf.to_container(detokenize, resolve=True) if isinstance(detokenize, DictConfig) else dict(detokenize)
    )
    if not values.get("compile", False):
        values.pop("compile", None)
    return values


def evaluation_provenance(cfg: DictConfig, dataset_info: dict | None = None) -> Provenance:
    """Codec and encoders (audio mode), HeartMuLa (when on) and the dataset's own tokens (dataset mode)."""
    components = []
    mode = cfg.get("mode")
    if mode in ("encoders", "pairs"):
        components.append(codec_component(cfg.codec.get("path")))
        for i, spec in enumerate(cfg.encoders):
            components.append(
                encoder_component(f"encoder '{spec['name']}'", f"encoders.{i}.path", spec.get("kind"), spec.get("path"))
            )
    mula = cfg.get("mula") or {}
    if mula.get("enabled") or (mula.get("enabled") is None and mula.get("path")):
        components.append(Component("HeartMuLa", "mula.path", mula.get("path")))
    lyrics = cfg.get("lyrics") or {}
    if (mode in ("encoders", "pairs") and lyrics.get("enabled")) or mode == "adherence":
        components.append(Component("transcriber", "transcriber.path", (cfg.get("transcriber") or {}).get("path")))
    made_by = (dataset_info or {}).get("provenance")
    if mode == "usage" and made_by is not None:
        made = Provenance.from_dict(made_by)
        embedded = made.embedded
        components.append(
            Component(
                "dataset tokens",
                "input",
                None if embedded else cfg.input,
                fix=f"input=<a dataset tokenized from checkpoints> ({cfg.input} was made with embedded "
                f"{', '.join(embedded)})",
                model=MINIATURE if embedded and all(made.models.get(n) == MINIATURE for n in embedded) else RANDOM,
            )
        )
    return check_components(components, bool(cfg.get("allow_embedded", False)))


def audio_settings(cfg: DictConfig, ctx, spec: dict, reference_spec: dict | None) -> dict[str, str]:
    """The digests that key one encoder's records in audio mode."""
    encoder = ctx.encoder(spec)
    settings = {
        "encoder": digest([spec.get("kind"), encoder_fingerprint(encoder)]),
        "codec": digest(ctx.codec.describe() if hasattr(ctx.codec, "describe") else repr(type(ctx.codec))),
        "decoder": digest(decoder_settings(cfg.detokenize)),
        "metrics": digest(
            {
                "metrics": cfg.get("metrics"),
                "reconstruction": bool(cfg.reconstruction),
                "roundtrip": bool(cfg.roundtrip),
                "sample_rate": ctx.sample_rate,
                "music_metrics": cfg.get("music_metrics"),
                "lyrics": cfg.get("lyrics"),
                "codebook_depth": cfg.get("codebook_depth"),
                "transcriber": cfg.get("transcriber") if (cfg.get("lyrics") or {}).get("enabled") else None,
            }
        ),
        "crop": digest({"max_seconds": cfg.audio.get("max_seconds"), "min_seconds": cfg.audio.get("min_seconds")}),
        "reference": None,
        "mula": mula_settings(cfg, ctx),
    }
    if reference_spec is not None and reference_spec["name"] != spec["name"]:
        settings["reference"] = digest(encoder_fingerprint(ctx.encoder(reference_spec)))
    return settings


def mula_settings(cfg: DictConfig, ctx) -> str | None:
    """HeartMuLa identity and the fallback tags/lyrics, when likelihoods are computed."""
    if not ctx.mula_enabled:
        return None
    m, bundle = cfg.mula, ctx.mula
    describe = getattr(bundle, "describe", None)
    return digest(
        {
            "model": describe() if describe else repr(type(bundle)),
            "dtype": str(getattr(bundle, "dtype", None)),
            "tags": m.get("tags"),
            "lyrics": m.get("lyrics"),
        }
    )


def _changed(old: dict | None, new: dict) -> list[str]:
    if not isinstance(old, dict):
        return ["all (no settings recorded)"]
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def settle_stale(log_file, expected: dict[str, dict], group_field: str, mode: str) -> list[dict]:
    """Records of ``log_file`` whose ``settings`` differ from ``expected[record[group_field]]``.

    ``recompute``: drop them from the file (returned, so their outputs can be removed) and go on.
    ``refuse``: raise :class:`ProvenanceError` naming the file, the records and the changed groups.
    """
    if mode not in CHANGED_SETTINGS:
        raise ValueError(f"changed_settings must be one of {CHANGED_SETTINGS}, got {mode!r}")
    stale, changed = [], {}
    for record in log_file.records:
        want = expected.get(record.get(group_field))
        if want is None:
            continue
        groups = _changed(record.get("settings"), want)
        if groups:
            stale.append(record)
            changed.setdefault(record.get(group_field), set()).update(groups)
    if not stale:
        return []
    what = "; ".join(f"{name}: {', '.join(sorted(g))}" for name, g in sorted(changed.items(), key=str))
    if mode == "refuse":
        raise ProvenanceError(
            f"{log_file.path}: {len(stale)} record(s) were made with other settings ({what} changed); "
            "rerun with changed_settings=recompute to redo them, resume=false to start over, or another output"
        )
    log.warning("%s: recomputing %d record(s) made with other settings (%s changed)", log_file.path, len(stale), what)
    log_file.drop(stale)
    return stale


def check_dataset_encoders(dataset_dir: str | Path, rows: list[dict], info: dict) -> None:
    """Refuse a dataset whose rows were made by different encoders / RVQs, or disagree with dataset_info.json."""
    root = Path(dataset_dir)
    by_encoder: dict[str, list[str]] = {}
    for row in rows:
        by_encoder.setdefault(str(row.get("encoder")), []).append(str(row.get("file_name") or row["audio_tokens_path"]))
    by_encoder.pop("None", None)
    if len(by_encoder) > 1:
        listed = "; ".join(
            f"{fp}: {len(n)} file(s) ({', '.join(n[:3])}{', ...' if len(n) > 3 else ''})"
            for fp, n in sorted(by_encoder.items())
        )
        raise ProvenanceError(
            f"{root / 'metadata.jsonl'}: tokens of different encoders or codec RVQs in one "
            f"dataset ({listed}); evaluate each encoder's tokens as its own dataset"
        )
    recorded = info.get("encoder_fingerprint")
    if by_encoder and recorded and next(iter(by_encoder)) != recorded:
        raise ProvenanceError(
            f"{root / 'metadata.jsonl'} lists tokens of {next(iter(by_encoder))} but "
            f"{root / 'dataset_info.json'} names {recorded}; the two files come from different runs"
        )
