"""Prompts as the released generation pipeline builds them.

The text channel (the last of 9) holds, in order::

    BOS <tag>tags in the released convention</tag> EOS | 0 (reference-audio slot) | BOS lyrics, lower-cased EOS

Tags and lyrics go through :mod:`heartcodec_lab.data.text` first (the same rule the tokenizer's
metadata uses): ``"Pop, Piano"`` -> ``<tag>pop,piano</tag>``; lyrics keep their section markers.

BOS/EOS are added only where the tokenizer did not already put them (never
doubled). The reference-audio (MuQ) slot keeps text id 0; the model overwrites
its embedding with ``muq_linear`` of a zero MuQ vector. The 8 audio channels of
prompt rows are 0 and masked out. Audio frames appended after the prompt are
the opposite: 8 codes visible, text masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from heartcodec_lab.data.text import normalize_lyrics, normalize_tags
from heartcodec_lab.mula.loading import GenConfig

NUM_AUDIO_CHANNELS = 8
NUM_CHANNELS = NUM_AUDIO_CHANNELS + 1


@dataclass
class Prompt:
    """tokens int64 ``[L, 9]``, mask bool ``[L, 9]``, and the index of the reference-audio slot."""

    tokens: torch.Tensor
    mask: torch.Tensor
    reference_index: int

    def __len__(self) -> int:
        return self.tokens.shape[0]


def read_text_or_file(value: str | Path) -> str:
    """A path to an existing text file -> its contents; any other string is the text itself."""
    text = str(value)
    if "\n" not in text and len(text) < 4096:
        candidate = Path(text).expanduser()
        try:
            if candidate.is_file():
                try:
                    return candidate.read_text(encoding="utf-8")
                except UnicodeDecodeError as err:
                    raise ValueError(f"{candidate}: not a UTF-8 text file ({err})") from err
        except OSError:
            pass  # e.g. a name too long for the file system: it is text
    return text


def format_tags(tags: str) -> str:
    """``"Piano, Happy"`` -> ``"<tag>piano,happy</tag>"`` (:func:`normalize_tags`, wrapped once)."""
    return f"<tag>{normalize_tags(tags)}</tag>"


def encode_text(tokenizer: Tokenizer, text: str, gen_config: GenConfig) -> list[int]:
    """Token ids of ``text`` with exactly one leading BOS and one trailing EOS."""
    ids = list(tokenizer.encode(text).ids)
    if not ids or ids[0] != gen_config.text_bos_id:
        ids.insert(0, gen_config.text_bos_id)
    if ids[-1] != gen_config.text_eos_id:
        ids.append(gen_config.text_eos_id)
    return ids


def build_prompt(tokenizer: Tokenizer, gen_config: GenConfig, tags: str, lyrics: str) -> Prompt:
    """Tags and lyrics (already read, not paths) -> :class:`Prompt`. Lyrics keep their ``[verse]`` markers."""
    if not isinstance(tags, str) or not isinstance(lyrics, str):
        raise TypeError(f"tags and lyrics must be strings, got {type(tags).__name__} and {type(lyrics).__name__}")
    tag_ids = encode_text(tokenizer, format_tags(tags), gen_config)
    lyric_ids = encode_text(tokenizer, normalize_lyrics(lyrics).lower(), gen_config)
    length = len(tag_ids) + 1 + len(lyric_ids)
    tokens = torch.zeros(length, NUM_CHANNELS, dtype=torch.long)
    tokens[: len(tag_ids), -1] = torch.tensor(tag_ids)
    tokens[len(tag_ids) + 1 :, -1] = torch.tensor(lyric_ids)
    mask = torch.zeros(length, NUM_CHANNELS, dtype=torch.bool)
    mask[:, -1] = True
    return Prompt(tokens=tokens, mask=mask, reference_index=len(tag_ids))


def audio_rows(codes: torch.Tensor, empty_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``[T, 8]`` -> rows ``[T, 9]`` (text channel ``empty_id``) and their mask (text hidden)."""
    t = codes.shape[0]
    tokens = torch.full((t, NUM_CHANNELS), empty_id, dtype=torch.long, device=codes.device)
    tokens[:, :-1] = codes
    mask = torch.ones(t, NUM_CHANNELS, dtype=torch.bool, device=codes.device)
    mask[:, -1] = False
    return tokens, mask


def batch_for_guidance(x: torch.Tensor, guided: bool) -> torch.Tensor:
    """``[S, ...]`` -> ``[B, S, ...]`` with B = 2 (conditional, unconditional) when guided, else 1."""
    x = x.unsqueeze(0)
    return torch.cat([x, x], dim=0) if guided else x
