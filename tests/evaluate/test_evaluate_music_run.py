"""heartcodec-evaluate with the music-aware metrics on the embedded codec, encoder and transcriber."""

from __future__ import annotations

import json

import pytest

from heartcodec_lab.audio import save_audio
from heartcodec_lab.codec import RANDOM_CODEC
from heartcodec_lab.data.synth import synth_music
from heartcodec_lab.evaluate import run_evaluation
from heartcodec_lab.evaluate.results import read_jsonl

FAST_TRANSCRIBER = [
    "transcriber.settings.max_new_tokens=6",
    "transcriber.settings.num_beams=1",
    "transcriber.settings.temperature=[0.0]",
]


@pytest.fixture
def evaluate_cfg(compose):
    return lambda *overrides: compose("evaluate", *overrides, *FAST_TRANSCRIBER)


def test_music_lyrics_and_depth_blocks(tmp_path, evaluate_cfg):
    clips = tmp_path / "clips"
    clips.mkdir()
    save_audio(clips / "song.flac", synth_music(1.6, seed=3), 48000)
    (clips / "song.lyrics").write_text("[verse]\nHello, little star\n")
    out = tmp_path / "out"
    summary = run_evaluation(
        evaluate_cfg(
            "mode=encoders",
            f"input={clips}",
            f"output={out}",
            f"codec.path={RANDOM_CODEC}",
            "encoders=[{name: proj, kind: projection}]",
            "reference=null",
            "detokenize.num_steps=1",
            "roundtrip=false",
            "lyrics.enabled=true",
            "codebook_depth.enabled=true",
            "codebook_depth.levels=[1,8]",
        )
    )
    record = read_jsonl(out / "items.jsonl")[0]
    music = record["music"]
    assert -1.0 <= music["chroma_similarity"] <= 1.0 and music["tempo_diff_bpm"] >= 0
    lyrics = record["lyrics"]
    assert set(lyrics) >= {
        "transcript_original",
        "transcript_reconstruction",
        "wer",
        "cer",
        "wer_vs_lyrics",
        "original_wer_vs_lyrics",
    }
    # decoding all 8 levels is the plain reconstruction (same seed); one level is a different signal
    assert record["depth"]["8"] == pytest.approx(record["reconstruction"])
    assert record["depth"]["1"]["mstft_distance"] != record["reconstruction"]["mstft_distance"]
    block = summary["encoders"]["proj"]
    assert block["music"]["chroma_similarity"]["n"] == 1 and block["lyrics"]["wer"]["n"] == 1
    assert sorted(block["depth"]) == ["1", "8"]
    assert summary["music_params"]["transcriber"]["kind"] == "embedded-tiny"
    report = (out / "report.md").read_text()
    for heading in ("Tonal and rhythmic fidelity", "Lyric intelligibility", "Codebook depth"):
        assert f"## {heading}" in report
    assert lyrics["transcript_original"] in report or lyrics["transcript_original"] == ""
    assert (out / "plots" / "codebook_depth.png").stat().st_size > 0


def test_lyric_adherence_of_songs(tmp_path, evaluate_cfg):
    songs = tmp_path / "songs"
    songs.mkdir()
    save_audio(songs / "a.wav", synth_music(1.0, seed=1), 48000)
    (songs / "a.lyrics").write_text("[chorus] la la love\n")
    save_audio(songs / "b.wav", synth_music(1.0, seed=2), 48000)  # no lyrics: undefined, not zero
    out = tmp_path / "adherence"
    summary = run_evaluation(evaluate_cfg("mode=adherence", f"input={songs}", f"output={out}"))
    records = {r["song"]: r for r in read_jsonl(out / "songs.jsonl")}
    assert records["a.wav"]["wer"] is not None and records["a.wav"]["wer"] >= 0
    assert records["b.wav"]["wer"] is None
    assert summary["songs"]["songs"] == 2 and summary["songs"]["wer"]["n"] == 1
    assert "## Lyric adherence of generated songs" in (out / "report.md").read_text()
    summary_file = json.loads((out / "summary.json").read_text())
    assert summary_file["transcriber"]["settings"]["max_new_tokens"] == 6
