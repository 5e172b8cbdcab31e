"""PNG plots for evaluation reports.

Built on ``matplotlib.figure.Figure`` (no pyplot state), which renders with the Agg
canvas whatever backend a notebook has chosen. Each function returns the figure and
saves it when ``path`` is given.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from heartcodec_lab.codec.usage import rank_frequency


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)  # no bbox_inches="tight": it draws twice
    return fig


def _grid(n: int, cols: int = 4, size: tuple[float, float] = (3.6, 2.6)) -> tuple[Figure, list]:
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    # fixed spacing: a layout engine would draw every figure twice, which costs seconds on a busy CPU
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.9, wspace=0.35, hspace=0.55)
    return fig, axes[:n]


def usage_histogram(counts: np.ndarray, path: str | Path | None = None, title: str = "") -> Figure:
    """Per-quantizer code histograms as one heat map: row q = counts of each code index (log colour scale)."""
    counts = np.asarray(counts)
    n_q, k = counts.shape
    fig = Figure(figsize=(11, 0.45 * n_q + 1.6))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.16, right=0.98, bottom=0.2, top=0.88)
    image = ax.imshow(
        np.log10(counts + 1.0),
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        extent=(-0.5, k - 0.5, n_q - 0.5, -0.5),
    )
    used = (counts > 0).sum(1)
    ax.set_yticks(range(n_q), [f"q{q} ({used[q]}/{k} used)" for q in range(n_q)], fontsize=8)
    ax.set_xlabel("code index")
    ax.set_title(title or "code usage per quantizer")
    fig.colorbar(image, ax=ax, label="log10(count + 1)")
    return _save(fig, path)


def rank_frequency_plot(curves: dict[str, np.ndarray], path: str | Path | None = None) -> Figure:
    """Log-log rank vs relative frequency: one panel per source (``label -> counts[Q, K]``), one line per quantizer."""
    fig, axes = _grid(len(curves), cols=min(3, len(curves)), size=(4.6, 3.4))
    for ax, (label, counts) in zip(axes, curves.items()):
        rf = rank_frequency(counts)
        for q in range(rf.shape[0]):
            nonzero = rf[q][rf[q] > 0]
            if nonzero.size:
                ax.loglog(np.arange(1, nonzero.size + 1), nonzero, label=f"q{q}", linewidth=1.0)
        ax.minorticks_off()  # minor log ticks are costly to lay out and add little here
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("rank", fontsize=8)
        ax.set_ylabel("frequency", fontsize=8)
    axes[0].legend(fontsize=7, ncol=2)
    return _save(fig, path)


def _log_spectrogram(audio: torch.Tensor, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    mono = audio.float().mean(0) if audio.dim() == 2 else audio.float()
    spec = torch.stft(mono, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return (20 * torch.log10(spec + 1e-6)).numpy()


def spectrogram_comparison(
    panels: dict[str, torch.Tensor], sample_rate: int, path: str | Path | None = None, title: str = ""
) -> Figure:
    """Stacked dB spectrograms (mono mix) of ``label -> audio [C, S]``, e.g. original and reconstructions."""
    fig = Figure(figsize=(10, 2.4 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False).ravel()
    fig.subplots_adjust(left=0.07, right=0.86, bottom=0.12, top=0.86, hspace=0.45)
    specs = {k: _log_spectrogram(v) for k, v in panels.items()}
    top = max(float(s.max()) for s in specs.values())
    for ax, (label, spec) in zip(axes, specs.items()):
        seconds = panels[label].shape[-1] / sample_rate
        image = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            vmin=top - 90,
            vmax=top,
            extent=(0, seconds, 0, sample_rate / 2000),
            cmap="magma",
        )
        ax.set_title(label, fontsize=9)
        ax.set_ylabel("kHz", fontsize=8)
    axes[-1].set_xlabel("seconds", fontsize=8)
    fig.colorbar(image, ax=list(axes), label="dB")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def metric_distributions(values: dict[str, dict[str, list[float]]], path: str | Path | None = None) -> Figure:
    """Box plots per metric: ``metric -> {label -> values}`` (one box per encoder/run)."""
    metrics = list(values)
    fig, axes = _grid(len(metrics), cols=min(3, max(1, len(metrics))), size=(4.2, 3.0))
    for ax, metric in zip(axes, metrics):
        labels = [k for k, v in values[metric].items() if len(v)]
        data = [np.asarray(values[metric][k], dtype=float) for k in labels]
        if data:
            ax.boxplot(data, showmeans=True)
            ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20, fontsize=8)
        ax.set_title(metric, fontsize=9)
    return _save(fig, path)


def depth_curves(curves: dict[str, dict[str, list[tuple[int, float]]]], path: str | Path | None = None) -> Figure:
    """Codebook depth: one panel per metric ``metric -> {label -> [(k, mean), ...]}``, x = levels decoded."""
    metrics = list(curves)
    fig, axes = _grid(len(metrics), cols=min(3, max(1, len(metrics))), size=(4.2, 3.0))
    for ax, metric in zip(axes, metrics):
        for label, points in curves[metric].items():
            points = [(k, v) for k, v in points if v is not None]
            if points:
                ks, values = zip(*points)
                ax.plot(ks, values, marker="o", linewidth=1.2, label=label)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("quantizer levels decoded (k)", fontsize=8)
    if metrics:
        axes[0].legend(fontsize=7)
    return _save(fig, path)
