"""The miniature's held-out report (what ``benchmarks/bench_minicodec.py`` prints), as library calls.

* :func:`held_out_table`: chroma similarity, onset correlation, log-mel L1, multi-scale STFT of the
  miniature's full round trip (true encoder -> tokens -> ``detokenize``), of its ScalarModel alone,
  of the random-weight codec and of an unrelated held-out piece at the same loudness;
* :func:`depth_curve`: the same metrics decoding from the first k of the 8 levels
  (``detokenize(num_quantizers=k)``), k = 1..8;
* :func:`tone_probe`: steady harmonic tones (55-880 Hz) through the codec; the reconstruction's pitch
  by librosa's pyin and its error in cents.

Held-out pieces use seeds and General-MIDI programs no training bank has
(:func:`heartcodec_lab.minicodec.data.held_out_pieces`). Audio is ``[2, S]`` float32 at 48 kHz.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from .data import held_out_pieces
from .quality import frame_grid_share, scalar_roundtrip
from .scoring import (
    SR,
    load_miniature,
    mean_metrics,
    metrics,
    roundtrip,
    same_loudness,
    score_encoders,
)

#: Fundamentals of the tone probe (A1 to A5, with the low E2 and the fifths between).
TONE_HZ = (55.0, 82.41, 110.0, 165.0, 220.0, 330.0, 440.0, 660.0, 880.0)


def held_out_table(
    pieces: int,
    seconds: float,
    codec_dir=None,
    encoder_dir=None,
    seed: int = 0,
    plot: str | None = None,
    projections: dict[str, str] | None = None,
    plot_panels: dict | None = None,
) -> dict[str, dict]:
    """``{row: {<METRICS>...}}``; the miniature and each projection row also hold ``agreement``
    (``level_agreement`` with the true encoder's tokens). ``plot`` writes spectrograms of the first piece
    (original, round trip, ScalarModel alone, plus ``plot_panels``: name -> (codec, encoder) of other models)."""
    from heartcodec_lab.codec.loading import finalize
    from heartcodec_lab.codec.random_codec import build_random_codec
    from heartcodec_lab.encoders import build_encoder

    audio = held_out_pieces(pieces, seconds)
    mini, mini_enc = load_miniature(codec_dir, encoder_dir)
    rand = finalize(build_random_codec(), "cpu", torch.float32)
    rand_enc = build_encoder("official", None, rand)
    extra = {name: build_encoder("projection", path, mini) for name, path in (projections or {}).items()}
    scored = score_encoders(mini, mini_enc, extra, audio, seed, true_name="minicodec")
    rows: dict[str, list[dict]] = {"minicodec stage 1": [], "random codec": [], "other piece": []}
    for i, piece in enumerate(audio):
        outs = {
            "minicodec stage 1": scalar_roundtrip(mini.scalar_model, piece),
            "random codec": roundtrip(rand, rand_enc, piece, seed),
            "other piece": same_loudness(piece, audio[(i + 1) % len(audio)]),
        }
        for name, est in outs.items():
            rows[name].append(metrics(piece, est))
        if plot and i == 0:
            from heartcodec_lab.evaluate.plots import spectrogram_comparison

            # the random codec is left out: its loud noise would set the colour scale for all panels
            panels = {
                "original (held-out)": piece,
                "minicodec": roundtrip(mini, mini_enc, piece, seed),
                "minicodec stage 1": outs["minicodec stage 1"],
            }
            for name, (codec, enc) in (plot_panels or {}).items():
                panels[name] = roundtrip(codec, enc, piece, seed)
            spectrogram_comparison(panels, SR, plot, title="held-out piece: original and reconstructions")
    baselines = {name: mean_metrics(rs) for name, rs in rows.items()}
    return {"minicodec": scored.pop("minicodec"), **baselines, **scored}


@torch.no_grad()
def model_rows(codec, encoder, pieces: torch.Tensor, seed: int = 0) -> dict[str, dict]:
    """``{"round trip": ..., "stage 1": ...}`` mean metrics of another miniature (for old-vs-new tables)."""
    full = [metrics(p, roundtrip(codec, encoder, p, seed)) for p in pieces]
    alone = [metrics(p, scalar_roundtrip(codec.scalar_model, p)) for p in pieces]
    return {"round trip": mean_metrics(full), "stage 1": mean_metrics(alone)}


def load_stage1_checkpoint(path):
    """The ScalarModel of a stage-1 training checkpoint (``<run>/stage1.pt`` or a copy), in eval mode.

    The width is read off the weights (the first encoder conv's output channels)."""
    from heartcodec_lab.codec.scalar_model import ScalarModel

    from .config import mini_config

    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        weights = state["modules"]["model"]
        width = weights["encoder.0.parametrizations.weight.original1"].shape[0]
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a stage-1 checkpoint of the miniature (no {err})") from err
    model = ScalarModel(mini_config(width=width))
    model.load_state_dict(weights)
    return model.eval(), int(state["step"])


@torch.no_grad()
def checkpoint_rows(paths, pieces: torch.Tensor) -> dict[str, dict]:
    """``{"<path> (step N)": mean metrics}`` of each stage-1 checkpoint's ScalarModel round trip on ``pieces``."""
    out = {}
    for path in paths:
        model, step = load_stage1_checkpoint(path)
        out[f"{path} (step {step})"] = mean_metrics([metrics(p, scalar_roundtrip(model, p)) for p in pieces])
    return out


def training_cpu_minutes(run_dir) -> dict[str, float]:
    """CPU minutes recorded in ``<run_dir>/stage{1,2}.pt`` (``extra.cpu_s``; absent stages are left out)."""
    from pathlib import Path

    out = {}
    for stage in ("stage1", "stage2"):
        path = Path(run_dir) / f"{stage}.pt"
        if path.is_file():
            extra = torch.load(path, map_location="cpu", weights_only=True).get("extra", {})
            if "cpu_s" in extra:
                out[stage] = float(extra["cpu_s"]) / 60
    return out


def training_probes(run_dir) -> dict[str, list[dict]]:
    """The held-out probes a training run wrote (``<run_dir>/stage{1,2}_eval.jsonl``), ordered by step.

    ``{"stage1": [{"step": ..., <probe>...}, ...], "stage2": [...]}``; absent files are left out. A step
    probed twice (a stretch resumed from a checkpoint before its last probe) keeps its last row, which
    exact resume makes equal to the first.
    """
    from pathlib import Path

    out = {}
    for stage in ("stage1", "stage2"):
        path = Path(run_dir) / f"{stage}_eval.jsonl"
        if not path.is_file():
            continue
        rows: dict[int, dict] = {}
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows[int(row["step"])] = row
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path}, line {n}: not a probe row with a step ({err})") from err
        out[stage] = [rows[k] for k in sorted(rows)]
    return out


@torch.no_grad()
def depth_curve(codec, encoder, pieces: torch.Tensor, seed: int = 0) -> list[dict[str, float]]:
    """Mean metrics over ``pieces [N, 2, S]`` decoding from the first k levels, for k = 1..8 (index k - 1)."""
    levels = codec.config.num_quantizers
    per_k: list[list[dict]] = [[] for _ in range(levels)]
    for piece in pieces:
        tokens = encoder.encode(piece, SR).tokens
        for k in range(1, levels + 1):
            torch.manual_seed(seed)  # the same flow-matching noise at every depth
            per_k[k - 1].append(metrics(piece, codec.detokenize(tokens, num_quantizers=k)))
    return [{"levels": k + 1, **mean_metrics(rows)} for k, rows in enumerate(per_k)]


def harmonic_tone(freq: float, seconds: float = 2.0, amplitude: float = 0.3) -> torch.Tensor:
    """A steady tone ``[2, S]``: harmonics 1-4 at amplitudes 1, 1/2, 1/3, 1/4 (below 20 kHz), 10 ms fades."""
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    x = sum(torch.sin(2 * math.pi * h * freq * t) / h for h in range(1, 5) if h * freq < 20000)
    fade = torch.clamp(torch.minimum(t, seconds - t) / 0.01, max=1.0)
    x = (amplitude * x * fade / x.abs().max()).float()
    return torch.stack([x, x])


def pitch_hz(
    audio: torch.Tensor, sample_rate: int = SR, fmin: float = 40.0, fmax: float = 1200.0, skip_s: float = 0.3
) -> float:
    """Median pyin f0 (Hz) of the voiced frames of a mono mix, after ``skip_s``; NaN when nothing is voiced."""
    import librosa

    mono = audio.mean(0).double().numpy()
    y = librosa.resample(mono, orig_sr=sample_rate, target_sr=22050)[int(skip_s * 22050) :]
    f0, voiced, _ = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=22050, frame_length=4096)
    f0 = f0[voiced & np.isfinite(f0)]
    return float(np.median(f0)) if f0.size else float("nan")


