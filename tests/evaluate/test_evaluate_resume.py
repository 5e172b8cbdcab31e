"""Evaluation resume is keyed by everything that shapes a result: a changed setting recomputes or refuses,
never reuses; a dataset of mixed encoders is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_evaluate_run import K, StandInCodec, StandInEncoder, audio_cfg, make_dataset, write_clips

import heartcodec_lab.encoders as encoders_pkg
from heartcodec_lab.evaluate import run_evaluation
from heartcodec_lab.evaluate.context import EvalContext
from heartcodec_lab.provenance import ProvenanceError


@pytest.fixture
def knobs(monkeypatch):
    """Stand-ins whose identity the test can change between runs: the ref encoder's weights, the codec."""
    state = {"ref_weight": 0.0, "codec": "stand-in", "built": {}}
    codec = StandInCodec()
    monkeypatch.setattr(StandInCodec, "describe", lambda self: {"codec": state["codec"]})

    def build(kind, path, codec_arg, **kwargs):
        enc = StandInEncoder(codec_arg, flip=(kind == "flip"), gain=0.5 if kind == "flip" else 1.0)
        if kind == "ref":  # a weight that does not change the tokens: only the fingerprint can notice it
            enc.register_buffer("w", torch.tensor([state["ref_weight"]]))
        state["built"][kind] = enc
        return enc

    monkeypatch.setattr(EvalContext, "codec", property(lambda self: codec))
    monkeypatch.setattr(encoders_pkg, "build_encoder", build)
    return state


@pytest.fixture
def no_report(monkeypatch):
    """Resume is about records; skipping report.md and its plots keeps these tests fast."""
    import heartcodec_lab.evaluate.runner as runner

    monkeypatch.setattr(runner, "write_report", lambda *args, **kwargs: None)


def calls(knobs) -> int:
    return sum(e.calls for e in knobs["built"].values())


def records(tmp_path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / "run" / "items.jsonl").read_text().splitlines()]


