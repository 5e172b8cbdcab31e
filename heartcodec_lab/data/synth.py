"""Synthetic multi-instrument music for demos and tests, rendered offline.

A seed fixes everything: tempo, key, chord progression, instruments, melody and drum
pattern. Notes are rendered with the General MIDI soundfont that ships with pretty_midi
(TimGM6mb.sf2) through tinysoundfont, at 48 kHz stereo. Chorus is switched off because it
makes left and right cancel in a mono downmix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from heartcodec_lab.audio.rates import SAMPLE_RATE

DRUM_CHANNEL = 9
# (General MIDI program, pan 0..127) per role; one is drawn per piece.
CHORD_PROGRAMS = [(0, 40), (4, 44), (48, 36), (88, 40), (24, 48)]
BASS_PROGRAMS = [(33, 64), (38, 64), (32, 64)]
LEAD_PROGRAMS = [(73, 84), (56, 80), (80, 88), (65, 86), (11, 82)]
MAJOR = [0, 2, 4, 5, 7, 9, 11]
MINOR = [0, 2, 3, 5, 7, 8, 10]
PROGRESSIONS = [[0, 4, 5, 3], [0, 5, 3, 4], [5, 3, 0, 4], [0, 3, 4, 4], [1, 4, 0, 0]]


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    end: float
    channel: int
    key: int
    velocity: int


@lru_cache(maxsize=1)
def soundfont_path() -> str:
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.exists():
        raise FileNotFoundError(f"General MIDI soundfont not found at {path}")
    return str(path)


def compose(seconds: float, seed: int) -> tuple[list[Note], dict[int, tuple[int, int]]]:
    """A short piece as notes plus ``{channel: (program, pan)}``; deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    bpm = float(rng.uniform(84, 140))
    beat = 60.0 / bpm
    root = 48 + int(rng.integers(0, 12))
    scale = MAJOR if rng.random() < 0.6 else MINOR
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    programs = {
        0: CHORD_PROGRAMS[int(rng.integers(len(CHORD_PROGRAMS)))],
        1: BASS_PROGRAMS[int(rng.integers(len(BASS_PROGRAMS)))],
        2: LEAD_PROGRAMS[int(rng.integers(len(LEAD_PROGRAMS)))],
    }

    def degree(d: int, octave: int = 0) -> int:
        return root + 12 * (octave + d // 7) + scale[d % 7]

    notes: list[Note] = []
    n_bars = int(np.ceil(seconds / (4 * beat))) + 1
    for bar in range(n_bars):
        t0 = bar * 4 * beat
        chord = progression[bar % len(progression)]
        for d in (chord, chord + 2, chord + 4):  # triad, held for the bar
            notes.append(Note(t0, t0 + 3.9 * beat, 0, degree(d, 1), 70))
        for b in range(4):  # bass on each beat, root or fifth
            d = chord if b % 2 == 0 else chord + 4
            notes.append(Note(t0 + b * beat, t0 + (b + 0.9) * beat, 1, degree(d, -1), 90))
        t, pitch = t0, chord + 7
        while t < t0 + 4 * beat - 1e-6:  # melody: random walk on the scale
            dur = beat * float(rng.choice([0.5, 0.5, 1.0, 1.5]))
            pitch = int(np.clip(pitch + rng.integers(-2, 3), 2, 16))
            if rng.random() > 0.15:
                notes.append(Note(t, t + 0.95 * dur, 2, degree(pitch, 1), int(rng.integers(70, 110))))
            t += dur
        for e in range(8):  # drums: kick, snare, closed hi-hat in eighths
            te = t0 + e * beat / 2
            notes.append(Note(te, te + 0.1, DRUM_CHANNEL, 42, 60 + int(rng.integers(0, 20))))
            if e in (0, 4) or (e == 6 and rng.random() < 0.4):
                notes.append(Note(te, te + 0.1, DRUM_CHANNEL, 36, 110))
            if e in (2, 6):
                notes.append(Note(te, te + 0.1, DRUM_CHANNEL, 38, 100))
    notes = [n for n in notes if n.start < seconds]
    return notes, programs


def render(
    notes: list[Note], programs: dict[int, tuple[int, int]], seconds: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Render notes to float32 ``[2, round(seconds * sample_rate)]``."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate, gain=-6.0)
    sfid = synth.sfload(soundfont_path())
    for chan, (program, pan) in programs.items():
        synth.program_select(chan, sfid, 0, program)
        synth.control_change(chan, 10, pan)
        synth.control_change(chan, 93, 0)  # chorus off
    synth.program_select(DRUM_CHANNEL, sfid, 128, 0, is_drums=True)
    synth.control_change(DRUM_CHANNEL, 93, 0)

    total = int(round(seconds * sample_rate))
    events = [(round(n.start * sample_rate), 1, n) for n in notes]
    events += [(round(n.end * sample_rate), 0, n) for n in notes]  # note-offs first at equal times
    events.sort(key=lambda e: (e[0], e[1], e[2].channel, e[2].key))
    out = np.zeros((total, 2), dtype=np.float32)
    pos = 0
    for at, is_on, note in events:
        at = min(at, total)
        if at > pos:
            out[pos:at] = np.frombuffer(synth.generate(at - pos), dtype=np.float32).reshape(-1, 2)
            pos = at
        if is_on:
            synth.noteon(note.channel, note.key, note.velocity)
        else:
            synth.noteoff(note.channel, note.key)
    if pos < total:
        out[pos:] = np.frombuffer(synth.generate(total - pos), dtype=np.float32).reshape(-1, 2)
    return np.ascontiguousarray(out.T)


def synth_music(seconds: float, seed: int, sample_rate: int = SAMPLE_RATE, peak: float = 0.8) -> torch.Tensor:
    """Deterministic music: float32 ``[2, round(seconds * sample_rate)]`` peaking at ``peak``."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    notes, programs = compose(seconds, seed)
    audio = render(notes, programs, seconds, sample_rate)
    top = float(np.abs(audio).max())
    if top > 0:
        audio *= peak / top
    return torch.from_numpy(audio)


def write_synth_folder(
    directory: str | Path, n: int, seconds: float, seed: int = 0, sample_rate: int = SAMPLE_RATE, ext: str = ".flac"
) -> list[Path]:
    """Write ``n`` pieces ``song_000.flac``... (seeds ``seed``, ``seed+1``...) with tag sidecars; returns paths."""
    from heartcodec_lab.audio import save_audio

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = directory / f"song_{i:03d}{ext}"
        if not path.exists():
            save_audio(path, synth_music(seconds, seed + i, sample_rate), sample_rate)
        tags = path.with_suffix(".txt")
        if not tags.exists():
            tags.write_text(describe_tags(seed + i) + "\n")
        paths.append(path)
    return paths


def describe_tags(seed: int) -> str:
    """Comma-separated tags matching what :func:`compose` draws for ``seed``."""
    rng = np.random.default_rng(seed)
    bpm = float(rng.uniform(84, 140))
    rng.integers(0, 12)
    mode = "major" if rng.random() < 0.6 else "minor"
    tempo = "upbeat" if bpm > 115 else "mid-tempo"
    return f"instrumental, synthetic, {mode}, {tempo}"
