"""Quick quality probes used during training (held-out chroma / log-mel), one stage at a time."""

from __future__ import annotations

import math

import torch

from heartcodec_lab.codec.scalar_model import ScalarModel
from heartcodec_lab.evaluate.metrics.audio import log_mel_l1
from heartcodec_lab.evaluate.metrics.music import chroma_similarity as _chroma

SR = 48000


def chroma_similarity(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """The toolkit's chroma similarity, NaN instead of None when a clip is silent."""
    value = _chroma(reference, estimate, sample_rate)
    return float("nan") if value is None else value


@torch.no_grad()
def scalar_roundtrip(model: ScalarModel, audio: torch.Tensor) -> torch.Tensor:
    """Stereo ``[2, S]`` -> each channel through encode + decode (with the real rounding) -> ``[2, S']``."""
    hop = model.hop_length
    s = audio.shape[-1] // hop * hop
    return model.decode(model.encode(audio[None, :, :s].transpose(0, 1)))[:, 0]


@torch.no_grad()
def stage1_probe(model: ScalarModel, pieces: torch.Tensor) -> dict:
    """Held-out pieces ``[N, 2, S]`` -> mean chroma similarity / log-mel L1 of the ScalarModel round trip,
    plus the same figures for an unrelated held-out piece (the baseline), the ninths in use (``levels``)
    and how far a one-sample delay of the input moves the latents (``latent_shift_change``, relative)."""
    was = model.training
    model.eval()
    out = {k: 0.0 for k in ("chroma", "log_mel_l1", "chroma_other", "log_mel_l1_other", "levels")}
    out["latent_shift_change"] = 0.0
    n = len(pieces)
    for i, piece in enumerate(pieces):
        rec = scalar_roundtrip(model, piece)
        other = pieces[(i + 1) % n]
        out["chroma"] += chroma_similarity(piece, rec, SR) / n
        out["log_mel_l1"] += log_mel_l1(piece, rec, SR) / n
        out["chroma_other"] += chroma_similarity(piece, other, SR) / n
        out["log_mel_l1_other"] += log_mel_l1(piece, other, SR) / n
        z = model.encode(piece[:, None, 1920 : piece.shape[-1] // 1920 * 1920])
        out["levels"] += float(torch.unique(torch.round(z * 9)).numel()) / n
        late = model.encode(piece[:, None, 1919 : piece.shape[-1] // 1920 * 1920 - 1])  # one sample later
        out["latent_shift_change"] += float((late - z).norm() / z.norm()) / n
    model.train(was)
    return out


@torch.no_grad()
def true_encoder_tokens(codec, encoder, audio: torch.Tensor) -> torch.Tensor:
    """Stereo ``[2, S]`` at 48 kHz -> tokens ``[8, S // 3840]`` through the true encoder and the RVQ."""
    from heartcodec_lab.codec.quantizer import nearest_codes

    s = audio.shape[-1] // 3840 * 3840
    lat = codec.scalar_model.encode(audio[:, None, :s])  # [2, 128, T25]
    feats = encoder(lat.reshape(1, -1, lat.shape[-1]))
    return nearest_codes(codec.quantizer, feats)[1][0]


@torch.no_grad()
def stage2_probe(codec, encoder, pieces: torch.Tensor, seed: int = 0) -> dict:
    """Held-out ``[N, 2, S]`` -> chroma / log-mel of the full round trip (true encoder -> detokenize)."""
    codec.eval()
    encoder.eval()
    out = {"chroma": 0.0, "log_mel_l1": 0.0, "first_code_kinds": 0.0}
    n = len(pieces)
    for piece in pieces:
        tokens = true_encoder_tokens(codec, encoder, piece)
        torch.manual_seed(seed)
        rec = codec.detokenize(tokens)
        out["chroma"] += chroma_similarity(piece, rec, SR) / n
        out["log_mel_l1"] += log_mel_l1(piece, rec, SR) / n
        out["first_code_kinds"] += float(torch.unique(tokens[0]).numel()) / n
    return out


#: The latent frame rate (48 kHz / 1920): a decoder fed the same latents every frame can only emit its multiples.
FRAME_HZ = 25.0


def frame_grid_share(audio: torch.Tensor, sample_rate: int = SR, tol_hz: float = 2.0, skip_s: float = 0.5) -> float:
    """Share of a steady signal's energy (20 Hz - 5 kHz, after ``skip_s``) within ``tol_hz`` of a multiple of 25 Hz.

    A time-invariant decoder whose (rounded) latents do not change from frame to frame outputs a
    signal periodic in the 1920-sample frame, so all its energy lies on that grid (share ~1); a tone
    off the grid (110 Hz, 440 Hz) scores near 0 when reproduced. A flat spectrum scores ~0.15.
    ``audio``: ``[S]`` or ``[C, S]`` (channels averaged).
    """
    x = audio.double().reshape(-1, audio.shape[-1]).mean(0)[int(skip_s * sample_rate) :]
    x = x - x.mean()
    power = torch.fft.rfft(x * torch.hann_window(x.numel(), dtype=x.dtype)).abs() ** 2
    freqs = torch.fft.rfftfreq(x.numel(), 1 / sample_rate)
    band = (freqs > 20) & (freqs < 5000)
    on_grid = band & ((freqs / FRAME_HZ - torch.round(freqs / FRAME_HZ)).abs() * FRAME_HZ < tol_hz)
    return float(power[on_grid].sum() / power[band].sum().clamp_min(1e-30))


@torch.no_grad()
def tone_fidelity(model: ScalarModel, freq: float, seconds: float = 2.0, amplitude: float = 0.3) -> dict:
    """A steady tone (``freq`` + its octave at a third of the amplitude) through the ScalarModel round trip.

    Returns ``energy_ratio`` (output / input energy), ``in_tone_share``: the share of the output's
    energy (after the first 0.5 s, below 5 kHz) within a semitone of ``freq`` or ``2 * freq``: near 1
    when the decoder reproduces the note, near 0 when it emits something else (e.g. frame-rate buzz),
    and ``frame_grid_share`` (:func:`frame_grid_share` of the output).
    """
    t = torch.arange(int(seconds * SR)) / SR
    x = amplitude * torch.sin(2 * math.pi * freq * t) + amplitude / 3 * torch.sin(4 * math.pi * freq * t)
    hop = model.hop_length
    x = x[: x.numel() // hop * hop][None, None]
    was = model.training
    model.eval()
    y = model.decode(model.encode(x))[0, 0]
    model.train(was)
    skip = SR // 2
    win = torch.hann_window(y.numel() - skip)
    out = torch.fft.rfft(y[skip:] * win).abs() ** 2
    ref = torch.fft.rfft(x[0, 0, skip:] * win).abs() ** 2
    freqs = torch.fft.rfftfreq(y.numel() - skip, 1 / SR)
    band = freqs < 5000
    near = torch.zeros_like(band)
    for f in (freq, 2 * freq):
        near |= (freqs > f * 2 ** (-1 / 12)) & (freqs < f * 2 ** (1 / 12))
    total = float(out[band].sum())
    return {
        "energy_ratio": float(out.sum() / ref.sum()),
        "in_tone_share": float(out[near].sum()) / max(total, 1e-20),
        "frame_grid_share": frame_grid_share(y),
    }
