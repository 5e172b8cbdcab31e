"""One shard of the bulk tokenizer: plan (skip what is done), tokenize, write, journal, summarize."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from heartcodec_lab.audio import audio_info
from heartcodec_lab.encoders.base import AudioEncoder
from heartcodec_lab.encoders.fingerprint import encoder_fingerprint, rvq_fingerprint
from heartcodec_lab.provenance import Component, Provenance, check_components, encoder_component
from heartcodec_lab.tokenize.consistency import check_resume
from heartcodec_lab.tokenize.inputs import InputFile, collect_inputs, select_shard
from heartcodec_lab.tokenize.layout import (AUDIO_DIR, PARTS_DIR, Ledger, atomic_write_text, latest_by_file,
                                            read_all_ledgers, save_tokens, shard_tag, tokens_to_file_array)
from heartcodec_lab.tokenize.pipeline import FileResult, tokenize_stream
from heartcodec_lab.tokenize.progress import TokenizeProgress
from heartcodec_lab.tokenize.records import (Naming, failure_entry, is_done, make_record, ok_entry, source_stat,
                                             text_fields)


@dataclass
class ShardSummary:
    """Counts of one run of one shard (``seconds`` = audio seconds tokenized now, ``wall_s`` = time taken)."""

    shard: str
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    default_tags: int = 0
    frames: int = 0
    seconds: float = 0.0
    wall_s: float = 0.0
    failures: list = field(default_factory=list)

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def x_realtime(self) -> float:
        return self.seconds / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict:
        return {"shard": self.shard, "ok": self.ok, "skipped": self.skipped, "failed": self.failed,
                "default_tags": self.default_tags, "frames": self.frames, "hours": round(self.hours, 6),
                "wall_s": round(self.wall_s, 3), "x_realtime": round(self.x_realtime, 3)}


def ensure_audio_link(out: Path, naming: Naming, root: Path, item: InputFile | None) -> None:
    """Make the audio reachable from the dataset root: ``OUT/audio -> input folder`` (folder input)
    or one link per file under ``OUT/audio`` (manifest input, ``item`` given)."""
    if not naming.prefix and item is None:
        return
    link = out / naming.file_name(item) if item is not None else out / AUDIO_DIR
    target = item.path if item is not None else root
    if link.exists() or link.is_symlink():
        if link.resolve() != target.resolve():
            raise FileExistsError(f"{link} exists and does not point to {target}; remove it or choose another output_dir")
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(target, link, target_is_directory=target.is_dir())
    except FileExistsError:  # another shard made it at the same moment
        if link.resolve() != target.resolve():
            raise


def job_provenance(cfg) -> Provenance:
    """The codec and the encoder must both be checkpoints or both embedded (unless ``allow_embedded``)."""
    encoder = cfg.get("encoder") or {}
    components = [Component("codec", "codec.path", (cfg.get("codec") or {}).get("path")),
                  encoder_component("encoder", "encoder.path", encoder.get("kind"), encoder.get("path"))]
    return check_components(components, bool(cfg.get("allow_embedded", False)))


def run_shard(cfg, encoder: AudioEncoder, shard: int, num_shards: int, device="cpu", console=None) -> ShardSummary:
    """Tokenize shard ``shard`` of ``num_shards`` of the configured input into ``cfg.output_dir``.

    ``cfg`` needs: input_dir / input_manifest, output_dir, extensions, default_tags, instrumental_lyrics,
    pad_eight_frames, link_audio, num_workers, batch_chunks (None: the encoder's), block_seconds, progress;
    optional: codec.path / encoder.path / allow_embedded (provenance), reencode (replace another encoder's tokens).
    """
    t0 = time.perf_counter()
    provenance = job_provenance(cfg)
    out = Path(cfg.output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    tag = shard_tag(shard, num_shards)
    root, items = collect_inputs(cfg.get("input_dir"), cfg.get("input_manifest"), tuple(cfg.extensions), exclude=out)
    mine = select_shard(items, shard, num_shards)
    naming = Naming(out, root)
    manifest_mode = bool(cfg.get("input_manifest"))
    if cfg.link_audio and not manifest_mode:
        ensure_audio_link(out, naming, root, None)

    description = encoder.describe()
    fingerprint = encoder_fingerprint(encoder)
    rvq = rvq_fingerprint(encoder.quantizer)
    check_resume(out, fingerprint, rvq, reencode=bool(cfg.get("reencode", False)))
    part = out / PARTS_DIR / tag
    part.mkdir(parents=True, exist_ok=True)
    run_info = {"shard": tag, "encoder": description, "encoder_fingerprint": fingerprint, "rvq_fingerprint": rvq,
                "provenance": provenance.as_dict(), "input_root": str(root), "config": _job_config(cfg)}
    atomic_write_text(part / "run.json", json.dumps(run_info, indent=2, sort_keys=True, default=str) + "\n")

    # -- plan: what is done already (by any shard), what only needs its text refreshed, what to do
    summary = ShardSummary(tag)
    embedded = ",".join(provenance.embedded)
    latest = latest_by_file(read_all_ledgers(out))
    todo: list[InputFile] = []
    refresh: list[tuple[dict, dict]] = []
    for item in mine:
        entry = latest.get(naming.file_name(item))
        if is_done(entry, item, out, fingerprint):
            rec = dict(entry["record"])
            text = text_fields(item, cfg.default_tags, cfg.instrumental_lyrics)
            summary.skipped += 1
            summary.default_tags += int(text["default_tags"])
            current = {**text, "embedded": embedded}
            if any(k not in rec or rec[k] != v for k, v in current.items()):
                rec.update(current)
                refresh.append((rec, entry["source"]))
        else:
            todo.append(item)
    redo = {naming.file_name(it) for it in todo} | {r["file_name"] for r, _ in refresh}
    ledger = Ledger(part / "ledger.jsonl")
    ledger.rewrite_keeping(lambda e: e["file_name"] not in redo)
    for rec, src in refresh:
        ledger.append(ok_entry(rec, src))

    batch_chunks = int(cfg.get("batch_chunks") or getattr(encoder, "batch_chunks", 1) or 1)
    progress = TokenizeProgress(enabled=bool(cfg.get("progress", True)), console=console)
    progress.start(len(todo), sum(_header_seconds(it.path) for it in todo))
    try:
        for res in tokenize_stream(encoder, todo, batch_chunks=batch_chunks, num_workers=int(cfg.num_workers),
                                   device=device, block_seconds=float(cfg.block_seconds)):
            seconds = _write_result(res, out, naming, ledger, cfg, fingerprint, summary, manifest_mode, tag, embedded)
            progress.file_done(seconds, ok=res.ok)
    finally:
        progress.stop()
        ledger.close()
    summary.wall_s = time.perf_counter() - t0
    atomic_write_text(part / "summary.json", json.dumps(summary.as_dict(), indent=2) + "\n")
    return summary


def _write_result(res: FileResult, out: Path, naming: Naming, ledger: Ledger, cfg, fingerprint: str,
                  summary: ShardSummary, manifest_mode: bool, tag: str, embedded: str = "") -> float:
    """Write one file's token file (atomically), then its ledger line; return its audio seconds."""
    name = naming.file_name(res.item)
    if res.ok:
        try:
            arr, pad = tokens_to_file_array(res.tokens.numpy(), pad_eight=bool(cfg.pad_eight_frames))
            save_tokens(out / naming.tokens_path(res.item), arr, tag)
            if cfg.link_audio and manifest_mode:
                ensure_audio_link(out, naming, Path("/"), res.item)
            text = text_fields(res.item, cfg.default_tags, cfg.instrumental_lyrics)
            info = res.info
            record = make_record(naming, res.item, text, frames=int(arr.shape[1]), pad_frames=pad,
                                 sample_rate=info.sample_rate, channels=info.channels,
                                 num_samples=info.num_samples, encoder=fingerprint, sha256=res.sha256,
                                 embedded=embedded)
            ledger.append(ok_entry(record, source_stat(res.item.path)))
        except Exception as err:  # disk full, permissions, bad codes ...
            res = FileResult(res.index, res.item, info=res.info, stage="write", error=f"{type(err).__name__}: {err}")
        else:
            summary.ok += 1
            summary.default_tags += int(text["default_tags"])
            summary.frames += int(arr.shape[1])
            seconds = info.num_samples / info.sample_rate
            summary.seconds += seconds
            return seconds
    stale = out / naming.tokens_path(res.item)
    if stale.is_file():  # an older token file of this audio must not outlive its failure
        stale.unlink()
    ledger.append(failure_entry(name, res.stage, res.error))
    summary.failed += 1
    summary.failures.append({"file_name": name, "stage": res.stage, "error": res.error})
    return 0.0


def _header_seconds(path: Path) -> float:
    try:
        sr, _, frames = audio_info(path)
        return frames / sr if sr > 0 and frames > 0 else 0.0
    except Exception:
        return 0.0


def _job_config(cfg) -> dict:
    """The settings that shape the dataset (not paths or machine settings), for dataset_info.json."""
    keys = ("extensions", "default_tags", "instrumental_lyrics", "pad_eight_frames", "link_audio")
    return {k: (list(cfg[k]) if k == "extensions" else cfg[k]) for k in keys}
