"""Synthetic music for the miniature codec: a train bank and held-out pieces with unseen programs.

Train pieces are :func:`heartcodec_lab.data.synth.compose` pieces (its instrument pools).
Held-out pieces use other seeds (other melodies, keys, tempi) AND General-MIDI programs
outside those pools, so a held-out score measures generalisation to unseen timbres.

Shapes: pieces are float32 ``[2, S]`` at 48 kHz; :class:`SegmentSampler` batches are
mono ``[B, 1, L]`` (the ScalarModel codes each stereo channel on its own) or stereo ``[B, 2, L]``.
"""

from __future__ import annotations

import numpy as np
import torch

from heartcodec_lab.data.synth import (
    BASS_PROGRAMS,
    CHORD_PROGRAMS,
    DRUM_CHANNEL,
    LEAD_PROGRAMS,
    SAMPLE_RATE,
    Note,
    compose,
    render,
)

#: Seeds >= this are never used for training.
HELD_OUT_SEED_BASE = 1_000_000
# (program, pan) pools outside synth.py's lists: organ/e-piano/strings pads, other basses, other leads.
HELD_OUT_CHORDS = [(5, 40), (19, 44), (49, 36), (89, 40)]
HELD_OUT_BASS = [(34, 64), (39, 64)]
HELD_OUT_LEADS = [(68, 84), (40, 80), (71, 86), (81, 88)]


def render_piece(seconds: float, seed: int, held_out: bool = False, peak: float = 0.8) -> torch.Tensor:
    """One piece ``[2, S]`` peaking at ``peak``; ``held_out`` swaps in programs the train set never has."""
    notes, programs = compose(seconds, seed)
    if held_out:
        rng = np.random.default_rng(seed + 7)
        programs = {
            0: HELD_OUT_CHORDS[int(rng.integers(len(HELD_OUT_CHORDS)))],
            1: HELD_OUT_BASS[int(rng.integers(len(HELD_OUT_BASS)))],
            2: HELD_OUT_LEADS[int(rng.integers(len(HELD_OUT_LEADS)))],
        }
    audio = render(notes, programs, seconds, SAMPLE_RATE)
    top = float(np.abs(audio).max())
    if top > 0:
        audio *= peak / top
    return torch.from_numpy(audio)


# The "rich" bank's extra training pools (never the held-out programs above): more timbres and registers.
RICH_CHORDS = CHORD_PROGRAMS + [(1, 40), (16, 44), (52, 40), (61, 44), (90, 40), (50, 36)]
RICH_BASS = BASS_PROGRAMS + [(35, 64), (36, 64), (43, 64), (87, 64)]
RICH_LEADS = LEAD_PROGRAMS + [(74, 84), (57, 80), (66, 86), (22, 82), (79, 84), (42, 80)]
RICH_PADS = [(88, 40), (90, 40), (91, 44), (94, 40), (48, 36), (50, 36), (52, 40)]
RICH_TONES = [(73, 64), (74, 64), (0, 64), (33, 64), (42, 64), (58, 64), (52, 64), (16, 64), (32, 64)]
RICH_STYLES = ("song", "low", "pads", "tones")
_HELD_OUT = {p for p, _ in HELD_OUT_CHORDS + HELD_OUT_BASS + HELD_OUT_LEADS}
assert not _HELD_OUT & {p for p, _ in RICH_CHORDS + RICH_BASS + RICH_LEADS + RICH_PADS + RICH_TONES}


