"""Tags and lyrics in the released convention, one rule for tokenize metadata, generation and scoring."""

from __future__ import annotations

import json

import pytest
import torch
from test_tokenize_support import StandInEncoder, job_config, read_jsonl, tone, write

from heartcodec_lab.data import text
from heartcodec_lab.data.text import normalize_lyrics, normalize_tags
from heartcodec_lab.tokenize.runner import run


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Pop, Piano", "pop,piano"),
        ("  Pop ,Piano,,  pop , PIANO,", "pop,piano"),  # spaces around commas, empty items, repeats (any case)
        ("Hip  Hop,\tLo-Fi\nchill\r\nSAD", "hip hop,lo-fi,chill,sad"),  # inner runs of spaces, line breaks
        ("<tag>Rock, Indie</tag>", "rock,indie"),
        ("<TAG>jazz", "jazz"),
        ("electronic", "electronic"),
        (", ,\n", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_tags_known_answers(raw, expected):
    assert normalize_tags(raw) == expected
    assert normalize_tags(normalize_tags(raw)) == normalize_tags(raw)  # idempotent


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("[Verse]\r\nLa la  \r\n\r\n[Chorus]\nOh oh\t\n\n", "[Verse]\nLa la\n\n[Chorus]\nOh oh"),
        ("\n\n[Intro]\n[Instrumental]\n", "[Intro]\n[Instrumental]"),
        ("Just one line", "Just one line"),
        ("   \n ", ""),
    ],
)
def test_lyrics_keep_markers_and_case(raw, expected):
    assert normalize_lyrics(raw) == expected


def test_one_rule_for_metadata_generation_and_scoring():
    from heartcodec_lab.mula import prompt
    from heartcodec_lab.tokenize import records

    assert records.normalize_tags is prompt.normalize_tags is text.normalize_tags
    assert records.normalize_lyrics is prompt.normalize_lyrics is text.normalize_lyrics
    assert prompt.format_tags(" Pop , Piano,pop") == "<tag>pop,piano</tag>"


def test_tokenize_metadata_uses_the_convention_and_keeps_the_raw_text(tmp_path):
    src = tmp_path / "in"
    write(src / "a.wav", tone(0.5, 48000), 48000)
    (src / "a.txt").write_text("Pop, Piano ,pop\n")
    (src / "a.lyrics").write_text("[Verse]\r\nHello  \r\n")
    write(src / "b.wav", tone(0.5, 48000, seed=1), 48000)
    (src / "b.txt").write_text(" , ")  # nothing left after normalizing: the default tags apply
    assert run(job_config(src, tmp_path / "out", default_tags="Music"), encoder=StandInEncoder()) == 0
    rows = {r["file_name"]: r for r in read_jsonl(tmp_path / "out" / "metadata.jsonl")}
    a, b = rows["audio/a.wav"], rows["audio/b.wav"]
    assert (a["tags"], a["tags_raw"], a["lyrics"]) == ("pop,piano", "Pop, Piano ,pop", "[Verse]\nHello")
    assert (b["tags"], b["tags_raw"], b["default_tags"]) == ("music", ",", True)
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info["counts"]["default_tags"] == 1


def test_scoring_and_generation_see_normalized_tags():
    from heartcodec_lab.mula import GenerationConfig, generate_tokens, load_mula
    from heartcodec_lab.mula.scoring import frame_nll

    bundle = load_mula(None, device="cpu", dtype="float32")
    tokens = torch.randint(0, bundle.config.codebook_size, (8, 6), generator=torch.Generator().manual_seed(0))
    lyrics = "[Verse]\nla la"
    spelled = frame_nll(bundle, tokens, " Pop , PIANO,,pop", lyrics)
    assert torch.equal(spelled, frame_nll(bundle, tokens, "pop,piano", lyrics))
    assert not torch.equal(spelled, frame_nll(bundle, tokens, "rock", lyrics))  # the tags do matter

    config = GenerationConfig(max_frames=4)
    one = generate_tokens(bundle, "Pop, Piano", lyrics, config, progress=False, seed=3).tokens
    two = generate_tokens(bundle, "pop,piano", lyrics, config, progress=False, seed=3).tokens
    assert torch.equal(one, two)
