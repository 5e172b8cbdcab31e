"""Known answers for the lyric error rates and the tonal / rhythmic fidelity metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from heartcodec_lab.evaluate.metrics.lyrics import cer, error_rates, normalize_lyrics, wer
from heartcodec_lab.evaluate.metrics.music import (
    ANALYSIS_RATE,
    chroma_similarity,
    music_metrics,
    onset_corr,
    tempo_bpm,
)

SR = ANALYSIS_RATE


def test_normalisation_strips_markers_case_and_punctuation():
    assert normalize_lyrics("[Verse]\nHello, World!  [chorus] Don't STOP…") == "hello world dont stop"
    assert normalize_lyrics("[intro]") == ""
    assert normalize_lyrics("Café—naïve") == "café naïve"


def test_word_and_character_error_rates():
    assert wer("the cat sat", "the cat sat") == 0.0
    assert wer("[verse] The cat, sat!", "the cat sat") == 0.0  # same after normalisation
    assert wer("the cat sat on the mat", "the cat sit on mat") == pytest.approx(2 / 6)  # 1 sub + 1 del
    assert wer("a b", "a b c d") == pytest.approx(1.0)  # two insertions over two reference words
    assert cer("abcd", "abed") == pytest.approx(1 / 4)
    assert cer("ab cd", "abcd") == pytest.approx(1 / 5)  # the space is a character
    assert wer("hello", "") == 1.0 and cer("hello", "") == 1.0
    assert wer("[instrumental]", "la la") is None  # undefined against an empty reference
    assert error_rates("a b", "a c", prefix="lyrics_") == {"lyrics_wer": 0.5, "lyrics_cer": pytest.approx(1 / 3)}


def _tones(freqs, seconds=3.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return torch.from_numpy(sum(np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32) * 0.2)[None]


def _clicks(bpm: float, seconds: float = 12.0, sr: int = SR, offset: float = 0.0):
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    burst = np.hanning(256).astype(np.float32) * np.random.default_rng(0).standard_normal(256).astype(np.float32)
    for start in np.arange(offset, seconds - 0.1, 60.0 / bpm):
        i = int(start * sr)
        y[i : i + 256] += burst
    return torch.from_numpy(y)[None]


C_MAJOR = (261.63, 329.63, 392.00)


def test_chroma_similarity_identity_and_transposition():
    chord = _tones(C_MAJOR)
    assert chroma_similarity(chord, chord, SR) == pytest.approx(1.0, abs=1e-6)
    # the same signal at 48 kHz stereo: rate and channels are handled
    stereo48 = torch.cat([_tones(C_MAJOR, sr=48000)] * 2)
    assert chroma_similarity(stereo48, stereo48, 48000) == pytest.approx(1.0, abs=1e-6)
    up_a_tritone = _tones([f * 2 ** (6 / 12) for f in C_MAJOR])
    up_an_octave = _tones([f * 2 for f in C_MAJOR])
    assert chroma_similarity(chord, up_a_tritone, SR) < 0.5
    assert chroma_similarity(chord, up_an_octave, SR) > 0.9  # chroma folds octaves
    assert chroma_similarity(chord, torch.zeros_like(chord), SR) is None


def test_onset_correlation_identity_and_shift():
    beat = _clicks(100.0, seconds=6.0)
    assert onset_corr(beat, beat, SR) == pytest.approx(1.0, abs=1e-6)
    shifted = _clicks(100.0, seconds=6.0, offset=0.3)
    assert onset_corr(beat, shifted, SR) < 0.3


def test_tempo_of_a_click_track():
    assert tempo_bpm(_clicks(120.0), SR) == pytest.approx(120.0, rel=0.03)
    assert tempo_bpm(_clicks(90.0), SR) == pytest.approx(90.0, rel=0.03)
    m = music_metrics(_clicks(120.0), _clicks(90.0), SR)
    assert m["tempo_diff_bpm"] == pytest.approx(30.0, abs=4.0)
    same = music_metrics(_clicks(120.0), _clicks(120.0), SR)
    assert same["tempo_diff_bpm"] == 0.0 and same["onset_corr"] == pytest.approx(1.0, abs=1e-6)
