"""heartcodec-study: split, train every recipe, evaluate against the official encoder, one report."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from heartcodec_lab.audio import save_audio
from heartcodec_lab.data.synth import synth_music
from heartcodec_lab.study import run_study, split_folder
from heartcodec_lab.study.report import encode_speed, write_study_report

_TRAIN = [
    "debug=fast",
    "callbacks.reconstruction_preview.num_clips=0",
    "data.samples_per_epoch=2",
    "data.crop_seconds=0.32",
    "data.num_val_clips=1",
]
TINY_BUDGET = [
    "budget.max_steps=1",
    "budget.overrides=[" + ",".join(f"'{o}'" for o in _TRAIN) + "]",
    "evaluate.detokenize.num_steps=1",
    "evaluate.plots.spectrogram_clips=0",
]


@pytest.fixture
def songs(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    for i in range(4):
        save_audio(folder / f"s{i}.wav", synth_music(1.2, seed=i), 48000)
        (folder / f"s{i}.lyrics").write_text(f"[verse] song number {i}\n")
    return folder


def test_split_is_deterministic_and_keeps_sidecars(songs, tmp_path):
    train, heldout = split_folder(songs, tmp_path / "study", 0.25, [".wav"])
    assert [p.name for p in heldout] == ["s3.wav"] and [p.name for p in train] == ["s0.wav", "s1.wav", "s2.wav"]
    assert (tmp_path / "study" / "heldout" / "s3.lyrics").read_text().startswith("[verse]")
    manifest = [
        json.loads(line)["path"] for line in (tmp_path / "study" / "splits" / "train.jsonl").read_text().splitlines()
    ]
    assert [p.rsplit("/", 1)[1] for p in manifest] == ["s0.wav", "s1.wav", "s2.wav"]
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    save_audio(lonely / "one.wav", synth_music(1.0, seed=0), 48000)
    with pytest.raises(ValueError, match="lonely: the study needs at least 2 audio files"):
        split_folder(lonely, tmp_path / "x", 0.25, [".wav"])


def test_compare_step_writes_the_report(tmp_path):
    out = tmp_path / "study"
    (out / "eval").mkdir(parents=True)
    items = [
        {"clip": "a", "encoder": "official", "duration_s": 2.0, "seconds_encode": 1.0},
        {"clip": "a", "encoder": "conv1d", "duration_s": 2.0, "seconds_encode": 0.25},
    ]
    (out / "eval" / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    assert encode_speed(items) == {"official": 2.0, "conv1d": 8.0}
    evaluation = {
        "encoders": {
            "official": {"reconstruction": {"mstft_distance": {"mean": 1.5}}},
            "conv1d": {
                "agreement": {"match_rate": [0.5, 0.25] + [0.0] * 6},
                "music": {"chroma_similarity": {"mean": 0.9}},
            },
        }
    }
    cfg = OmegaConf.create(
        {
            "mode": "encoders",
            "input": "songs",
            "codec": {"path": None},
            "official_encoder": None,
            "budget": {"max_steps": 3},
        }
    )
    trained = {
        "conv1d": {
            "global_step": 3,
            "seconds": 1.0,
            "metrics": {"train/loss/total": 0.5},
            "projection_export": "x/projection",
        }
    }
    report = write_study_report(out, cfg, trained, evaluation, n_train=3, n_heldout=1).read_text()
    row = next(line for line in report.splitlines() if line.startswith("| conv1d | 0.5 |"))
    assert "| 0.09375 |" in row and "| 0.9 |" in row and row.endswith("| 8 |")  # mean match = 0.75 / 8
    assert (out / "plots" / "agreement_per_quantizer.png").is_file() and (
        out / "plots" / "tokenize_speed.png"
    ).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("codec_path, reference", [("embedded:random", "official"), (None, "minicodec")])
def test_study_end_to_end_on_embedded_defaults(songs, tmp_path, codec_path, reference, compose):
    out = tmp_path / "study"
    codec = [f"codec.path={codec_path}"] if codec_path else []  # None: the default (the miniature)
    cfg = compose("study", f"input={songs}", f"output={out}", *codec, *TINY_BUDGET)
    report = run_study(cfg).read_text()
    for recipe in ("conv1d", "flow", "distill"):
        assert (out / "train" / recipe / "projection").is_dir()
        assert f"| {recipe} |" in report
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert set(summary["encoders"]) == {reference, "conv1d", "flow", "distill"}
    assert len(summary["encoders"]["distill"]["agreement"]["match_rate"]) == 8
    assert summary["encoders"]["conv1d"]["music"]["chroma_similarity"]["n"] == 1
    assert (out / "plots" / "agreement_per_quantizer.png").is_file() and (out / "eval" / "report.md").is_file()


def test_reference_encoder_is_the_codecs_own_without_an_official_path():
    from heartcodec_lab.study.run import reference_encoder

    def ref(codec_path, official):
        return reference_encoder(OmegaConf.create({"codec": {"path": codec_path}, "official_encoder": official}))

    # the default codec is measured against its true encoder, never against a random tiny vqv12
    assert ref(None, None) == {"name": "minicodec", "kind": "minicodec", "path": None}
    assert ref("embedded:minicodec", None)["kind"] == "minicodec"
    assert ref("embedded:random", None) == {"name": "official", "kind": "official", "path": None}
    assert ref(None, "/ckpt/enc") == {"name": "official", "kind": "official", "path": "/ckpt/enc"}
    assert ref("/ckpt/codec", "/ckpt/enc")["path"] == "/ckpt/enc"
