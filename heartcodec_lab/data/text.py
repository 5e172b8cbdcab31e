"""Tags and lyrics in the convention the released HeartMuLa models were trained on.

One home for the rule, used by the tokenizer's metadata, ``heartcodec-generate`` and HeartMuLa
scoring, so training, scoring and generation see the same prompt text:

* tags: lower case, comma-separated, no spaces around commas, empty items and repeats dropped
  (first occurrence kept): ``" Pop , Piano,,pop\\nUpbeat "`` -> ``"pop,piano,upbeat"``. Commas and
  line breaks separate items; runs of spaces inside an item become one space (``"hip  hop"`` ->
  ``"hip hop"``); a ``<tag>`` / ``</tag>`` wrapper is removed (the prompt adds it).
* lyrics: line breaks unified to ``\\n``, trailing spaces of each line and surrounding blank lines
  removed; everything else is kept, section markers (``[Verse]``, ``[Chorus]``) included. The
  prompt lower-cases lyrics as the released pipeline does; metadata keeps their case.
"""

from __future__ import annotations

import re

_TAG_OPEN = re.compile(r"^\s*<tag>", re.IGNORECASE)
_TAG_CLOSE = re.compile(r"</tag>\s*$", re.IGNORECASE)


def normalize_tags(text: str | None) -> str:
    """Raw tag text -> the released convention (``""`` when nothing is left)."""
    if not text:
        return ""
    text = _TAG_CLOSE.sub("", _TAG_OPEN.sub("", text))
    items = (" ".join(part.split()).lower() for part in re.split(r"[,\r\n]", text))
    return ",".join(dict.fromkeys(item for item in items if item))


def normalize_lyrics(text: str | None) -> str:
    """Raw lyrics -> unified line breaks, no trailing spaces, no surrounding blank lines; markers kept."""
    if not text:
        return ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n").strip()
