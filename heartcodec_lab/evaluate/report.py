"""``report.md``: tables and PNG plots for one run, or several runs side by side (compare mode)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from heartcodec_lab.codec.usage import USAGE_KEYS
from heartcodec_lab.evaluate import plots
from heartcodec_lab.evaluate.report_music import music_sections
from heartcodec_lab.evaluate.report_stability import stability_sections
from heartcodec_lab.evaluate.results import read_jsonl
from heartcodec_lab.evaluate.summary import BETTER, RECONSTRUCTION_METRICS
from heartcodec_lab.tables import markdown_table


@dataclass
class RunData:
    """A finished run folder: its summary, per-item records and code counts."""

    path: Path
    summary: dict
    items: list[dict] = field(default_factory=list)
    dataset_counts: np.ndarray | None = None
    encoder_counts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.summary.get("label") or self.path.name

    @classmethod
    def load(cls, path: str | Path) -> RunData:
        path = Path(path)
        summary_path = path / "summary.json"
        if not summary_path.is_file():
            raise FileNotFoundError(f"{summary_path}: not an evaluation run folder (no summary.json)")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        counts = path / "counts.npy"
        run = cls(
            path=path,
            summary=summary,
            items=read_jsonl(path / "items.jsonl"),
            dataset_counts=np.load(counts) if counts.is_file() else None,
        )
        for name in summary.get("encoders", {}):
            p = path / f"counts_{name}.npy"
            if p.is_file():
                run.encoder_counts[name] = np.load(p)
        return run


def _fmt(value, digits: int = 4) -> str:
    """Integers as they are, floats to ``digits`` significant digits (small utilizations stay visible)."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _rows(runs: list[RunData]):
    """(row label, run, encoder name, encoder summary) over every encoder of every run."""
    for run in runs:
        for name, block in run.summary.get("encoders", {}).items():
            yield (name if len(runs) == 1 else f"{run.label}/{name}"), run, name, block


def _usage_section(runs: list[RunData], out: Path) -> list[str]:
    parts, curves, rows = [], {}, []
    for run in runs:
        prefix = "" if len(runs) == 1 else f"{run.label}/"
        dataset = run.summary.get("dataset")
        if dataset:
            label = f"{prefix}dataset"
            rows.append(
                [label, _fmt(dataset["files"]), _fmt(dataset["usage"]["tokens_per_quantizer"])]
                + [_fmt(dataset["usage"]["mean"][k]) for k in USAGE_KEYS]
            )
            if run.dataset_counts is not None:
                curves[label] = run.dataset_counts
        for name, block in run.summary.get("encoders", {}).items():
            if block.get("usage"):
                rows.append(
                    [f"{prefix}{name}", _fmt(block["clips"]), _fmt(block["usage"]["tokens_per_quantizer"])]
                    + [_fmt(block["usage"]["mean"][k]) for k in USAGE_KEYS]
                )
            if name in run.encoder_counts:
                curves[f"{prefix}{name}"] = run.encoder_counts[name]
    if not rows:
        return parts
    parts.append("## Codebook usage\n")
    parts.append(
        "Exact code counts (padding excluded); entropy in bits, normalized by log2(codebook size) "
        "(13 bits for 8192 codes); perplexity = 2^entropy. Means over the 8 quantizers:\n"
    )
    parts.append(markdown_table(["source", "files/clips", "tokens per quantizer", *USAGE_KEYS], rows))
    for run in runs:
        dataset = run.summary.get("dataset")
        if not dataset:
            continue
        title = "Dataset" if len(runs) == 1 else f"Dataset of {run.label}"
        parts.append(f"### {title} per quantizer (`{dataset['dir']}`)\n")
        q_rows = [[f"q{q}"] + [_fmt(u[k]) for k in USAGE_KEYS] for q, u in enumerate(dataset["usage"]["per_quantizer"])]
        parts.append(markdown_table(["quantizer", *USAGE_KEYS], q_rows))
        if run.dataset_counts is not None:
            name = f"usage_histogram_{_slug(run.label)}.png"
            plots.usage_histogram(run.dataset_counts, out / "plots" / name, title=title)
            parts.append(f"![usage histogram](plots/{name})\n")
    if curves:
        plots.rank_frequency_plot(curves, out / "plots" / "rank_frequency.png")
        parts.append(
            "Rank-frequency curves (a flat curve means even usage):\n\n![rank-frequency](plots/rank_frequency.png)\n"
        )
    return parts


