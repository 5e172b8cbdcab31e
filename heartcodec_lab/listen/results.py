"""Results of a listening test: BS.1534-3 post-screening, per-condition means with 95 % confidence intervals
(t distribution), box plots per condition and per item, CSV files and a markdown report.

Post-screening (ITU-R BS.1534-3, 4.1.2): a listener is excluded who rates the hidden reference below 90 in more
than 15 % of the trials they completed, or (``anchor_rule``) the mid-range anchor (7 kHz) above 90 in more than
15 %. Only complete trials (every condition rated) count.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from heartcodec_lab.listen.manifest import HIDDEN_REFERENCE, Manifest
from heartcodec_lab.listen.signal import anchor_name
from heartcodec_lab.listen.store import read_ratings

MID_ANCHOR = anchor_name(7000)


@dataclass
class ListenerScreening:
    listener: str
    name: str
    trials: int  # complete trials
    reference_below: int  # trials with the hidden reference rated below the threshold
    anchor_above: int  # trials with the mid-range anchor rated above the threshold
    excluded: bool
    reason: str


def screen_listeners(
    scores: dict[str, dict[str, dict[str, float]]],
    names: dict[str, str] | None = None,
    threshold: float = 90.0,
    max_fraction: float = 0.15,
    anchor_rule: bool = True,
    mid_anchor: str = MID_ANCHOR,
) -> list[ListenerScreening]:
    """``scores[listener][trial][condition]`` of complete trials -> one verdict per listener."""
    out = []
    for listener, trials in scores.items():
        n = len(trials)
        below = sum(1 for t in trials.values() if t.get(HIDDEN_REFERENCE, 100.0) < threshold)
        above = sum(1 for t in trials.values() if mid_anchor in t and t[mid_anchor] > threshold) if anchor_rule else 0
        reasons = []
        if n and below / n > max_fraction:
            reasons.append(
                f"hidden reference rated below {threshold:g} in {below} of {n} trials "
                f"({100 * below / n:.0f} % > {100 * max_fraction:g} %)"
            )
        if n and above / n > max_fraction:
            reasons.append(
                f"mid-range anchor ({mid_anchor}) rated above {threshold:g} in {above} of {n} trials "
                f"({100 * above / n:.0f} % > {100 * max_fraction:g} %)"
            )
        if not n:
            reasons.append("no complete trial")
        out.append(
            ListenerScreening(
                listener, (names or {}).get(listener, ""), n, below, above, bool(reasons), "; ".join(reasons)
            )
        )
    return out


def mean_ci(values, confidence: float = 0.95) -> dict:
    """n, mean, sample std and the half-width of the two-sided ``confidence`` interval of the mean (Student's t,
    n - 1 degrees of freedom; None for fewer than 2 values)."""
    from scipy.stats import t

    x = np.asarray(list(values), dtype=np.float64)
    if x.size == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None, "low": None, "high": None}
    mean = float(x.mean())
    if x.size < 2:
        return {"n": 1, "mean": mean, "std": None, "ci95": None, "low": None, "high": None}
    std = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + confidence / 2, x.size - 1) * std / math.sqrt(x.size))
    return {"n": int(x.size), "mean": mean, "std": std, "ci95": half, "low": mean - half, "high": mean + half}


def complete_scores(manifest: Manifest, ratings: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """``scores[listener][trial][condition]`` keeping only trials where every condition is rated."""
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for r in ratings:
        scores.setdefault(r["listener"], {}).setdefault(r["trial"], {})[r["condition"]] = float(r["score"])
    for trials in scores.values():
        for trial in list(trials):
            needed = set(manifest.trial_by_id[trial]["stimuli"]) if trial in manifest.trial_by_id else None
            if needed is None or set(trials[trial]) != needed:
                del trials[trial]
    return scores


def compute_results(
    test_dir: str | Path, threshold: float = 90.0, max_fraction: float = 0.15, anchor_rule: bool = True
) -> dict:
    """Screen the listeners of ``test_dir`` and summarise the kept listeners' ratings."""
    manifest = Manifest(test_dir)
    ratings, listeners = read_ratings(Path(test_dir) / "ratings.sqlite")
    names = {entry["listener"]: entry["name"] for entry in listeners}
    scores = complete_scores(manifest, ratings)
    screening = screen_listeners(scores, names, threshold, max_fraction, anchor_rule)
    kept = {s.listener for s in screening if not s.excluded}
    items = {t["id"]: t["item"] for t in manifest.trials}
    per_condition = {c: [] for c in manifest.conditions}
    per_item = {t["item"]: {c: [] for c in manifest.conditions} for t in manifest.trials}
    for listener in kept:
        for trial, conditions in scores[listener].items():
            for condition, score in conditions.items():
                per_condition[condition].append(score)
                per_item[items[trial]][condition].append(score)
    return {
        "test": str(test_dir),
        "title": manifest.title,
        "screening_rule": {"threshold": threshold, "max_fraction": max_fraction, "anchor_rule": anchor_rule},
        "listeners": [asdict(s) for s in screening],
        "kept": sorted(kept),
        "conditions": {c: mean_ci(v) for c, v in per_condition.items()},
        "items": {item: {c: mean_ci(v) for c, v in conds.items()} for item, conds in per_item.items()},
        "raw": {"per_condition": per_condition, "per_item": per_item},
        "ratings": ratings,
    }


