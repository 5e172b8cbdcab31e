"""``heartcodec-listen prepare``: matched excerpts, loudness matching, BS.1534-3 anchors, the manifest and its
hashes, the sources (folders, an evaluation run) and the refusals; the console command's key=value handling."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from listen_helpers import make_sources

from heartcodec_lab.audio import save_audio
from heartcodec_lab.listen import (
    Manifest,
    TestFolderError,
    conditions_from_evaluation,
    prepare_test,
)
from heartcodec_lab.listen.signal import integrated_loudness

SR = 48000


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return make_sources(tmp_path_factory.mktemp("sources"), n=2, seconds=1.5)


@pytest.fixture(scope="module")
def prepared(sources, tmp_path_factory):
    ref, conditions = sources
    out = tmp_path_factory.mktemp("prepared") / "test"
    prepare_test(out, ref, conditions, seconds=1.2, start=0.2, target_lufs=-23.0)
    return out


def _read(path):
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), rate, sf.info(path).subtype


def test_manifest_lists_every_stimulus_with_its_hash(prepared):
    manifest = Manifest(prepared)
    manifest.verify()
    assert manifest.conditions == ["hidden_reference", "anchor_3500hz", "anchor_7000hz", "quiet", "noisy"]
    assert [t["item"] for t in manifest.trials] == ["song_0", "song_1"]
    ids = [s.id for s in manifest.stimuli.values()]
    assert len(ids) == len(set(ids)) == 2 * 6  # 5 rated conditions + the labelled reference per trial
    data = json.loads((prepared / "manifest.json").read_text())
    assert data["settings"]["anchors_hz"] == [3500.0, 7000.0] and data["skipped"] == []
    for trial in manifest.trials:
        for entry in trial["stimuli"].values():
            audio, rate, subtype = _read(prepared / entry["file"])
            assert (rate, subtype, audio.shape) == (SR, "PCM_16", (2, int(1.2 * SR)))
            assert abs(audio[:, 0]).max() < 1e-3  # faded in
            assert "/" not in entry["id"] and entry["id"] not in entry["file"]


def test_stimuli_are_loudness_matched_and_the_excerpt_is_the_same_span(prepared, sources):
    trial = Manifest(prepared).trials[0]
    files = {name: _read(prepared / e["file"])[0] for name, e in trial["stimuli"].items()}
    levels = {name: integrated_loudness(x, SR) for name, x in files.items()}
    assert max(levels.values()) - min(levels.values()) < 0.3, levels
    assert trial["stimuli"]["quiet"]["gain_db"] == pytest.approx(
        trial["stimuli"]["hidden_reference"]["gain_db"] + 6.02, abs=0.05
    )
    # the reference at -6 dB, matched back: the same samples as the hidden reference (16-bit rounding apart)
    assert (files["quiet"] - files["hidden_reference"]).abs().max() < 3 / 32768
    # the hidden reference is the reference's span from 0.2 s, scaled by the recorded gain (away from the fades)
    ref = _read(sources[0] / "song_0.flac")[0][:, int(0.2 * SR) : int(1.4 * SR)]
    gain = 10 ** (trial["stimuli"]["hidden_reference"]["gain_db"] / 20)
    mid = slice(SR // 10, SR)
    assert torch.allclose(files["hidden_reference"][:, mid], ref[:, mid] * gain, atol=3 / 32768)


@pytest.mark.parametrize("name, cutoff", [("anchor_3500hz", 3500), ("anchor_7000hz", 7000)])
def test_anchors_are_the_reference_low_passed(prepared, name, cutoff):
    trial = Manifest(prepared).trials[1]
    anchor = _read(prepared / trial["stimuli"][name]["file"])[0].double()
    ref = _read(prepared / trial["stimuli"]["hidden_reference"]["file"])[0].double()
    freqs = np.fft.rfftfreq(anchor.shape[-1], 1 / SR)
    a, r = (np.abs(np.fft.rfft(x.numpy(), axis=-1)) ** 2 for x in (anchor, ref))
    above, below = freqs > cutoff + 100, freqs < cutoff - 200
    assert a[:, above].sum() < 1e-5 * a.sum()  # nothing left above the cut-off
    assert r[:, above].sum() > 1e-3 * r.sum()  # where the reference has energy
    ratio = a[:, below].sum() / r[:, below].sum()  # below it: the reference, gain apart
    assert ratio == pytest.approx(
        10 ** ((trial["stimuli"][name]["gain_db"] - trial["stimuli"]["hidden_reference"]["gain_db"]) / 10), rel=0.05
    )


def test_items_missing_from_a_condition_are_left_out_and_listed(sources, tmp_path):
    ref, conditions = sources
    shutil.copytree(ref, tmp_path / "ref")
    save_audio(tmp_path / "ref" / "extra.wav", torch.zeros(2, SR) + 0.1, SR)
    prepare_test(tmp_path / "test", tmp_path / "ref", conditions, seconds=1.0)
    data = json.loads((tmp_path / "test" / "manifest.json").read_text())
    assert [t["item"] for t in data["trials"]] == ["song_0", "song_1"]
    assert data["skipped"] == [{"item": "extra", "missing": ["quiet", "noisy"]}]


def test_refusals_name_the_problem(sources, prepared, tmp_path):
    ref, conditions = sources
    with pytest.raises(TestFolderError, match="a test is already there"):
        prepare_test(prepared, ref, conditions)
    with pytest.raises(TestFolderError, match="condition folder not found"):
        prepare_test(tmp_path / "a", ref, {"x": tmp_path / "nowhere"})
    with pytest.raises(TestFolderError, match="condition name 'hidden_reference'"):
        prepare_test(tmp_path / "b", ref, {"hidden_reference": conditions["quiet"]})
    with pytest.raises(TestFolderError, match="at least 1.0 s"):
        prepare_test(tmp_path / "c", ref, conditions, seconds=0.5)
    with pytest.raises(TestFolderError, match="shorter .* than excerpt.start"):
        prepare_test(tmp_path / "d", ref, conditions, seconds=1.0, start=5.0)
    dup = tmp_path / "dup"
    shutil.copytree(conditions["noisy"], dup)
    shutil.copy(ref / "song_0.flac", dup / "song_0.flac")
    with pytest.raises(TestFolderError, match="song_0.flac and song_0.wav both match item 'song_0'"):
        prepare_test(tmp_path / "e", ref, [dup])
    other = tmp_path / "other"
    save_audio(other / "unrelated.wav", torch.zeros(2, SR), SR)
    with pytest.raises(TestFolderError, match="no file name appears in every condition folder"):
        prepare_test(tmp_path / "f", ref, [other])


def test_an_evaluation_run_supplies_reference_and_conditions(sources, tmp_path):
    from hydra import compose, initialize_config_module

    from heartcodec_lab.evaluate import run_evaluation

    ref, conditions = sources
    run = tmp_path / "eval"
    with pytest.raises(TestFolderError, match="no summary.json"):
        conditions_from_evaluation(run)
    with initialize_config_module("heartcodec_lab.conf", version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[
                "mode=pairs",
                f"input={ref}",
                f"estimate={conditions['noisy']}",
                f"output={run}",
                "music_metrics=false",
                "estimate_name=noisy",
            ],
        )
    run_evaluation(cfg)
    # the names heartcodec-evaluate gives saved reconstructions: the original's file name + .wav
    shutil.copy(
        conditions["quiet"] / "song_0.wav",
        (run / "reconstructions" / "quiet").mkdir(parents=True)
        or run / "reconstructions" / "quiet" / "song_0.flac.wav",
    )
    reference, found = conditions_from_evaluation(run)
    assert reference == ref and found == {"quiet": run / "reconstructions" / "quiet", "noisy": conditions["noisy"]}
    prepare_test(tmp_path / "test", reference, found, seconds=1.0)
    data = json.loads((tmp_path / "test" / "manifest.json").read_text())
    assert [t["item"] for t in data["trials"]] == ["song_0"]  # only song_0 was reconstructed
    assert data["skipped"] == [{"item": "song_1", "missing": ["quiet"]}]
    # the evaluation's report includes the test's (here: empty) screened results when given the folder
    cfg.listening_test = str(tmp_path / "test")
    run_evaluation(cfg)
    report = (run / "report.md").read_text()
    assert "## Listening test (MUSHRA)" in report and "| hidden_reference | 0 | n/a |" in report


def test_console_command(sources, tmp_path, capsys):
    from heartcodec_lab.cli.listen import main

    ref, conditions = sources
    main(
        [
            "prepare",
            f"reference={ref}",
            f"conditions={{a: {conditions['quiet']}, b: {conditions['noisy']}}}",
            f"output={tmp_path / 'test'}",
            "excerpt.seconds=1.0",
            "title=Two codecs",
        ]
    )
    manifest = Manifest(tmp_path / "test")
    assert manifest.title == "Two codecs" and manifest.conditions[-2:] == ["a", "b"]
    assert "next: heartcodec-listen serve" in capsys.readouterr().out
    for args, code, message in [
        (["prepare", "excerpt.secnds=3"], 2, "excerpt.secnds"),
        (["prepare", f"output={tmp_path / 'x'}", f"reference={ref}"], 2, "give exactly one of"),
        (["serve", f"test={tmp_path / 'test'}", "host=0.0.0.0"], 2, "set token="),
        (["serve", f"test={tmp_path / 'nowhere'}"], 2, "not a listening test"),
        (["results"], 2, "no test: pass test=TEST_DIR"),
        (["listen"], 2, "usage: heartcodec-listen"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == code, args
        assert message in capsys.readouterr().err, args
    main(["results", f"test={tmp_path / 'test'}"])
    out = capsys.readouterr().out
    assert "0 listener(s), 0 kept" in out and "| a | 0 | n/a |" in out
