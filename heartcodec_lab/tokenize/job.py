"""One shard of the bulk tokenizer: plan (skip what is done), tokenize, write, journal, summarize."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from heartcodec_lab.audio import audio_info
from heartcodec_lab.encoders.base import AudioEncoder
from heartcodec_lab.encoders.fingerprint import encoder_fingerprint, rvq_fingerprint
from heartcodec_lab.provenance import Provenance, check_components, codec_component, encoder_component
from heartcodec_lab.tokenize.consistency import check_resume
from heartcodec_lab.tokenize.inputs import InputFile, select_shard
from heartcodec_lab.tokenize.job_config import TokenizeJob
from heartcodec_lab.tokenize.layout import (
    AUDIO_DIR,
    PARTS_DIR,
    Ledger,
    atomic_write_text,
    latest_by_file,
    read_all_ledgers,
    save_tokens,
    shard_tag,
    tokens_to_file_array,
)
from heartcodec_lab.tokenize.pipeline import FileResult, tokenize_stream
from heartcodec_lab.tokenize.progress import TokenizeProgress
from heartcodec_lab.tokenize.records import Naming, failure_entry, is_done, make_record, ok_entry, text_fields
from heartcodec_lab.tokenize.sources import item_stat, resolve_inputs


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
        return {
            "shard": self.shard,
            "ok": self.ok,
            "skipped": self.skipped,
            "failed": self.failed,
            "default_tags": self.default_tags,
            "frames": self.frames,
            "hours": round(self.hours, 6),
            "wall_s": round(self.wall_s, 3),
            "x_realtime": round(self.x_realtime, 3),
        }


def ensure_audio_link(out: Path, naming: Naming, root: Path, item: InputFile | None) -> None:
    """Make the audio reachable from the dataset root: ``OUT/audio -> input folder`` (folder input)
    or one link per file under ``OUT/audio`` (manifest input, ``item`` given)."""
    if not naming.prefix and item is None:
        return
    link = out / naming.file_name(item) if item is not None else out / AUDIO_DIR
    target = item.path if item is not None else root
    if link.exists() or link.is_symlink():
        if link.resolve() != target.resolve():
            raise FileExistsError(
                f"{link} exists and does not point to {target}; remove it or choose another output_dir"
            )
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(target, link, target_is_directory=target.is_dir())
    except FileExistsError:  # another shard made it at the same moment
        if link.resolve() != target.resolve():
            raise


def job_provenance(job) -> Provenance:
    """The codec and the encoder must both be checkpoints or both embedded (unless ``allow_embedded``).

    ``job``: a :class:`TokenizeJob` or the tokenize config.
    """
    job = job if isinstance(job, TokenizeJob) else TokenizeJob.from_config(job)
    components = [
        codec_component(job.codec_path),
        encoder_component("encoder", "encoder.path", job.encoder_kind, job.encoder_path),
    ]
    return check_components(components, job.allow_embedded)


def run_shard(
    job: TokenizeJob | Mapping,
    encoder: AudioEncoder,
    shard: int,
    num_shards: int,
    device="cpu",
    console=None,
    stream=None,
) -> ShardSummary:
    """Tokenize shard ``shard`` of ``num_shards`` of the job's input into ``job.output_dir``.

    ``job``: a :class:`TokenizeJob` (or the tokenize config it is built from). Steps: :func:`prepare_output`
    (provenance, inputs, this shard's files, the audio link, resume consistency, ``run.json``), :func:`plan`
    (skip what any shard finished, refresh changed text), :func:`tokenize_files` (encode, write, journal).
    ``stream``: what turns the files to do into :class:`FileResult` s, with :func:`tokenize_stream`'s
    signature (default: that one, in this process; ``backend=ray`` passes :class:`.ray_backend.RayStream`).
    """
    t0 = time.perf_counter()
    job = job if isinstance(job, TokenizeJob) else TokenizeJob.from_config(job)
    shard_out = prepare_output(job, encoder, shard, num_shards)
    summary = ShardSummary(shard_out.tag)
    ledger = Ledger(shard_out.part / "ledger.jsonl")
    try:
        todo = plan(job, shard_out, ledger, summary)
        tokenize_files(job, shard_out, todo, encoder, ledger, summary, device, console, stream)
    finally:
        ledger.close()
    summary.wall_s = time.perf_counter() - t0
    atomic_write_text(shard_out.part / "summary.json", json.dumps(summary.as_dict(), indent=2) + "\n")
    return summary


@dataclass
class ShardOutput:
    """Where one shard writes, how it names files, and what identifies its tokens."""

    out: Path
    tag: str
    part: Path
    naming: Naming
    files: list[InputFile]
    fingerprint: str
    embedded: str  # the embedded parts, comma-separated ("" for a fully real run)


def prepare_output(job: TokenizeJob, encoder: AudioEncoder, shard: int, num_shards: int) -> ShardOutput:
    """Step 1: check provenance, collect the inputs, take this shard's share, link the audio, refuse to
    resume over another encoder's tokens, record the run in ``run.json``."""
    provenance = job_provenance(job)
    out = job.output_dir.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    tag = shard_tag(shard, num_shards)
    root, label, items = resolve_inputs(job, exclude=out)  # root None: remote input (URL, dataset)
    naming = Naming(out, root)
    if job.link_audio and not job.manifest_mode and root is not None:
        ensure_audio_link(out, naming, root, None)
    description = encoder.describe()
    fingerprint = encoder_fingerprint(encoder)
    rvq = rvq_fingerprint(encoder.quantizer)
    check_resume(out, fingerprint, rvq, reencode=job.reencode)
    part = out / PARTS_DIR / tag
    part.mkdir(parents=True, exist_ok=True)
    run_info = {
        "shard": tag,
        "encoder": description,
        "encoder_fingerprint": fingerprint,
        "rvq_fingerprint": rvq,
        "provenance": provenance.as_dict(),
        "input_root": label,
        "config": job.dataset_settings(),
    }
    atomic_write_text(part / "run.json", json.dumps(run_info, indent=2, sort_keys=True, default=str) + "\n")
    return ShardOutput(
        out, tag, part, naming, select_shard(items, shard, num_shards), fingerprint, ",".join(provenance.embedded)
    )


def plan(job: TokenizeJob, shard_out: ShardOutput, ledger: Ledger, summary: ShardSummary) -> list[InputFile]:
    """Step 2: the files still to tokenize. Files any shard finished with this encoder are skipped (their
    metadata text refreshed when the sidecars changed); the ledger keeps only lines of files not redone."""
    out, naming = shard_out.out, shard_out.naming
    latest = latest_by_file(read_all_ledgers(out))
    todo: list[InputFile] = []
    refresh: list[tuple[dict, dict]] = []
    for item in shard_out.files:
        entry = latest.get(naming.file_name(item))
        if is_done(entry, item, out, shard_out.fingerprint):
            rec = dict(entry["record"])
            text = text_fields(item, job.default_tags, job.instrumental_lyrics)
            summary.skipped += 1
            summary.default_tags += int(text["default_tags"])
            current = {**text, "embedded": shard_out.embedded}
            if any(k not in rec or rec[k] != v for k, v in current.items()):
                rec.update(current)
                refresh.append((rec, entry["source"]))
        else:
            todo.append(item)
    redo = {naming.file_name(it) for it in todo} | {r["file_name"] for r, _ in refresh}
    ledger.rewrite_keeping(lambda e: e["file_name"] not in redo)
    for rec, src in refresh:
        ledger.append(ok_entry(rec, src))
    return todo


def tokenize_files(
    job: TokenizeJob,
    shard_out: ShardOutput,
    todo: list[InputFile],
    encoder: AudioEncoder,
    ledger: Ledger,
    summary: ShardSummary,
    device,
    console,
    stream=None,
) -> None:
    """Step 3: stream ``todo`` through the encoder; write each file's tokens and journal line as it finishes."""
    batch_chunks = int(job.batch_chunks or getattr(encoder, "batch_chunks", 1) or 1)
    progress = TokenizeProgress(enabled=job.progress, console=console)
    progress.start(len(todo), sum(_header_seconds(it.path) for it in todo if it.path is not None))
    try:
        for res in (stream or tokenize_stream)(
            encoder,
            todo,
            batch_chunks=batch_chunks,
            num_workers=job.num_workers,
            device=device,
            block_seconds=job.block_seconds,
        ):
            seconds = _write_result(res, shard_out, ledger, job, summary)
            progress.file_done(seconds, ok=res.ok)
    finally:
        progress.stop()


def _write_result(
    res: FileResult, shard_out: ShardOutput, ledger: Ledger, job: TokenizeJob, summary: ShardSummary
) -> float:
    """Write one file's token file (atomically), then its ledger line; return its audio seconds."""
    out, naming = shard_out.out, shard_out.naming
    name = naming.file_name(res.item)
    if res.ok:
        try:
            arr, pad = tokens_to_file_array(res.tokens.numpy(), pad_eight=job.pad_eight_frames)
            save_tokens(out / naming.tokens_path(res.item), arr, shard_out.tag)
            if job.link_audio and job.manifest_mode:
                ensure_audio_link(out, naming, Path("/"), res.item)
            text = text_fields(res.item, job.default_tags, job.instrumental_lyrics)
            info = res.info
            record = make_record(
                naming,
                res.item,
                text,
                frames=int(arr.shape[1]),
                pad_frames=pad,
                sample_rate=info.sample_rate,
                channels=info.channels,
                num_samples=info.num_samples,
                encoder=shard_out.fingerprint,
                sha256=res.sha256,
                embedded=shard_out.embedded,
            )
            ledger.append(ok_entry(record, item_stat(res.item)))
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
