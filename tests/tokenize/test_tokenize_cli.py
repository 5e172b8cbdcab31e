"""The Hydra app with the embedded encoders: the default (the miniature codec's true encoder), and on the
random tiny codec the untrained projection / embedded vqv12."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from test_tokenize_support import read_jsonl, tone, write

from heartcodec_lab.audio import load_audio
from heartcodec_lab.cli import tokenize as cli
from heartcodec_lab.codec import RANDOM_CODEC
from heartcodec_lab.tokenize.simpletuner import check_dataset


def run_cli(monkeypatch, *overrides) -> int:
    monkeypatch.setattr(sys, "argv", ["heartcodec-tokenize", *overrides])
    GlobalHydra.instance().clear()
    try:
        cli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        GlobalHydra.instance().clear()
    return 0


def tokenize_and_compare(tmp_path, monkeypatch, kind: str, codec_path: str | None, *extra):
    """The CLI's tokens equal the library encoder's (``kind`` on ``load_codec(codec_path)``) and form a dataset."""
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.encoders import build_encoder

    src = tmp_path / "in"
    write(src / "clip.wav", tone(1.1, 44100, 1, seed=3), 44100)
    (src / "clip.txt").write_text("test tone")
    (src / "notes.mp3").write_text("not audio")
    out = tmp_path / "out"
    code = run_cli(
        monkeypatch, f"input={src}", f"output={out}", "num_workers=0", "progress=false", "device=cpu", *extra
    )
    assert code == 0
    rows = read_jsonl(out / "metadata.jsonl")
    assert [r["file_name"] for r in rows] == ["audio/clip.wav"]
    assert [f["file_name"] for f in read_jsonl(out / "failures.jsonl")] == ["audio/notes.mp3"]
    encoder = build_encoder(kind, None, load_codec(codec_path))
    audio, sr = load_audio(src / "clip.wav", channels="keep")
    expected = encoder.encode(audio, sr).tokens.numpy()
    assert np.array_equal(np.load(out / rows[0]["audio_tokens_path"]), expected)
    assert rows[0]["encoder"].startswith(encoder.encoder_id + "@") and rows[0]["frames"] == 14
    check_dataset(out)


def test_cli_defaults_to_the_miniature_codec_and_its_true_encoder(tmp_path, monkeypatch):
    tokenize_and_compare(tmp_path, monkeypatch, "minicodec", None)
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info["provenance"]["models"] == {"codec": "miniature", "encoder": "miniature"}


def test_cli_with_embedded_projection_encoder(tmp_path, monkeypatch):
    tokenize_and_compare(
        tmp_path, monkeypatch, "projection", RANDOM_CODEC, f"codec.path={RANDOM_CODEC}", "encoder=projection"
    )


@pytest.mark.slow
def test_cli_with_embedded_official_encoder(tmp_path, monkeypatch):
    tokenize_and_compare(
        tmp_path, monkeypatch, "official", RANDOM_CODEC, f"codec.path={RANDOM_CODEC}", "encoder=official"
    )


def test_cli_bad_input_fails_fast_with_a_clear_message(tmp_path, monkeypatch, capsys):
    assert run_cli(monkeypatch, f"output={tmp_path / 'o'}", "encoder=projection") == 2
    assert "input= is required: a folder of audio, a list file" in capsys.readouterr().err
    assert run_cli(monkeypatch, f"input={tmp_path / 'nope'}", f"output={tmp_path / 'o'}") == 2
    assert "nope: input not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
