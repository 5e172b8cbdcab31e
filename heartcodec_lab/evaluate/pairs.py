"""Audio you already have against its originals: the reconstruction metrics without any encoder or decoder.

``input`` holds the originals, ``estimate`` the estimates (reconstructions from another
system, a released decoder, a listening-test set) under the same relative paths; the suffix may
differ (``song.flac`` is paired with ``song.wav`` when there is no ``song.flac``). Both are read as
the encoder mode reads clips (48 kHz stereo, ``audio.max_seconds`` crop) and compared with the same
:class:`ReconstructionMetrics`, so the figures are comparable with a codec run's. The metrics are
cheap, so every run recomputes them (``items.jsonl`` is rewritten, never resumed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from heartcodec_lab.audio import audio_extensions
from heartcodec_lab.evaluate import plots
from heartcodec_lab.evaluate.context import EvalContext
from heartcodec_lab.evaluate.results import JsonlLog
from heartcodec_lab.evaluate.summary import summarize_encoder

log = logging.getLogger(__name__)


def find_estimate(root: Path, clip: str, extensions: list[str]) -> Path | None:
    """``root/clip`` if it exists, else the same relative path with another audio suffix."""
    exact = root / clip
    if exact.is_file():
        return exact
    for ext in extensions:
        candidate = exact.with_suffix("." + ext.lstrip("."))
        if candidate.is_file():
            return candidate
    return None


def evaluate_pairs(cfg: DictConfig, ctx: EvalContext, out: Path) -> dict:
    """Metrics of every (original, estimate) pair -> ``{estimate_name: summary block}``; records in items.jsonl."""
    root = Path(cfg.estimate)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: estimate folder not found")
    name = cfg.get("estimate_name") or "estimate"
    items = JsonlLog(out / "items.jsonl", ("clip", "encoder"), resume=False)
    failures = JsonlLog(out / "failures.jsonl", ("clip",), resume=False)
    sr = ctx.sample_rate
    files = ctx.audio_files(cfg)
    for index, (clip, path) in enumerate(files):
        estimate_path = find_estimate(root, clip, list(audio_extensions(cfg.audio.extensions)))
        try:
            if estimate_path is None:
                raise ValueError(f"{root / clip}: no estimate for this clip (same relative path, any audio suffix)")
            original, _, _ = ctx.read_clip(path, cfg)
            estimate, _, _ = ctx.read_clip(estimate_path, cfg)
        except ValueError as err:  # AudioError names the file
            log.warning("skipping %s", err)
            failures.append({"clip": clip, "stage": "read", "error": str(err)})
            continue
        items.append(
            {
                "clip": clip,
                "encoder": name,
                "estimate": estimate_path.relative_to(root).as_posix(),
                "duration_s": original.shape[-1] / sr,
                "reconstruction": ctx.metrics(original, estimate),
            }
        )
        if index < int(cfg.plots.spectrogram_clips):
            slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{clip}__{name}")
            plots.spectrogram_comparison(
                {"original": original, name: estimate}, sr, out / "plots" / "spectrograms" / f"{slug}.png", title=clip
            )
    return {name: {"kind": "audio", "path": str(root.resolve()), **summarize_encoder(items.records)}}
