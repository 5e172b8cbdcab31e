"""Signal processing for listening-test stimuli: BS.1534-3 low-pass anchors, BS.1770 loudness, fades.

All functions take and return float32 audio ``[C, S]``.
"""

from __future__ import annotations

import math

import torch
import torchaudio.functional as AF

# The anchors of ITU-R BS.1534-3: the reference low-passed at 3.5 kHz (low-range) and 7 kHz (mid-range).
ANCHOR_CUTOFFS_HZ = (3500.0, 7000.0)
# Headroom kept after loudness matching: no stimulus peaks above -1 dBFS.
PEAK_CEILING = 10 ** (-1 / 20)


def anchor_name(cutoff_hz: float) -> str:
    """Condition name of a low-pass anchor: ``anchor_3500hz``."""
    return f"anchor_{round(cutoff_hz)}hz"


def lowpass(audio: torch.Tensor, sample_rate: int, cutoff_hz: float, transition_hz: float = 100.0) -> torch.Tensor:
    """Zero-phase low-pass in the frequency domain: flat up to ``cutoff - transition``, a raised-cosine
    roll-off to zero at ``cutoff``, nothing above (a far steeper slope than a biquad, as the anchors need).

    audio: ``[C, S]`` -> ``[C, S]``.
    """
    if not 0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie between 0 and Nyquist ({sample_rate / 2} Hz)")
    n = audio.shape[-1]
    spectrum = torch.fft.rfft(audio.double(), n=n)
    freqs = torch.fft.rfftfreq(n, d=1.0 / sample_rate, dtype=torch.float64)
    start = cutoff_hz - transition_hz
    ramp = 0.5 * (1 + torch.cos(math.pi * (freqs - start) / transition_hz))
    gain = torch.where(freqs <= start, torch.ones_like(freqs), torch.where(freqs >= cutoff_hz, 0.0 * freqs, ramp))
    return torch.fft.irfft(spectrum * gain, n=n).to(audio.dtype)


def integrated_loudness(audio: torch.Tensor, sample_rate: int) -> float | None:
    """Integrated loudness in LUFS (ITU-R BS.1770-4, K-weighted and gated; torchaudio); None when the signal
    is silent or shorter than one 400 ms block."""
    if audio.shape[-1] < int(0.4 * sample_rate):
        return None
    value = float(AF.loudness(audio.float(), sample_rate))
    return value if math.isfinite(value) else None


def fade(audio: torch.Tensor, sample_rate: int, fade_ms: float) -> torch.Tensor:
    """Raised-cosine fade-in and fade-out of ``fade_ms`` each (no click at the start, end or loop point)."""
    n = min(round(fade_ms * sample_rate / 1000), audio.shape[-1] // 2)
    if n <= 0:
        return audio
    ramp = 0.5 * (1 - torch.cos(torch.linspace(0, math.pi, n, dtype=audio.dtype)))
    out = audio.clone()
    out[..., :n] *= ramp
    out[..., -n:] *= ramp.flip(0)
    return out


def match_loudness(signals: dict[str, torch.Tensor], sample_rate: int, target_lufs: float) -> tuple[dict, dict]:
    """Gain every signal to ``target_lufs``; if any would then peak above -1 dBFS, lower all of them by the same
    amount, so they stay matched to each other. Signals without a measurable loudness get only that shift.

    Returns (scaled signals, {name: {"loudness_lufs": measured, "gain_db": applied}}).
    """
    measured = {name: integrated_loudness(x, sample_rate) for name, x in signals.items()}
    gains_db = {name: (target_lufs - lufs if lufs is not None else 0.0) for name, lufs in measured.items()}
    peaks = {name: float(x.abs().max()) * 10 ** (gains_db[name] / 20) for name, x in signals.items()}
    top = max(peaks.values(), default=0.0)
    if top > PEAK_CEILING:
        shift = 20 * math.log10(PEAK_CEILING / top)
        gains_db = {name: g + shift for name, g in gains_db.items()}
    out = {name: x * 10 ** (gains_db[name] / 20) for name, x in signals.items()}
    info = {name: {"loudness_lufs": measured[name], "gain_db": gains_db[name]} for name in signals}
    return out, info
