"""``report.md`` of the encoder study: training runs, one headline table, agreement and speed plots."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from heartcodec_lab.evaluate.report_stability import stability_overview
from heartcodec_lab.evaluate.results import read_jsonl
from heartcodec_lab.tables import markdown_table

# (column, where in an encoder's summary block, which way is better)
HEADLINE = (
    ("q0 match", ("agreement", "match_rate", 0), "higher"),
    ("mean match (8 q)", ("agreement", "match_rate", "mean"), "higher"),
    ("mstft_distance", ("reconstruction", "mstft_distance", "mean"), "lower"),
    ("si_sdr_db", ("reconstruction", "si_sdr_db", "mean"), "higher"),
    ("chroma_similarity", ("music", "chroma_similarity", "mean"), "higher"),
    ("onset_corr", ("music", "onset_corr", "mean"), "higher"),
    ("tempo_diff_bpm", ("music", "tempo_diff_bpm", "mean"), "lower"),
    ("wer", ("lyrics", "wer", "mean"), "lower"),
    ("cer", ("lyrics", "cer", "mean"), "lower"),
)


def _get(block: dict, path: tuple):
    value = block
    for key in path:
        if key == "mean" and isinstance(value, list):
            return float(np.mean(value)) if value else None
        if isinstance(value, list):
            value = value[key] if len(value) > key else None
        else:
            value = (value or {}).get(key)
        if value is None:
            return None
    return value


def _fmt(value) -> str:
    return "n/a" if value is None else (str(value) if isinstance(value, int) else f"{value:.4g}")


def encode_speed(items: list[dict]) -> dict[str, float]:
    """Seconds of audio tokenized per second of encoding, per encoder (over all held-out clips)."""
    audio, spent = {}, {}
    for r in items:
        if r.get("seconds_encode"):
            audio[r["encoder"]] = audio.get(r["encoder"], 0.0) + r.get("duration_s", 0.0)
            spent[r["encoder"]] = spent.get(r["encoder"], 0.0) + r["seconds_encode"]
    return {name: audio[name] / spent[name] for name in spent}


def _agreement_plot(encoders: dict, path: Path) -> bool:
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
    drawn = False
    for name, block in encoders.items():
        rates = _get(block, ("agreement", "match_rate"))
        if rates:
            ax.plot(range(len(rates)), rates, marker="o", label=name)
            drawn = True
    ax.set_xlabel("quantizer")
    ax.set_ylabel("token match rate with the reference encoder")
    ax.set_ylim(0, 1)
    if drawn:
        ax.legend(fontsize=8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
    return drawn


def _speed_plot(speed: dict[str, float], path: Path) -> None:
    fig = Figure(figsize=(6.4, 3.2))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
    ax.bar(list(speed), list(speed.values()))
    ax.set_ylabel("audio seconds per encode second")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def _reference_text(cfg) -> str:
    from .run import reference_encoder

    ref = reference_encoder(cfg)
    if ref["kind"] == "minicodec":
        return "the miniature's true encoder (`minicodec`, embedded)"
    return f"official, `{ref['path'] or 'embedded tiny (random weights)'}`"


def write_study_report(
    out: Path, cfg, trained: dict[str, dict], evaluation: dict, n_train: int, n_heldout: int
) -> Path:
    encoders = evaluation.get("encoders", {})
    items = read_jsonl(out / "eval" / "items.jsonl")
    speed = encode_speed(items)
    parts = [
        "# Encoder study\n",
        f"Written {datetime.now(timezone.utc).isoformat(timespec='seconds')}. "
        f"Audio: `{cfg.input}` ({n_train} training files, {n_heldout} held out in `heldout/`). "
        f"Codec: `{cfg.codec.get('path') or 'embedded miniature (codec.path=null)'}`; reference encoder: "
        f"{_reference_text(cfg)}. Training budget: "
        f"{int(cfg.budget.max_steps)} steps per recipe.\n",
    ]
    rows = [
        [
            r,
            _fmt(s.get("global_step")),
            _fmt(s.get("seconds")),
            _fmt(s.get("metrics", {}).get("train/loss/total")),
            _fmt(s.get("metrics", {}).get("val/loss/total")),
            f"`{s.get('projection_export')}`",
        ]
        for r, s in trained.items()
    ]
    header = ["recipe", "steps", "seconds", "train/loss/total", "val/loss/total", "export"]
    parts += ["## Training\n", markdown_table(header, rows)]
    header = ["encoder"] + [f"{name} ({better})" for name, _, better in HEADLINE] + ["tokenize speed (x realtime)"]
    rows = [
        [name] + [_fmt(_get(block, path)) for _, path, _ in HEADLINE] + [_fmt(speed.get(name))]
        for name, block in encoders.items()
    ]
    parts += [
        "## Held-out comparison\n",
        "Agreement: token match rate with the reference encoder (q0 = first quantizer; mean over the 8). "
        "Reconstruction and music metrics: original vs detokenized tokens. wer/cer: transcript of the "
        "reconstruction vs that of the original (when `evaluate.lyrics.enabled`). Speed: seconds of audio "
        "tokenized per second (higher is faster).\n",
        markdown_table(header, rows),
    ]
    parts += stability_overview(encoders, evaluation.get("config", {}).get("reference"))
    if _agreement_plot(encoders, out / "plots" / "agreement_per_quantizer.png"):
        parts.append("![agreement per quantizer](plots/agreement_per_quantizer.png)\n")
    if speed:
        _speed_plot(speed, out / "plots" / "tokenize_speed.png")
        parts.append("![tokenization speed](plots/tokenize_speed.png)\n")
    listening_test = OmegaConf.select(cfg, "evaluate.listening_test")
    if listening_test:
        from heartcodec_lab.listen.results import listening_section

        parts += listening_section(listening_test, out)
    parts.append(
        "Full evaluation (usage, per-quantizer tables, codebook depth, transcripts, spectrograms): "
        "[eval/report.md](eval/report.md)\n"
    )
    path = out / "report.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    (out / "study.json").write_text(
        json.dumps({"trained": trained, "speed": speed, "encoders": list(encoders)}, indent=2) + "\n"
    )
    return path