def _mean_std(stats: dict | None) -> str:
    if not stats or stats.get("mean") is None:
        return "n/a"
    return f"{_fmt(stats['mean'])} ± {_fmt(stats['std'], 2)}"


def _reconstruction_section(runs: list[RunData], out: Path) -> list[str]:
    rows, distributions = [], {m: {} for m in RECONSTRUCTION_METRICS}
    for label, run, name, block in _rows(runs):
        if not block.get("reconstruction"):
            continue
        rows.append(
            [label, _fmt(block["clips"])] + [_mean_std(block["reconstruction"][m]) for m in RECONSTRUCTION_METRICS]
        )
        for m in RECONSTRUCTION_METRICS:
            distributions[m][label] = [
                r["reconstruction"][m]
                for r in run.items
                if r["encoder"] == name and r.get("reconstruction") and r["reconstruction"].get(m) is not None
            ]
    if not rows:
        return []
    first = runs[0].summary
    params = first.get("metric_params", {})
    parts = ["## Reconstruction through detokenize\n"]
    parts.append(
        f"Decoder settings: `{json.dumps(first.get('detokenize', {}))}`. Metric parameters: "
        f"multi-resolution STFT `{json.dumps(params.get('mstft', {}))}` (auraloss, spectral convergence + "
        f"log-magnitude L1); log-mel `{json.dumps(params.get('log_mel', {}))}` (torchaudio, natural log); "
        "SI-SDR zero-mean per channel; loudness ITU-R BS.1770 (torchaudio); shimmer = 5-7 kHz band energy "
        "of the reconstruction over the original's. Mean ± std over clips:\n"
    )
    header = ["encoder", "clips"] + [f"{m} ({BETTER[m]})" for m in RECONSTRUCTION_METRICS]
    parts.append(markdown_table(header, rows))
    plots.metric_distributions(distributions, out / "plots" / "metric_distributions.png")
    parts.append("![metric distributions](plots/metric_distributions.png)\n")
    return parts


def _agreement_section(runs: list[RunData], key: str, title: str, intro: str) -> list[str]:
    rows_q, rows_k = [], []
    for label, _, _, block in _rows(runs):
        if not block.get(key):
            continue
        a = block[key]
        rows_q.append([label, _fmt(a["frames"])] + [_fmt(v) for v in a["match_rate"]])
        rows_k.append([label, _fmt(a["frames"])] + [_fmt(v) for v in a["match_rate_first_k"]])
    if not rows_q:
        return []
    n = max(len(r) for r in rows_q) - 2  # number of quantizers
    parts = [f"## {title}\n", intro + "\n", "Match rate per quantizer (frame-weighted):\n"]
    parts.append(markdown_table(["encoder", "frames"] + [f"q{i}" for i in range(n)], rows_q))
    parts.append("\nFirst-k match rate (quantizers 0..k-1 all equal):\n")
    parts.append(markdown_table(["encoder", "frames"] + [f"k={i + 1}" for i in range(n)], rows_k))
    return parts


