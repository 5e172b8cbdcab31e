"""One evaluation run: a tokenized dataset, encoders on audio, or both.

Output folder::

    items.jsonl          one record per (clip, encoder), appended as each finishes (resume skips those whose
                         ``settings`` digests still match, see :mod:`heartcodec_lab.evaluate.settings`)
    dataset_items.jsonl  one record per dataset token file (frames, NLL when HeartMuLa is on)
    failures.jsonl       clips that could not be read
    counts.npy           dataset code counts int64 [8, K]; counts_<encoder>.npy for encoder tokens
    tokens/<encoder>/<clip>.npy   int16 [8, T] tokens each encoder produced
    summary.json  report.md  plots/*.png
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import heartcodec_lab
from heartcodec_lab.codec.usage import count_codes
from heartcodec_lab.evaluate import plots
from heartcodec_lab.evaluate.context import EvalContext
from heartcodec_lab.evaluate.dataset import iter_dataset, read_dataset_info, read_tokens
from heartcodec_lab.evaluate.metrics.agreement import match_counts
from heartcodec_lab.evaluate.music import MusicMetrics, evaluate_songs, summarize_music
from heartcodec_lab.evaluate.report import RunData, write_report
from heartcodec_lab.evaluate.results import JsonlLog, write_json
from heartcodec_lab.evaluate.settings import (
    audio_settings,
    check_dataset_encoders,
    digest,
    evaluation_provenance,
    mula_settings,
    settle_stale,
)
from heartcodec_lab.evaluate.stability_eval import StabilityEval
from heartcodec_lab.evaluate.summary import describe_values, summarize_encoder, summarize_usage

log = logging.getLogger(__name__)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def evaluate_dataset(cfg: DictConfig, ctx: EvalContext, out: Path) -> dict:
    """Exact code counts over every token file (saved as ``counts.npy``), usage, and NLL when enabled."""
    root = Path(cfg.input)
    info = read_dataset_info(root)
    size = ctx.codebook_size(info)
    pad_id = cfg.get("pad_id")
    counts = np.zeros((8, size), dtype=np.int64)
    records = JsonlLog(out / "dataset_items.jsonl", ("item",), resume=cfg.get("resume", True))
    items = list(iter_dataset(root))
    check_dataset_encoders(root, [item.meta for item in items if item.meta], info)
    mula = mula_settings(cfg, ctx)
    expected = {}
    for item in items:
        stat = item.tokens_path.stat()
        expected[item.key] = {
            "tokens": digest([item.meta.get("encoder"), stat.st_size, stat.st_mtime_ns]),
            "mula": mula,
        }
    settle_stale(records, expected, "item", cfg.get("changed_settings") or "recompute")
    files = frames = 0
    for item in items:
        tokens = read_tokens(item.tokens_path)
        # heartcodec-tokenize repeats the last frame of an exactly-8-frame clip (pad_frames) so the
        # array cannot be mistaken for [T, 8]; those frames are padding, not codes
        pad_frames = int(item.meta.get("pad_frames") or 0)
        if 0 < pad_frames < tokens.shape[1]:
            tokens = tokens[:, :-pad_frames]
        try:
            counts += count_codes(tokens, size, pad_id)
        except ValueError as err:
            raise ValueError(f"{item.tokens_path}: {err}") from err
        files += 1
        frames += tokens.shape[1]
        if records.done(item=item.key):
            continue
        record = {
            "item": item.key,
            "file_name": item.meta.get("file_name"),
            "frames": int(tokens.shape[1]),
            "settings": expected[item.key],
        }
        if ctx.mula_enabled:
            nll = ctx.frame_nll(tokens, item.meta.get("tags") or "", item.meta.get("lyrics") or "")
            record["nll_per_frame_nats"] = float(nll.mean())
        records.append(record)
    np.save(out / "counts.npy", counts)
    summary = {
        "dir": str(root.resolve()),
        "files": files,
        "frames": frames,
        "hours": frames / 12.5 / 3600,
        "pad_id": pad_id,
        "encoder": info.get("encoder"),
        "encoder_fingerprint": info.get("encoder_fingerprint"),
        "provenance": info.get("provenance"),
        "usage": summarize_usage(counts),
    }
    nll = [r["nll_per_frame_nats"] for r in records.records if r.get("nll_per_frame_nats") is not None]
    if nll:
        summary["nll_per_frame_nats"] = describe_values(nll)
    return summary


class AudioEvaluation:
    """Encoders on a folder of audio: reconstruction, agreement with the reference, round trip, NLL."""

    def __init__(self, cfg: DictConfig, ctx: EvalContext, out: Path):
        self.cfg, self.ctx, self.out = cfg, ctx, out
        self.specs = [dict(s) for s in cfg.encoders]
        names = [s["name"] for s in self.specs]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"encoders need unique names, got {names}")
        self.reference = cfg.get("reference")
        if self.reference is not None and self.reference not in names:
            raise ValueError(f"reference {self.reference!r} is not one of the configured encoders {names}")
        # the reference goes first so its tokens exist when the others are compared with it
        self.specs.sort(key=lambda s: s["name"] != self.reference)
        self.items = JsonlLog(out / "items.jsonl", ("clip", "encoder"), resume=cfg.get("resume", True))
        self.failures = JsonlLog(out / "failures.jsonl", ("clip",), resume=cfg.get("resume", True))
        self.music = MusicMetrics(cfg, ctx)
        self.stability = StabilityEval(cfg.get("stability"), names, self.reference)

    def tokens_path(self, encoder: str, clip: str) -> Path:
        return self.out / "tokens" / encoder / f"{clip}.npy"

    def settle_resume(self) -> None:
        """Drop (or refuse) records made under other settings than this run's; remove their token files."""
        reference = next((s for s in self.specs if s["name"] == self.reference), None)
        self.settings = {s["name"]: audio_settings(self.cfg, self.ctx, s, reference) for s in self.specs}
        for name, settings in self.settings.items():  # None (nothing measured) keys like older records
            settings["stability"] = digest(self.stability.settings(name)) if self.stability.settings(name) else None
        for record in settle_stale(
            self.items, self.settings, "encoder", self.cfg.get("changed_settings") or "recompute"
        ):
            self.tokens_path(record["encoder"], record["clip"]).unlink(missing_ok=True)

    def run(self) -> dict:
        files = self.ctx.audio_files(self.cfg)
        self.settle_resume()
        spectrogram_clips = int(self.cfg.plots.spectrogram_clips)
        for index, (clip, path) in enumerate(files):
            todo = [s for s in self.specs if not self.items.done(clip=clip, encoder=s["name"])]
            if not todo:
                continue
            try:
                audio, tags, lyrics = self.ctx.read_clip(path, self.cfg)
            except ValueError as err:  # AudioError names the file
                log.warning("skipping %s", err)
                if not self.failures.done(clip=clip):
                    self.failures.append({"clip": clip, "stage": "read", "error": str(err)})
                continue
            reference_tokens = None
            for spec in self.specs:
                name = spec["name"]
                if self.items.done(clip=clip, encoder=name):
                    if name == self.reference:
                        reference_tokens = self._reference_tokens(spec, clip, audio)
                    continue
                log.info("[%d/%d] %s with %s", index + 1, len(files), clip, name)
                record, tokens = self.evaluate_clip(
                    spec, clip, audio, tags, lyrics, reference_tokens, plot=index < spectrogram_clips
                )
                if name == self.reference:
                    reference_tokens = tokens
                self.items.append(record)
        return self.summarize(files)

    def _reference_tokens(self, spec: dict, clip: str, audio: torch.Tensor) -> torch.Tensor:
        path = self.tokens_path(spec["name"], clip)
        if path.is_file():
            return torch.from_numpy(read_tokens(path))
        return self.ctx.encoder(spec).encode(audio, self.ctx.sample_rate).tokens.cpu()

    def evaluate_clip(self, spec, clip, audio, tags, lyrics, reference_tokens, plot: bool):
        """One clip through one encoder -> (record, tokens ``[8, T]``)."""
        cfg, ctx, name, sr = self.cfg, self.ctx, spec["name"], self.ctx.sample_rate
        encoder = ctx.encoder(spec)
        start = time.perf_counter()
        encoded = encoder.encode(audio, sr)
        tokens = encoded.tokens.cpu()
        path = self.tokens_path(name, clip)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, tokens.numpy().astype(np.int16))
        record = {
            "clip": clip,
            "encoder": name,
            "frames": int(tokens.shape[1]),
            "settings": self.settings[name],
            "duration_s": audio.shape[-1] / sr,
            "seconds_encode": time.perf_counter() - start,
        }
        if reference_tokens is not None and name != self.reference:
            record["agreement"] = match_counts(tokens, reference_tokens)
        reference = next((s for s in self.specs if s["name"] == self.reference), None)
        record.update(
            self.stability.clip_blocks(
                name, encoder, clip, audio, sr, encoded, reference and (lambda: ctx.encoder(reference))
            )
        )
        if cfg.reconstruction or cfg.roundtrip:
            t0 = time.perf_counter()
            recon = ctx.detokenize(tokens)[..., : audio.shape[-1]]
            record["seconds_detokenize"] = time.perf_counter() - t0
            if cfg.reconstruction:
                record["reconstruction"] = ctx.metrics(audio, recon)
                record.update(self.music.clip_blocks(clip, audio, recon, tokens, lyrics))
            if plot:
                plots.spectrogram_comparison(
                    {"original": audio, f"{name} reconstruction": recon},
                    sr,
                    self.out / "plots" / "spectrograms" / f"{_slug(clip)}__{_slug(name)}.png",
                    title=clip,
                )
            if cfg.get("save_reconstructions"):
                from heartcodec_lab.audio import save_audio

                save_audio(self.out / "reconstructions" / name / f"{clip}.wav", recon, sr)
            if cfg.roundtrip:
                record["roundtrip"] = match_counts(encoder.encode(recon, sr).tokens.cpu(), tokens)
        if ctx.mula_enabled:
            record["nll_per_frame_nats"] = float(ctx.frame_nll(tokens, tags, lyrics).mean())
        record["seconds_total"] = time.perf_counter() - start
        return record, tokens

    def summarize(self, files: list[tuple[str, Path]]) -> dict:
        clips = {clip for clip, _ in files}
        summary = {}
        for spec in self.specs:
            name = spec["name"]
            records = [r for r in self.items.records if r["encoder"] == name and r["clip"] in clips]
            block = {
                "kind": spec.get("kind"),
                "path": spec.get("path"),
                **summarize_encoder(records),
                **summarize_music(records),
            }
            token_files = [self.tokens_path(name, r["clip"]) for r in records]
            token_files = [p for p in token_files if p.is_file()]
            if token_files:
                size = self.ctx.codebook_size({})
                counts = sum(count_codes(read_tokens(p), size) for p in token_files)
                np.save(self.out / f"counts_{_slug(name)}.npy", counts)
                block["usage"] = summarize_usage(counts)
            if self.ctx.has_encoder(name):
                block["describe"] = self.ctx.encoder(spec).describe()
            summary[name] = block
        return summary


