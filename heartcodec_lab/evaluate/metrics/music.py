"""Tonal and rhythmic fidelity between an original and its reconstruction, without model weights (librosa).

All three work on the mono mix resampled to :data:`ANALYSIS_RATE`; both signals are cut to the
shorter length first.

* ``chroma_similarity``: mean over frames of the cosine similarity of the 12-bin chroma vectors
  (librosa ``chroma_stft``); frames where either signal is silent are left out. 1 = same pitch
  classes throughout (higher is better); a transposed signal scores lower.
* ``onset_corr``: Pearson correlation of the onset-strength envelopes (spectral flux,
  ``librosa.onset.onset_strength``, 512-sample hop). 1 = the same attacks at the same times
  (higher is better); a time-shifted signal scores lower.
* ``tempo_bpm_original`` / ``tempo_bpm_reconstruction``: global tempo estimates
  (``librosa.feature.tempo``) and ``tempo_diff_bpm`` = |difference| in BPM (lower is better).
"""

from __future__ import annotations

import librosa
import numpy as np
import torch

from heartcodec_lab.audio import resample

ANALYSIS_RATE = 22050
HOP = 512
_SILENT = 1e-8

MUSIC_METRICS = ("chroma_similarity", "onset_corr", "tempo_diff_bpm")


def _mono(audio: torch.Tensor | np.ndarray, sample_rate: int) -> np.ndarray:
    audio = torch.as_tensor(audio, dtype=torch.float32)
    if audio.dim() == 2:
        audio = audio.mean(0)
    if sample_rate != ANALYSIS_RATE:
        audio = resample(audio[None], sample_rate, ANALYSIS_RATE)[0]
    return audio.numpy().astype(np.float32)


def _pair(a, b, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _mono(a, sample_rate), _mono(b, sample_rate)
    n = min(a.size, b.size)
    return a[:n], b[:n]


def chroma(y: np.ndarray) -> np.ndarray:
    """``[12, frames]`` chroma energies (not normalised per frame)."""
    return librosa.feature.chroma_stft(y=y, sr=ANALYSIS_RATE, hop_length=HOP, n_fft=4096, norm=None, tuning=0.0)


def chroma_similarity(original, reconstruction, sample_rate: int) -> float | None:
    """Mean frame-wise cosine similarity of chroma vectors (None if no frame has sound in both)."""
    a, b = _pair(original, reconstruction, sample_rate)
    ca, cb = chroma(a), chroma(b)
    na, nb = np.linalg.norm(ca, axis=0), np.linalg.norm(cb, axis=0)
    voiced = (na > _SILENT) & (nb > _SILENT)
    if not voiced.any():
        return None
    cos = (ca[:, voiced] * cb[:, voiced]).sum(0) / (na[voiced] * nb[voiced])
    return float(cos.mean())


def onset_envelope(y: np.ndarray) -> np.ndarray:
    return librosa.onset.onset_strength(y=y, sr=ANALYSIS_RATE, hop_length=HOP)


def onset_corr(original, reconstruction, sample_rate: int) -> float | None:
    """Pearson correlation of onset-strength envelopes (None when either envelope is constant)."""
    a, b = _pair(original, reconstruction, sample_rate)
    ea, eb = onset_envelope(a), onset_envelope(b)
    if ea.std() < _SILENT or eb.std() < _SILENT:
        return None
    return float(np.corrcoef(ea, eb)[0, 1])


def tempo_bpm(audio, sample_rate: int) -> float:
    """Global tempo estimate in BPM (librosa's autocorrelation tempogram with its 120 BPM prior)."""
    y = _mono(audio, sample_rate)
    return float(librosa.feature.tempo(onset_envelope=onset_envelope(y), sr=ANALYSIS_RATE, hop_length=HOP)[0])


def music_metrics(original, reconstruction, sample_rate: int) -> dict[str, float | None]:
    """All of the above for one pair of ``[C, S]`` signals at ``sample_rate``."""
    a, b = _pair(original, reconstruction, sample_rate)
    t_a, t_b = tempo_bpm(a, ANALYSIS_RATE), tempo_bpm(b, ANALYSIS_RATE)
    return {
        "chroma_similarity": chroma_similarity(a, b, ANALYSIS_RATE),
        "onset_corr": onset_corr(a, b, ANALYSIS_RATE),
        "tempo_bpm_original": t_a,
        "tempo_bpm_reconstruction": t_b,
        "tempo_diff_bpm": abs(t_a - t_b),
    }
