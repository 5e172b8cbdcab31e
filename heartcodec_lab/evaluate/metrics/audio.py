"""Reconstruction metrics between an original clip and its reconstruction.

All functions take ``reference`` and ``estimate`` as float ``[C, S]`` tensors at the same
sample rate; :func:`align` crops both to a common length and channel count first
(codec output is ``T * 3840`` samples, a little longer than the input).
Names carry unit and direction: distances are 0 for identical signals (lower is better),
``si_sdr_db`` is higher-is-better, ``loudness_diff_lu`` is estimate minus reference,
``shimmer_ratio_5_7khz`` is 1 when the 5-7 kHz band energy is reproduced exactly.

Libraries compute what they have: SI-SDR is torchmetrics', the multi-resolution STFT distance
auraloss', loudness torchaudio's (ITU-R BS.1770). Project code is kept only where no library
computes the same quantity: the 5-7 kHz band-energy ratio, and the log-mel L1 (auraloss's
mel-STFT loss uses Slaney filters and clamps the power before the filterbank, so its numbers
differ from the torchaudio HTK log-mel with an additive floor that reports state and compare).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import auraloss
import torch
import torchaudio
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio


def align(reference: torch.Tensor, estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop ``[C, S]`` signals to the shorter length; duplicate a mono side to match stereo."""
    if reference.dim() == 1:
        reference = reference.unsqueeze(0)
    if estimate.dim() == 1:
        estimate = estimate.unsqueeze(0)
    if reference.shape[0] != estimate.shape[0]:
        if 1 not in (reference.shape[0], estimate.shape[0]):
            raise ValueError(f"channel counts differ: {reference.shape[0]} vs {estimate.shape[0]}")
        c = max(reference.shape[0], estimate.shape[0])
        reference, estimate = reference.expand(c, -1), estimate.expand(c, -1)
    n = min(reference.shape[-1], estimate.shape[-1])
    return reference[..., :n].float(), estimate[..., :n].float()


def si_sdr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Scale-invariant SDR in dB (torchmetrics, zero-mean), per channel, then averaged; higher is better.

    The estimate is projected on the reference (``alpha = <e, r> / <r, r>``), so scaling the
    estimate leaves the figure unchanged. For a sine shifted by phase phi: 10 log10(cot^2 phi).
    Computed in float64.
    """
    ref, est = align(reference, estimate)
    value = scale_invariant_signal_distortion_ratio(est.double(), ref.double(), zero_mean=True)
    return float(value.mean())


def loudness_lufs(audio: torch.Tensor, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770, gated) of ``[C, S]``; NaN when shorter than a 400 ms block or silent."""
    if audio.shape[-1] < int(0.4 * sample_rate):
        return math.nan
    value = float(torchaudio.functional.loudness(audio.float(), sample_rate))
    return value if math.isfinite(value) else math.nan


def loudness_diff_lu(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """Integrated loudness of the estimate minus that of the reference, in LU (0 = same loudness)."""
    ref, est = align(reference, estimate)
    return loudness_lufs(est, sample_rate) - loudness_lufs(ref, sample_rate)


def band_energy(audio: torch.Tensor, sample_rate: int, low_hz: float, high_hz: float) -> float:
    """Energy of ``[C, S]`` in ``[low_hz, high_hz)`` summed over channels (whole-signal FFT, Parseval-scaled)."""
    spectrum = torch.fft.rfft(audio.double(), dim=-1)
    freqs = torch.fft.rfftfreq(audio.shape[-1], 1.0 / sample_rate)
    band = (freqs >= low_hz) & (freqs < high_hz)
    return float((spectrum[..., band].abs() ** 2).sum() * 2 / audio.shape[-1])


def shimmer_ratio_5_7khz(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """5-7 kHz band energy of the estimate over that of the reference (>1: added "shimmer").

    NaN when the reference has (numerically) nothing in the band: below 1e-10 of its total energy.
    """
    ref, est = align(reference, estimate)
    ref_energy = band_energy(ref, sample_rate, 5000.0, 7000.0)
    if ref_energy <= 1e-10 * float((ref.double() ** 2).sum()) or ref_energy == 0.0:
        return math.nan
    return band_energy(est, sample_rate, 5000.0, 7000.0) / ref_energy


@dataclass
class MstftParams:
    """Multi-resolution STFT distance (auraloss): spectral convergence + log-magnitude L1, averaged over resolutions."""

    fft_sizes: list[int] = field(default_factory=lambda: [4096, 2048, 1024, 512])
    hop_divisor: int = 4  # hop = fft_size // hop_divisor, window = fft_size (Hann)


@dataclass
class LogMelParams:
    """Log-mel L1: mean |log(mel_e + floor) - log(mel_r + floor)| of magnitude mel spectrograms (natural log)."""

    n_fft: int = 2048
    hop_length: int = 480  # 10 ms at 48 kHz
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None  # None = Nyquist
    power: float = 1.0
    floor: float = 1e-5


def mstft_distance(reference: torch.Tensor, estimate: torch.Tensor, params: MstftParams | None = None) -> float:
    """Multi-resolution STFT distance (lower is better, 0 for identical signals)."""
    params = params or MstftParams()
    ref, est = align(reference, estimate)
    sizes = [n for n in params.fft_sizes if n <= ref.shape[-1]] or [min(params.fft_sizes)]
    loss = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=sizes, hop_sizes=[n // params.hop_divisor for n in sizes], win_lengths=list(sizes)
    )
    with torch.no_grad():
        return float(loss(est.unsqueeze(0), ref.unsqueeze(0)))


def log_mel_l1(
    reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int, params: LogMelParams | None = None
) -> float:
    """Mean absolute difference of log-mel spectrograms (lower is better, 0 for identical signals)."""
    params = params or LogMelParams()
    ref, est = align(reference, estimate)
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        n_mels=params.n_mels,
        f_min=params.f_min,
        f_max=params.f_max,
        power=params.power,
    )
    with torch.no_grad():
        return float((torch.log(mel(est) + params.floor) - torch.log(mel(ref) + params.floor)).abs().mean())


class ReconstructionMetrics:
    """All reconstruction metrics with one set of parameters; :meth:`describe` states them for reports."""

    def __init__(self, sample_rate: int, mstft: MstftParams | None = None, log_mel: LogMelParams | None = None):
        self.sample_rate = sample_rate
        self.mstft = mstft or MstftParams()
        self.log_mel = log_mel or LogMelParams()

    def __call__(self, reference: torch.Tensor, estimate: torch.Tensor) -> dict[str, float]:
        """``[C, S]`` original and reconstruction -> ``{metric_name: value}``."""
        ref, est = align(reference, estimate)
        sr = self.sample_rate
        return {
            "mstft_distance": mstft_distance(ref, est, self.mstft),
            "log_mel_l1": log_mel_l1(ref, est, sr, self.log_mel),
            "si_sdr_db": si_sdr_db(ref, est),
            "loudness_diff_lu": loudness_diff_lu(ref, est, sr),
            "shimmer_ratio_5_7khz": shimmer_ratio_5_7khz(ref, est, sr),
        }

    def describe(self) -> dict:
        return {"sample_rate": self.sample_rate, "mstft": asdict(self.mstft), "log_mel": asdict(self.log_mel)}