#: the evaluation modes (conf/mode/) and what each reads as ``input``
MODE_INPUTS = {
    "usage": "a tokenized dataset folder",
    "encoders": "a folder of audio",
    "pairs": "a folder of audio, with estimate=FOLDER",
    "adherence": "a folder of generated songs",
    "compare": "a list of finished evaluation folders",
}
MODES = tuple(MODE_INPUTS)


def run_evaluation(cfg: DictConfig | dict) -> dict:
    """Run what ``cfg`` asks for (see ``conf/evaluate.yaml``); returns the summary and writes the report."""
    cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    mode = cfg.get("mode")
    if mode not in MODES:
        raise ValueError(f"mode={mode}: choose one of {', '.join(MODES)}")
    if not cfg.get("input"):
        raise ValueError(f"mode={mode} needs input=... ({MODE_INPUTS[mode]})")
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    if mode == "compare":
        runs = [RunData.load(p) for p in (cfg.input if OmegaConf.is_list(cfg.input) else [cfg.input])]
        write_report(out, runs, title=cfg.get("title") or "Comparison", listening_test=cfg.get("listening_test"))
        return {"compare": [str(r.path) for r in runs]}
    # refuse embedded models next to checkpoints before any work
    provenance = evaluation_provenance(cfg, read_dataset_info(cfg.input) if mode == "usage" else None)
    torch.set_num_threads(int(cfg.get("threads") or torch.get_num_threads()))
    ctx = EvalContext(cfg)
    summary: dict = {
        "toolkit_version": heartcodec_lab.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "label": cfg.get("label") or out.name,
        "provenance": provenance.as_dict(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if mode == "usage":
        summary["dataset"] = evaluate_dataset(cfg, ctx, out)
    elif mode == "pairs":
        from heartcodec_lab.evaluate.pairs import evaluate_pairs

        summary["encoders"] = evaluate_pairs(cfg, ctx, out)
        summary["metric_params"] = ctx.metrics.describe()
    elif mode == "encoders":
        evaluation = AudioEvaluation(cfg, ctx, out)
        summary["encoders"] = evaluation.run()
        summary["metric_params"] = ctx.metrics.describe()
        summary["detokenize"] = OmegaConf.to_container(cfg.detokenize, resolve=True)
        summary["music_params"] = evaluation.music.describe()
        summary["stability_params"] = evaluation.stability.describe()
    elif mode == "adherence":
        songs = MusicMetrics(cfg, ctx)
        summary["songs"] = evaluate_songs(cfg, ctx, out, songs)
        summary["transcriber"] = songs.transcriber.describe()
    summary["codec"] = ctx.codec_description()
    if ctx.mula_enabled:
        summary["mula"] = ctx.mula_description()
    write_json(out / "summary.json", summary)
    write_report(
        out,
        [RunData.load(out)],
        title=cfg.get("title") or f"Evaluation: {summary['label']}",
        listening_test=cfg.get("listening_test"),
    )
    return summary