def rich_notes(seconds: float, seed: int) -> tuple[list[Note], dict[int, tuple[int, int]], str]:
    """A piece of the rich bank: (notes, programs, style); the style cycles with the seed.

    * ``song``: :func:`compose` with programs from the wider pools;
    * ``low``: the same with chords and bass an octave lower (bass roots from MIDI 24, 33 Hz);
    * ``pads``: sustained whole-bar pad chords in a low register under an eighth-note bass line, no lead;
    * ``tones``: long single notes (0.4-1.6 s) from MIDI 28 to 88 on one sustained instrument, no drums.
    """
    style = RICH_STYLES[seed % len(RICH_STYLES)]
    rng = np.random.default_rng(seed + 12345)
    notes, _ = compose(seconds, seed)

    def pick(pool):
        return pool[int(rng.integers(len(pool)))]

    programs = {0: pick(RICH_CHORDS), 1: pick(RICH_BASS), 2: pick(RICH_LEADS)}
    if style == "low":
        notes = [Note(n.start, n.end, n.channel, n.key - 12, n.velocity) if n.channel in (0, 1) else n for n in notes]
    elif style == "pads":
        programs[0] = pick(RICH_PADS)
        bars: dict[float, list[Note]] = {}
        for n in notes:
            if n.channel == 0:
                bars.setdefault(n.start, []).append(n)
        out = [n for n in notes if n.channel == DRUM_CHANNEL and n.key != 42]  # kick and snare only
        for start, chord in sorted(bars.items()):
            bar = 4 * (chord[0].end - start) / 3.9
            out += [Note(start, start + bar, 0, n.key - 12, 60) for n in chord]
            root = min(n.key for n in chord) - 24
            for e in range(8):
                key = root + (0, 7, 12, 7)[e % 4]
                out.append(Note(start + e * bar / 8, start + (e + 0.9) * bar / 8, 1, key, 85))
        notes = out
    elif style == "tones":
        programs = {0: pick(RICH_TONES)}
        notes, t = [], 0.0
        while t < seconds:
            dur = float(rng.uniform(0.4, 1.6))
            notes.append(Note(t, t + 0.95 * dur, 0, int(rng.integers(28, 89)), int(rng.integers(70, 115))))
            t += dur
    return [n for n in notes if n.start < seconds], programs, style


def render_rich_piece(seconds: float, seed: int, peak: float = 0.8) -> torch.Tensor:
    """One rich-bank piece ``[2, S]`` peaking at ``peak`` (see :func:`rich_notes`)."""
    notes, programs, _ = rich_notes(seconds, seed)
    audio = render(notes, programs, seconds, SAMPLE_RATE)
    top = float(np.abs(audio).max())
    if top > 0:
        audio *= peak / top
    return torch.from_numpy(audio)


def train_bank(n_pieces: int, seconds: float, seed: int = 0, kind: str = "classic") -> torch.Tensor:
    """``[n_pieces, 2, S]`` training pieces (seeds ``seed .. seed + n - 1``).

    ``kind``: ``"classic"`` (the shipped model's bank: :func:`compose` pieces) or ``"rich"``
    (:func:`rich_notes`: wider program pools, low registers, pads, steady tones).
    """
    if seed + n_pieces > HELD_OUT_SEED_BASE:
        raise ValueError("training seeds would overlap the held-out range")
    if kind not in ("classic", "rich"):
        raise ValueError(f"unknown training bank {kind!r} (classic or rich)")
    make = render_piece if kind == "classic" else render_rich_piece
    return torch.stack([make(seconds, seed + i) for i in range(n_pieces)])


def held_out_pieces(n_pieces: int, seconds: float) -> torch.Tensor:
    """``[n_pieces, 2, S]`` held-out pieces: unseen seeds and unseen programs."""
    return torch.stack([render_piece(seconds, HELD_OUT_SEED_BASE + i, held_out=True) for i in range(n_pieces)])


class SegmentSampler:
    """Random segments of a bank with random gain, from a private generator (reproducible, resumable)."""

    def __init__(
        self,
        bank: torch.Tensor,
        segment: int,
        batch: int,
        seed: int,
        mono: bool = True,
        gain_db: tuple[float, float] = (-12.0, 0.0),
    ):
        if bank.shape[-1] < segment:
            raise ValueError(f"pieces of {bank.shape[-1]} samples are shorter than segments of {segment}")
        self.bank, self.segment, self.batch, self.mono, self.gain_db = bank, segment, batch, mono, gain_db
        self.gen = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])

    def __call__(self) -> torch.Tensor:
        n, _, s = self.bank.shape
        piece = torch.randint(n, (self.batch,), generator=self.gen)
        start = torch.randint(s - self.segment + 1, (self.batch,), generator=self.gen)
        chan = torch.randint(2, (self.batch,), generator=self.gen)
        lo, hi = self.gain_db
        gain = 10 ** ((lo + (hi - lo) * torch.rand(self.batch, generator=self.gen)) / 20)
        out = []
        for i in range(self.batch):
            seg = self.bank[piece[i], :, start[i] : start[i] + self.segment]
            out.append(seg[chan[i] : chan[i] + 1] if self.mono else seg)
        return torch.stack(out) * gain[:, None, None]