def _nll_section(runs: list[RunData]) -> list[str]:
    rows = []
    for run in runs:
        prefix = "" if len(runs) == 1 else f"{run.label}/"
        if run.summary.get("dataset", {}).get("nll_per_frame_nats"):
            s = run.summary["dataset"]["nll_per_frame_nats"]
            rows.append([f"{prefix}dataset", _fmt(s["n"]), _mean_std(s), _fmt(s["median"])])
    for label, _, _, block in _rows(runs):
        if block.get("nll_per_frame_nats"):
            s = block["nll_per_frame_nats"]
            rows.append([label, _fmt(s["n"]), _mean_std(s), _fmt(s["median"])])
    if not rows:
        return []
    return [
        "## HeartMuLa likelihood\n",
        "Negative log-likelihood of the tokens per 80 ms frame (sum over the 8 codebooks, nats; lower is better):\n",
        markdown_table(["source", "items", "nll_per_frame_nats (mean ± std)", "median"], rows),
    ]


def _spectrogram_section(runs: list[RunData], out: Path) -> list[str]:
    images = []
    for run in runs:
        for png in sorted((run.path / "plots" / "spectrograms").glob("*.png")):
            images.append(os.path.relpath(png, out))
    if not images:
        return []
    parts = ["## Spectrograms: original vs reconstruction\n"]
    parts += [f"![{Path(p).stem}]({Path(p).as_posix()})\n" for p in images]
    return parts


def _codec_identity(codec: dict) -> str:
    """Short codec identity for tables: kind/path and abbreviated weight hashes."""
    parts = [str(codec.get(k)) for k in ("kind", "path") if codec.get(k)]
    parts += [f"{name}:{digest[:12]}" for name, digest in (codec.get("sha256") or {}).items()]
    return "`" + " ".join(parts) + "`" if parts else "n/a"


def _provenance_lines(runs: list[RunData]) -> list[str]:
    """First lines of a report: which models were embedded (miniature or random) in each run, and in its dataset."""
    from heartcodec_lab.provenance import Provenance

    lines = []
    for run in runs:
        prefix = "" if len(runs) == 1 else f"{run.label}: "
        if "provenance" in run.summary:
            lines.append(f"**{prefix}{Provenance.from_dict(run.summary['provenance']).headline()}**\n")
        dataset = (run.summary.get("dataset") or {}).get("provenance")
        if dataset and dataset.get("embedded"):
            lines.append(f"**{prefix}Dataset tokens made with {Provenance.from_dict(dataset).headline()}**\n")
    return lines


def write_report(out: str | Path, runs: list[RunData], title: str = "Evaluation", listening_test=None) -> Path:
    """Write ``out/report.md`` (and its plots) for one or more runs, with the screened results of a
    ``heartcodec-listen`` test folder when ``listening_test`` is given; returns the report path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        f"# {title}\n",
        *_provenance_lines(runs),
        f"Written {datetime.now(timezone.utc).isoformat(timespec='seconds')}.\n",
    ]
    run_rows = [
        [r.label, f"`{r.path}`", r.summary.get("created", "n/a"), _codec_identity(r.summary.get("codec", {}))]
        for r in runs
    ]
    parts.append(markdown_table(["run", "folder", "created", "codec"], run_rows))
    reference = {r.summary.get("config", {}).get("reference") for r in runs} - {None}
    parts += _usage_section(runs, out)
    parts += _reconstruction_section(runs, out)
    parts += music_sections(runs, out)
    parts += _agreement_section(
        runs,
        "agreement",
        "Agreement with the reference encoder",
        f"Tokens of each encoder compared with those of the reference (`{', '.join(sorted(reference)) or 'n/a'}`) "
        "on the same clips.",
    )
    parts += stability_sections(runs)
    parts += _agreement_section(
        runs,
        "roundtrip",
        "Round-trip stability",
        "Tokens -> detokenize -> audio -> the same encoder -> tokens, compared with the first tokens.",
    )
    parts += _nll_section(runs)
    parts += _spectrogram_section(runs, out)
    if listening_test:
        from heartcodec_lab.listen.results import listening_section

        parts += listening_section(listening_test, out)
    failures = sum(len(read_jsonl(r.path / "failures.jsonl")) for r in runs)
    if failures:
        parts.append(f"\n{failures} clip(s) could not be read; see `failures.jsonl`.\n")
    path = out / "report.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
