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

from heartcodec_lab.data.synth import SAMPLE_RATE, compose, render

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


def train_bank(n_pieces: int, seconds: float, seed: int = 0) -> torch.Tensor:
    """``[n_pieces, 2, S]`` training pieces (seeds ``seed .. seed + n - 1``)."""
    if seed + n_pieces > HELD_OUT_SEED_BASE:
        raise ValueError("training seeds would overlap the held-out range")
    return torch.stack([render_piece(seconds, seed + i) for i in range(n_pieces)])


def held_out_pieces(n_pieces: int, seconds: float) -> torch.Tensor:
    """``[n_pieces, 2, S]`` held-out pieces: unseen seeds and unseen programs."""
    return torch.stack([render_piece(seconds, HELD_OUT_SEED_BASE + i, held_out=True) for i in range(n_pieces)])


class SegmentSampler:
    """Random segments of a bank with random gain, from a private generator (reproducible, resumable)."""

    def __init__(self, bank: torch.Tensor, segment: int, batch: int, seed: int, mono: bool = True,
                 gain_db: tuple[float, float] = (-12.0, 0.0)):
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
