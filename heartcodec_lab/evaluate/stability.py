"""Token stability: how far an encoder agrees with itself under changes nobody hears.

Exact token agreement between a student and its teacher means little on its own: deep RVQ levels of a
real encoder flip under -60 dB of noise or a one-sample delay, so no student can agree with the teacher
more often than the teacher agrees with itself. This module measures that ceiling for any
:class:`~heartcodec_lab.encoders.base.AudioEncoder` (no Hydra, no Lightning) and reads agreement
figures against it.

The documented changes (:data:`DEFAULT_CHANGES`, all applied to the input audio ``[C, S]`` at its own rate):

==================  ====================================================================================
``gain_+0.01dB``    multiply by 10^(0.01/20) (and ``gain_-0.01dB``)
``noise_-80dB``     add white Gaussian noise 80 dB below the clip's RMS (seeded; and ``noise_-60dB``)
``delay_1``         delay by one input sample (21 us at 48 kHz): one zero in front, length S + 1
``delay_half``      delay by half a token frame (40 ms): the worst case of a sub-frame shift
``resample_44k1``   resampling round trip through 44.1 kHz with torchaudio (through 48 kHz for 44.1 kHz input)
``ogg_vorbis``      lossy round trip through OGG/Vorbis at soundfile's highest quality (skipped with a note
                    when libsndfile lacks it); ``mp3`` (MPEG layer III) likewise
==================  ====================================================================================

Frames are aligned for delays: a delay of ``d`` input samples moves content by ``d / hop`` token frames
(``hop = sample_rate / 12.5``); frame ``i + k`` of the changed audio is compared with frame ``i`` of the
original, ``k = ceil(d / hop - 1/2)`` (half a frame rounds down to 0: a half-frame delay compares the
same frame index, half of whose content moved to the next frame).

Agreement figures are fractions in [0, 1] per level (``q0`` first); :func:`format_against_ceiling`
prints them as percentages.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from heartcodec_lab.evaluate.metrics.agreement import (
    match_counts,
    match_rates,
    sum_match_counts,
)

TOKEN_RATE_HZ = 12.5
CEILING_CHANGE = "noise_-60dB"


@dataclass(frozen=True)
class Change:
    """One change nobody hears: ``apply(audio [C, S], sample_rate, generator) -> audio [C, S']``.

    ``delay``: how many input samples the change delays the content by (for frame alignment).
    ``available``: ``None`` when it can run here, else why not (the measurement skips it with this note).
    """

    name: str
    description: str
    apply: Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
    delay: Callable[[int], int] = field(default=lambda sample_rate: 0)
    available: Callable[[], str | None] = field(default=lambda: None)


def gain(db: float) -> Change:
    factor = 10 ** (db / 20)
    return Change(f"gain_{db:+g}dB", f"gain of {db:+g} dB (x{factor:.6f})", lambda a, sr, g: a * factor)


def noise(db: float) -> Change:
    """White Gaussian noise ``db`` below the clip's RMS (over all channels), from the given generator."""

    def apply(audio, sr, gen):
        rms = audio.double().pow(2).mean().sqrt().float()
        return audio + torch.randn(audio.shape, generator=gen) * rms * 10 ** (db / 20)

    return Change(f"noise_{db:g}dB", f"white noise {-db:g} dB below the signal RMS (seeded)", apply)


def delay(samples: int | None = None, frames: float | None = None, name: str | None = None) -> Change:
    """Delay by ``samples`` input samples, or by ``frames`` token frames (rounded to samples): zeros in front."""
    if (samples is None) == (frames is None):
        raise ValueError("give exactly one of samples= or frames=")

    def count(sample_rate: int) -> int:
        return int(samples) if samples is not None else round(frames * sample_rate / TOKEN_RATE_HZ)

    def apply(audio, sr, gen):
        return torch.nn.functional.pad(audio, (count(sr), 0))

    label = name or (f"delay_{samples}" if samples is not None else f"delay_{frames:g}_frame")
    what = f"{samples} sample(s)" if samples is not None else f"{frames:g} token frame(s)"
    return Change(label, f"delay of {what} (zeros in front, frames aligned)", apply, delay=count)


def resample_round_trip(via: int = 44100, fallback: int = 48000, name: str = "resample_44k1") -> Change:
    """Input rate -> ``via`` -> input rate with torchaudio (``fallback`` when the input is at ``via``)."""

    def apply(audio, sr, gen):
        import torchaudio.functional as AF

        mid = via if sr != via else fallback
        back = AF.resample(AF.resample(audio, sr, mid), mid, sr)
        return _same_length(back, audio.shape[-1])

    return Change(name, f"resampling round trip through {via} Hz (torchaudio, windowed sinc)", apply)


def _lossy_available(fmt: str, subtype: str) -> str | None:
    try:
        import soundfile as sf
    except ImportError:
        return "soundfile is not installed"
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        return f"libsndfile {sf.__libsndfile_version__} here cannot write {fmt}/{subtype}"
    return None


def lossy_round_trip(fmt: str = "OGG", subtype: str = "VORBIS", name: str = "ogg_vorbis") -> Change:
    """Encode to ``fmt``/``subtype`` in memory with soundfile at its highest quality and decode back."""

    def apply(audio, sr, gen):
        import soundfile as sf

        buf = io.BytesIO()
        # compression_level 0: the lowest compression / highest quality libsndfile offers
        sf.write(buf, audio.t().numpy(), sr, format=fmt, subtype=subtype, compression_level=0.0)
        buf.seek(0)
        data, _ = sf.read(buf, dtype="float32", always_2d=True)
        return _same_length(torch.from_numpy(data).t().contiguous(), audio.shape[-1])

    return Change(
        name,
        f"lossy round trip through {fmt}/{subtype} (soundfile, highest quality)",
        apply,
        available=lambda: _lossy_available(fmt, subtype),
    )


def _same_length(audio: torch.Tensor, length: int) -> torch.Tensor:
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return torch.nn.functional.pad(audio, (0, length - audio.shape[-1]))


DEFAULT_CHANGES: tuple[Change, ...] = (
    gain(0.01),
    gain(-0.01),
    noise(-80),
    noise(-60),
    delay(samples=1, name="delay_1"),
    delay(frames=0.5, name="delay_half"),
    resample_round_trip(44100, name="resample_44k1"),
    lossy_round_trip("OGG", "VORBIS", "ogg_vorbis"),
    lossy_round_trip("MP3", "MPEG_LAYER_III", "mp3"),
)
CHANGES: dict[str, Change] = {c.name: c for c in DEFAULT_CHANGES}


def resolve_changes(changes: Iterable[str | Change] | None) -> list[Change]:
    """Names (of :data:`CHANGES`) or :class:`Change` objects -> changes; ``None``: all of :data:`DEFAULT_CHANGES`."""
    if changes is None:
        return list(DEFAULT_CHANGES)
    out = []
    for c in changes:
        if isinstance(c, Change):
            out.append(c)
        elif c in CHANGES:
            out.append(CHANGES[c])
        else:
            raise ValueError(f"unknown change {c!r}; choose from {sorted(CHANGES)} or pass a Change")
    return out


def frame_shift(delay_samples: int, sample_rate: int) -> int:
    """Token frames a delay of ``delay_samples`` moves content by: ``ceil(d / hop - 1/2)``, hop = sr / 12.5."""
    return max(0, math.ceil(delay_samples * TOKEN_RATE_HZ / sample_rate - 0.5))


def aligned_counts(changed: torch.Tensor, original: torch.Tensor, shift: int) -> dict:
    """:func:`match_counts` of tokens ``[Q, T']`` of the changed audio vs ``[Q, T]`` of the original,
    frame ``i + shift`` against frame ``i``."""
    return match_counts(changed[:, shift:], original)


def _project_in(encoder) -> Callable[[torch.Tensor], torch.Tensor]:
    rvq = getattr(encoder, "quantizer", None)
    return rvq.project_in if hasattr(rvq, "project_in") else (lambda x: x)


@torch.no_grad()
def rvq_input(encoder, features: torch.Tensor) -> torch.Tensor:
    """Features ``[T, 512]`` -> the RVQ's input space ``[T, codebook_dim]`` (after ``project_in``), float32.

    An encoder without a ResidualVQ (a stand-in) leaves the features as they are."""
    rvq = getattr(encoder, "quantizer", None)
    weight = next(rvq.parameters(), None) if isinstance(rvq, torch.nn.Module) else None
    device = weight.device if weight is not None else features.device
    with torch.autocast(device_type=device.type, enabled=False):
        return _project_in(encoder)(features.to(device).float()).cpu()


def _error_sums(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    n = min(a.shape[0], b.shape[0])
    return float((a[:n] - b[:n]).double().pow(2).sum()), float(b[:n].double().pow(2).sum())


def _clip_generator(seed: int, change: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + change) % (2**63 - 1))


def split_changes(changes: Iterable[str | Change] | None) -> tuple[list[Change], dict[str, str]]:
    """(changes that can run here, ``{name: why not}`` for the others)."""
    todo = resolve_changes(changes)
    notes = {c.name: c.available() for c in todo}
    return [c for c in todo if notes[c.name] is None], {n: why for n, why in notes.items() if why is not None}


@torch.no_grad()
def clip_stability(
    encoder, clip: torch.Tensor, sample_rate: int, changes: Sequence[Change], seed: int = 0, base=None
) -> dict:
    """One clip ``[C, S]``: ``{name: {"frames", "per_quantizer", "first_k", "feature_sq_change", "feature_sq"}}``
    (integer match counts and squared-feature sums in the RVQ's input space, to be added over clips).

    ``base``: the clip's :class:`EncodedAudio` when already computed. Noise of change ``j`` is drawn from a
    generator seeded with ``(seed, j)``: give each clip its own ``seed``.
    """
    clip = clip.float().cpu()
    if clip.dim() == 1:
        clip = clip[None]
    base = encoder.encode(clip, sample_rate) if base is None else base
    base_in = rvq_input(encoder, base.features)
    out = {}
    for j, change in enumerate(changes):
        changed = encoder.encode(change.apply(clip, sample_rate, _clip_generator(seed, j)), sample_rate)
        shift = frame_shift(change.delay(sample_rate), sample_rate)
        num, den = _error_sums(rvq_input(encoder, changed.features)[shift:], base_in)
        out[change.name] = {
            **aligned_counts(changed.tokens.cpu(), base.tokens.cpu(), shift),
            "feature_sq_change": num,
            "feature_sq": den,
        }
    return out


def sum_stability(blocks: Sequence[Mapping], descriptions: Mapping[str, str] | None = None) -> dict:
    """:func:`clip_stability` results of several clips -> per change: summed counts, ``match_rate`` and
    ``match_rate_first_k`` (fractions per level) and ``feature_change`` (relative RMS change in the RVQ's
    input space), frame-weighted. Changes missing from some clips are summed over the clips that have them."""
    names = list(dict.fromkeys(name for block in blocks for name in block))
    descriptions = descriptions or {c.name: c.description for c in DEFAULT_CHANGES}
    result = {}
    for name in names:
        parts = [block[name] for block in blocks if name in block]
        total = sum_match_counts(parts)
        num, den = sum(p["feature_sq_change"] for p in parts), sum(p["feature_sq"] for p in parts)
        result[name] = {
            "description": descriptions.get(name, name),
            **total,
            **match_rates(total),
            "feature_change": math.sqrt(num / den) if den > 0 else float("nan"),
        }
    return result


@torch.no_grad()
def measure_stability(
    encoder,
    clips: Sequence[torch.Tensor],
    sample_rate: int,
    changes: Iterable[str | Change] | None = None,
    seed: int = 0,
) -> dict:
    """Self-agreement of ``encoder`` per level under each change, over ``clips`` (``[C, S]`` each).

    Returns ``{"changes": {name: {"description", "frames", "per_quantizer", "first_k" (counts),
    "match_rate", "match_rate_first_k" (fractions per level), "feature_change" (relative RMS change of
    the features in the RVQ's input space)}}, "skipped": {name: why}, "sample_rate", "clips", "seed"}``.
    Counts are summed over clips (frame-weighted). Noise is seeded per (seed, clip, change).
    """
    runnable, skipped = split_changes(changes)
    blocks = [clip_stability(encoder, clip, sample_rate, runnable, seed * 1009 + i) for i, clip in enumerate(clips)]
    result = sum_stability(blocks, {c.name: c.description for c in runnable})
    return {
        "changes": result,
        "skipped": skipped,
        "sample_rate": int(sample_rate),
        "clips": len(clips),
        "seed": int(seed),
    }


def _levels(rates: Sequence[float]) -> dict[str, float]:
    return {f"q{q}": float(r) for q, r in enumerate(rates)}


def teacher_ceiling(
    encoder,
    audio_list: Sequence[torch.Tensor],
    sample_rate: int = 48000,
    change: str | Change | Sequence[str | Change] = CEILING_CHANGE,
    seed: int = 0,
) -> dict[str, float]:
    """The teacher's own agreement per level, ``{"q0": 0.985, ..., "q7": ...}`` (fractions in [0, 1]).

    ``change``: the change that defines the ceiling (default ``noise_-60dB``, the issue's yardstick),
    or several, in which case each level's ceiling is the lowest self-agreement among them.
    """
    changes = [change] if isinstance(change, (str, Change)) else list(change)
    measured = measure_stability(encoder, audio_list, sample_rate, changes, seed)
    if measured["skipped"]:
        raise ValueError(f"teacher_ceiling: cannot run {measured['skipped']}")
    rates = [block["match_rate"] for block in measured["changes"].values()]
    return _levels([min(level) for level in zip(*rates)])


@torch.no_grad()
def relative_feature_error(student, reference, audio_list: Sequence[torch.Tensor], sample_rate: int = 48000) -> float:
    """``||P(f_student) - P(f_reference)|| / ||P(f_reference)||`` over all frames of ``audio_list``.

    ``P`` is the reference's RVQ ``project_in`` (the space where codes are chosen); both encoders must
    emit features of the same width and, for the figure to mean anything, share the reference's RVQ.
    """
    num = den = 0.0
    for clip in audio_list:
        fs = student.encode(clip, sample_rate).features
        fr = reference.encode(clip, sample_rate).features
        if fs.shape[-1] != fr.shape[-1]:
            raise ValueError(f"feature widths differ: student {fs.shape[-1]} vs reference {fr.shape[-1]}")
        a, b = _error_sums(rvq_input(reference, fs), rvq_input(reference, fr))
        num, den = num + a, den + b
    return math.sqrt(num / den) if den > 0 else float("nan")


def _as_levels(values: Mapping[str, float] | Sequence[float]) -> dict[str, float]:
    return dict(values) if isinstance(values, Mapping) else _levels(values)


def format_against_ceiling(
    agreement: Mapping[str, float] | Sequence[float],
    ceiling: Mapping[str, float] | Sequence[float],
    levels: Iterable[int] | None = None,
    sep: str = "; ",
) -> str:
    """``"q0: 92 % of a ceiling of 98 %; q1: ..."`` from per-level fractions (lists or ``{"q0": ...}``)."""
    got, top = _as_levels(agreement), _as_levels(ceiling)
    keys = [f"q{q}" for q in levels] if levels is not None else [k for k in got if k in top]
    return sep.join(f"{k}: {_pct(got[k])} % of a ceiling of {_pct(top[k])} %" for k in keys)


def _pct(fraction: float) -> str:
    value = 100 * fraction
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def stability_table(measured: Mapping, levels: int | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a :func:`measure_stability` result: one row per change, percent per level."""
    blocks = measured["changes"]
    q = levels or max((len(b["match_rate"]) for b in blocks.values()), default=8)
    header = ["change", *[f"q{i} %" for i in range(q)], f"all {q} %", "feature change %"]
    rows = [
        [
            name,
            *[f"{100 * r:.1f}" for r in b["match_rate"][:q]],
            f"{100 * b['match_rate_first_k'][q - 1]:.1f}",
            f"{100 * b['feature_change']:.2f}",
        ]
        for name, b in blocks.items()
    ]
    return header, rows