def _fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def condition_table(results: dict) -> str:
    lines = ["| condition | ratings | mean | 95 % CI | std |", "| --- | --- | --- | --- | --- |"]
    for condition, s in results["conditions"].items():
        ci = "n/a" if s["ci95"] is None else f"± {s['ci95']:.1f} [{s['low']:.1f}, {s['high']:.1f}]"
        lines.append(f"| {condition} | {s['n']} | {_fmt(s['mean'])} | {ci} | {_fmt(s['std'])} |")
    return "\n".join(lines) + "\n"


def screening_lines(results: dict) -> list[str]:
    listeners = results["listeners"]
    excluded = [s for s in listeners if s["excluded"]]
    rule = results["screening_rule"]
    out = [
        f"{len(listeners)} listener(s), {len(listeners) - len(excluded)} kept after post-screening "
        f"(ITU-R BS.1534-3: excluded when the hidden reference is rated below {rule['threshold']:g} in more than "
        f"{100 * rule['max_fraction']:g} % of their complete trials"
        + (", or the 7 kHz anchor above it as often" if rule["anchor_rule"] else "")
        + ").\n"
    ]
    for s in excluded:
        who = f"{s['listener']}" + (f" ({s['name']})" if s["name"] else "")
        out.append(f"- excluded {who}: {s['reason']}")
    return out + ([""] if excluded else [])


def boxplot_conditions(results: dict, path: Path) -> Path:
    data = {c: v for c, v in results["raw"]["per_condition"].items()}
    fig = Figure(figsize=(1.1 * max(len(data), 4) + 1.5, 3.6))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.28, top=0.9)
    ax.boxplot([v if v else [np.nan] for v in data.values()], showmeans=True)
    ax.set_xticks(range(1, len(data) + 1), list(data), rotation=30, ha="right", fontsize=8)
    ax.set_ylim(-2, 102)
    ax.set_ylabel("MUSHRA score")
    ax.set_title("Scores per condition (kept listeners)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def boxplot_items(results: dict, path: Path, max_items: int = 24) -> Path:
    items = list(results["raw"]["per_item"].items())[:max_items]
    cols = min(3, max(1, len(items)))
    rows = math.ceil(len(items) / cols)
    fig = Figure(figsize=(4.2 * cols, 2.9 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (item, conds) in zip(axes, items):
        ax.boxplot([v if v else [np.nan] for v in conds.values()], showmeans=True)
        ax.set_xticks(range(1, len(conds) + 1), list(conds), rotation=30, ha="right", fontsize=7)
        ax.set_ylim(-2, 102)
        ax.set_title(item, fontsize=9)
    for ax in axes[len(items) :]:
        ax.set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path


def write_results(test_dir: str | Path, out: str | Path | None = None, **screening) -> Path:
    """``results/`` of a test: results.md, results.json, ratings.csv (with each listener's verdict),
    conditions.csv, items.csv and plots/; returns the report path."""
    test_dir = Path(test_dir)
    out = Path(out) if out else test_dir / "results"
    results = compute_results(test_dir, **screening)
    out.mkdir(parents=True, exist_ok=True)
    excluded = {s["listener"] for s in results["listeners"] if s["excluded"]}
    with open(out / "ratings.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["listener", "name", "trial", "item", "condition", "score", "created", "excluded"])
        items = {t["id"]: t["item"] for t in Manifest(test_dir).trials}
        for r in results["ratings"]:
            writer.writerow(
                [
                    r["listener"],
                    r["name"],
                    r["trial"],
                    items.get(r["trial"], ""),
                    r["condition"],
                    r["score"],
                    r["created"],
                    int(r["listener"] in excluded),
                ]
            )
    with open(out / "conditions.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["condition", "n", "mean", "std", "ci95", "low", "high"])
        for c, s in results["conditions"].items():
            writer.writerow([c, s["n"], s["mean"], s["std"], s["ci95"], s["low"], s["high"]])
    with open(out / "items.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["item", "condition", "n", "mean", "std", "ci95"])
        for item, conds in results["items"].items():
            for c, s in conds.items():
                writer.writerow([item, c, s["n"], s["mean"], s["std"], s["ci95"]])
    summary = {k: v for k, v in results.items() if k not in ("raw", "ratings")}
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    boxplot_conditions(results, out / "plots" / "conditions.png")
    boxplot_items(results, out / "plots" / "items.png")
    parts = [
        f"# Listening test results: {results['title']}\n",
        f"Test folder `{test_dir}`.\n",
        *screening_lines(results),
        (
            "Per condition, the kept listeners' complete trials (mean with the 95 % "
            "confidence interval of the mean, Student's t):\n"
        ),
        condition_table(results),
        "![scores per condition](plots/conditions.png)\n",
        "Per item:\n",
        "![scores per item](plots/items.png)\n",
        "Files: `ratings.csv` (every rating, with the listener's screening verdict), `conditions.csv`, `items.csv`.\n",
    ]
    path = out / "results.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def listening_section(test_dir: str | Path, out: str | Path) -> list[str]:
    """Markdown lines for an evaluation or study report (a box plot goes to ``out/plots/``)."""
    results = compute_results(test_dir)
    plot = boxplot_conditions(results, Path(out) / "plots" / "listening_conditions.png")
    return [
        "## Listening test (MUSHRA)\n",
        f"Test folder `{test_dir}` ({len(results['items'])} items). ",
        *screening_lines(results),
        condition_table(results),
        f"![listening test scores]({plot.relative_to(out).as_posix()})\n",
    ]