CHANGES = {
    # name: (config override, knob change, groups reported as changed)
    "decoder": (
        {"detokenize": {"num_steps": 3, "guidance_scale": 1.25, "duration": 29.76, "seed": 0}},
        {},
        ["decoder"],
    ),
    "metrics": ({"metrics": {"log_mel": {"n_mels": 40}}}, {}, ["metrics"]),
    "crop": (
        {"audio": {"extensions": ["wav"], "max_clips": None, "max_seconds": 1.5, "min_seconds": 0.1}},
        {},
        ["crop"],
    ),
    "codec": ({}, {"codec": "another codec"}, ["codec"]),
    "encoder weights": ({}, {"ref_weight": 1.0}, ["encoder", "reference"]),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_changed_setting_recomputes(tmp_path, knobs, no_report, change):
    override, knob, _ = CHANGES[change]
    write_clips(tmp_path / "clips", n=1)
    base = dict(plots={"spectrogram_clips": 0})
    run_evaluation(audio_cfg(tmp_path, **base))
    first = records(tmp_path)
    run_evaluation(audio_cfg(tmp_path, **base))  # same settings: everything reused
    assert calls(knobs) == 0 and records(tmp_path) == first

    knobs.update(knob)
    summary = run_evaluation(audio_cfg(tmp_path, **base, **override))
    again = records(tmp_path)
    assert calls(knobs) > 0
    assert sorted((r["clip"], r["encoder"]) for r in again) == sorted((r["clip"], r["encoder"]) for r in first)
    changed = {
        r["encoder"]
        for r in again
        if r["settings"] != next(f["settings"] for f in first if (f["clip"], f["encoder"]) == (r["clip"], r["encoder"]))
    }
    assert changed == {"ref", "flip"}  # every record was made again under the new settings
    if change == "crop":  # and the results are those of the new setting: 1.5 s = 19 frames of 3840 samples
        assert summary["encoders"]["ref"]["frames"] == 19


@pytest.mark.parametrize("change", list(CHANGES))
def test_changed_setting_refuses_when_asked(tmp_path, knobs, no_report, change):
    override, knob, groups = CHANGES[change]
    write_clips(tmp_path / "clips", n=1)
    base = dict(plots={"spectrogram_clips": 0}, changed_settings="refuse")
    run_evaluation(audio_cfg(tmp_path, **base))
    before = (tmp_path / "run" / "items.jsonl").read_text()
    knobs.update(knob)
    knobs["built"].clear()
    with pytest.raises(ProvenanceError) as err:
        run_evaluation(audio_cfg(tmp_path, **base, **override))
    message = str(err.value)
    assert f"{tmp_path / 'run' / 'items.jsonl'}: 2 record(s) were made with other settings" in message
    for group in groups:
        assert group in message
    if change == "encoder weights":  # the reference changed: its own records, and the agreement of the others
        assert "flip: reference; ref: encoder changed" in message
    assert "changed_settings=recompute" in message
    assert calls(knobs) == 0 and (tmp_path / "run" / "items.jsonl").read_text() == before


def test_records_without_settings_are_not_reused(tmp_path, knobs, no_report):
    write_clips(tmp_path / "clips", n=1)
    run_evaluation(audio_cfg(tmp_path, plots={"spectrogram_clips": 0}))
    items = tmp_path / "run" / "items.jsonl"
    old = [{k: v for k, v in r.items() if k != "settings"} for r in records(tmp_path)]  # an older toolkit's file
    items.write_text("".join(json.dumps(r) + "\n" for r in old))
    with pytest.raises(ProvenanceError, match=r"all \(no settings recorded\)"):
        run_evaluation(audio_cfg(tmp_path, plots={"spectrogram_clips": 0}, changed_settings="refuse"))
    run_evaluation(audio_cfg(tmp_path, plots={"spectrogram_clips": 0}))
    assert calls(knobs) > 0 and all("settings" in r for r in records(tmp_path))


# -- dataset mode: HeartMuLa likelihoods ------------------------------------------------------------
@pytest.fixture
def scorer(monkeypatch):
    import heartcodec_lab.mula.scoring as scoring

    seen = []
    monkeypatch.setattr(EvalContext, "mula", property(lambda self: object()))

    def frame_nll(bundle, tokens, tags, lyrics):
        seen.append(tags)
        return torch.full((tokens.shape[1],), float(len(tags)))

    monkeypatch.setattr(scoring, "frame_nll", frame_nll)
    return seen


def dataset_cfg(tmp_path, **over):
    cfg = {
        "output": str(tmp_path / "o"),
        "mode": "usage",
        "input": str(tmp_path / "ds"),
        "codebook_size": K,
        "codec": {"path": None},
        "resume": True,
        "mula": {"enabled": True, "tags": "", "lyrics": ""},
    }
    cfg.update(over)
    return cfg


def test_dataset_nll_is_recomputed_when_the_tokens_or_mula_change(tmp_path, scorer, no_report):
    make_dataset(tmp_path / "ds", {"a": np.zeros((8, 4), np.int16), "b": np.ones((8, 6), np.int16)})
    run_evaluation(dataset_cfg(tmp_path))
    run_evaluation(dataset_cfg(tmp_path))
    assert len(scorer) == 2  # the second run reused both
    np.save(tmp_path / "ds" / "tokens" / "b.npy", np.full((8, 7), 2, np.int16))  # b re-tokenized
    run_evaluation(dataset_cfg(tmp_path))
    assert len(scorer) == 3
    with pytest.raises(ProvenanceError, match=r"dataset_items.jsonl: 2 record\(s\) .*mula"):
        run_evaluation(
            dataset_cfg(tmp_path, mula={"enabled": True, "tags": "pop", "lyrics": ""}, changed_settings="refuse")
        )
    run_evaluation(dataset_cfg(tmp_path, mula={"enabled": True, "tags": "pop", "lyrics": ""}))
    assert len(scorer) == 5
    rows = [json.loads(x) for x in (tmp_path / "o" / "dataset_items.jsonl").read_text().splitlines()]
    assert len(rows) == 2


def test_dataset_of_mixed_encoders_is_refused_naming_the_files(tmp_path):
    make_dataset(tmp_path / "ds", {"a": np.zeros((8, 4), np.int16), "b": np.ones((8, 6), np.int16)})
    meta = tmp_path / "ds" / "metadata.jsonl"
    rows = [json.loads(x) for x in meta.read_text().splitlines()]
    rows[0]["encoder"], rows[1]["encoder"] = "official-vqv12@aaaaaaaaaaaa", "projection-conv1d@bbbbbbbbbbbb"
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        ProvenanceError,
        match=r"metadata.jsonl: tokens of different encoders .*"
        r"official-vqv12@aaaaaaaaaaaa: 1 file\(s\) \(a\); "
        r"projection-conv1d@bbbbbbbbbbbb: 1 file\(s\) \(b\)",
    ):
        run_evaluation(dataset_cfg(tmp_path, mula={"enabled": False}))
    rows[1]["encoder"] = rows[0]["encoder"]
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "ds" / "dataset_info.json").write_text(
        json.dumps({"encoder_fingerprint": "official-vqv12@cccccccccccc"})
    )
    with pytest.raises(
        ProvenanceError,
        match=r"lists tokens of official-vqv12@aaaaaaaaaaaa but .*dataset_info.json "
        r"names official-vqv12@cccccccccccc",
    ):
        run_evaluation(dataset_cfg(tmp_path, mula={"enabled": False}))


def test_summary_and_report_say_what_was_embedded(tmp_path, knobs):
    write_clips(tmp_path / "clips", n=1)
    summary = run_evaluation(audio_cfg(tmp_path, plots={"spectrogram_clips": 0}))
    assert summary["provenance"]["embedded"] == ["codec", "encoder 'flip'", "encoder 'ref'"]
    head = (tmp_path / "run" / "report.md").read_text().splitlines()[:4]
    assert any("EMBEDDED components" in line and "encoder 'flip'" in line for line in head), head