def cents(estimate_hz: float, reference_hz: float) -> float:
    """Pitch error in cents (NaN when the estimate is NaN)."""
    return 1200 * math.log2(estimate_hz / reference_hz) if math.isfinite(estimate_hz) else float("nan")


@torch.no_grad()
def tone_probe(codec, encoder, freqs=TONE_HZ, seconds: float = 2.0, seed: int = 0) -> list[dict[str, float]]:
    """Per tone: pyin pitch (Hz) and error (cents) of the full round trip and of the ScalarModel alone,
    and the share of each output's energy on the 25 Hz frame grid (``quality.frame_grid_share``).

    The input's own pyin pitch is reported too (``input_cents``: the estimator's error on the clean tone).
    """
    out = []
    for f in freqs:
        tone = harmonic_tone(f, seconds)
        full = roundtrip(codec, encoder, tone, seed)
        stage1 = scalar_roundtrip(codec.scalar_model, tone)
        row = {"freq_hz": f, "input_cents": cents(pitch_hz(tone), f)}
        for name, est in (("codec", full), ("stage1", stage1)):
            hz = pitch_hz(est)
            row[f"{name}_hz"], row[f"{name}_cents"] = hz, cents(hz, f)
            row[f"{name}_grid_share"] = frame_grid_share(est)
        out.append(row)
    return out
