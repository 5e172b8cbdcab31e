"""Prompt building: tags, lyrics, BOS/EOS, the reference-audio slot, channel layout."""

from __future__ import annotations

import pytest
import torch

from heartcodec_lab.mula import build_prompt, format_tags, read_text_or_file
from heartcodec_lab.mula.embedded import EMBEDDED_GEN_CONFIG, build_embedded_tokenizer
from heartcodec_lab.mula.prompt import audio_rows, encode_text

BOS, EOS = EMBEDDED_GEN_CONFIG.text_bos_id, EMBEDDED_GEN_CONFIG.text_eos_id


@pytest.fixture(scope="module")
def tokenizer():
    return build_embedded_tokenizer()


def _text(tokenizer, ids):
    return tokenizer.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Pop, Piano", "<tag>pop,piano</tag>"),
        (" Pop ,Piano,, pop\nHip  Hop ", "<tag>pop,piano,hip hop</tag>"),
        ("<tag>Rock</tag>", "<tag>rock</tag>"),
        ("<TAG>jazz", "<tag>jazz</tag>"),
        ("", "<tag></tag>"),
    ],
)
def test_format_tags(raw, expected):
    assert format_tags(raw) == expected


def test_layout(tokenizer):
    prompt = build_prompt(tokenizer, EMBEDDED_GEN_CONFIG, "Pop", "[Verse]\nHello")
    text = prompt.tokens[:, -1].tolist()
    tag_ids = [BOS] + list(b"<tag>pop</tag>") + [EOS]
    lyric_ids = [BOS] + list(b"[verse]\nhello") + [EOS]  # one id per byte for ASCII in this tokenizer
    assert prompt.tokens.shape == (len(tag_ids) + 1 + len(lyric_ids), 9)
    assert prompt.reference_index == len(tag_ids)
    assert text == tag_ids + [0] + lyric_ids  # the reference-audio slot holds id 0
    assert not prompt.tokens[:, :8].any() and not prompt.mask[:, :8].any()
    assert prompt.mask[:, 8].all()
    assert _text(tokenizer, lyric_ids) == "[verse]\nhello"


def test_bos_eos_never_doubled(tokenizer):
    once = encode_text(tokenizer, "la", EMBEDDED_GEN_CONFIG)
    assert once == [BOS, *b"la", EOS]
    # text that already carries the special tokens gets none added
    assert encode_text(tokenizer, "la<|end_of_text|>", EMBEDDED_GEN_CONFIG) == once
    # a tokenizer without a BOS post-processor gets one
    bare = build_embedded_tokenizer()
    bare.post_processor = None
    assert encode_text(bare, "la", EMBEDDED_GEN_CONFIG) == once


def test_empty_lyrics_still_framed(tokenizer):
    prompt = build_prompt(tokenizer, EMBEDDED_GEN_CONFIG, "pop", "")
    assert prompt.tokens[prompt.reference_index + 1 :, -1].tolist() == [BOS, EOS]


def test_bad_types(tokenizer):
    with pytest.raises(TypeError, match="strings"):
        build_prompt(tokenizer, EMBEDDED_GEN_CONFIG, ["pop"], "")


def test_audio_rows():
    codes = torch.arange(16).reshape(2, 8)
    rows, mask = audio_rows(codes, empty_id=7)
    assert torch.equal(rows[:, :8], codes) and rows[:, 8].tolist() == [7, 7]
    assert mask[:, :8].all() and not mask[:, 8].any()


def test_read_text_or_file(tmp_path):
    f = tmp_path / "song.lyrics"
    f.write_text("[chorus]\nla la\n", encoding="utf-8")
    assert read_text_or_file(str(f)) == "[chorus]\nla la\n"
    assert read_text_or_file("pop, piano") == "pop, piano"
    assert read_text_or_file("x" * 5000) == "x" * 5000
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(ValueError, match="bad.txt: not a UTF-8 text file"):
        read_text_or_file(str(bad))
