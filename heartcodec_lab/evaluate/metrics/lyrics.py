"""Lyric intelligibility and adherence: word and character error rates between texts.

Both texts go through the same normalisation first (:func:`normalize_lyrics`): lower case,
section markers such as ``[verse]`` / ``[chorus]`` removed, punctuation removed (apostrophes
inside words are dropped, ``don't`` -> ``dont``), whitespace collapsed. Error rates come from
jiwer (Levenshtein alignment): (substitutions + deletions + insertions) / reference length, so
0 is a perfect match and the value can exceed 1 when the hypothesis has many extra words.
CER counts characters of the normalised text, single spaces included.
"""

from __future__ import annotations

import re
import unicodedata

import jiwer

_SECTION = re.compile(r"\[[^\]]*\]")


def normalize_lyrics(text: str | None) -> str:
    """Lower case, no ``[section]`` markers, no punctuation, single spaces."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = _SECTION.sub(" ", text)
    text = re.sub(r"(?<=\w)['\u2019](?=\w)", "", text)  # don't -> dont
    # keep letters, digits and marks of any script (so CJK and accented lyrics survive)
    text = "".join(c if c.isalnum() or unicodedata.category(c).startswith("M") else " " for c in text)
    return " ".join(text.split())


def _rates(reference: str, hypothesis: str) -> tuple[float | None, float | None]:
    ref, hyp = normalize_lyrics(reference), normalize_lyrics(hypothesis)
    if not ref:
        return None, None  # undefined against an empty reference (e.g. an instrumental)
    if not hyp:
        return 1.0, 1.0  # everything deleted
    return float(jiwer.wer(ref, hyp)), float(jiwer.cer(ref, hyp))


def wer(reference: str, hypothesis: str) -> float | None:
    """Word error rate of ``hypothesis`` against ``reference`` after normalisation (None: empty reference)."""
    return _rates(reference, hypothesis)[0]


def cer(reference: str, hypothesis: str) -> float | None:
    """Character error rate after normalisation (None: empty reference)."""
    return _rates(reference, hypothesis)[1]


def error_rates(reference: str, hypothesis: str, prefix: str = "") -> dict[str, float | None]:
    """``{prefix}wer`` and ``{prefix}cer`` in one alignment pass per unit."""
    w, c = _rates(reference, hypothesis)
    return {f"{prefix}wer": w, f"{prefix}cer": c}
