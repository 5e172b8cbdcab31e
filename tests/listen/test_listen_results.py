"""Listening-test results: BS.1534-3 post-screening and t-distribution confidence intervals on known answers,
results from a ratings database, and the listening section of the evaluation report."""

from __future__ import annotations

import csv

import pytest
from listen_helpers import make_test

from heartcodec_lab.listen.results import (
    compute_results,
    mean_ci,
    screen_listeners,
    write_results,
)
from heartcodec_lab.listen.store import RatingStore

REF, MID = "hidden_reference", "anchor_7000hz"


def _trials(n: int, low_reference: int = 0, high_anchor: int = 0) -> dict:
    """n trials; the first ``low_reference`` rate the hidden reference 89, the next ``high_anchor`` the 7 kHz
    anchor 91; otherwise reference 90 (not below 90) and anchor 90 (not above)."""
    return {
        f"t{i}": {
            REF: 89.0 if i < low_reference else 90.0,
            MID: 91.0 if low_reference <= i < low_reference + high_anchor else 90.0,
            "codec": 50.0,
        }
        for i in range(n)
    }


def test_screening_known_answers():
    scores = {
        "kept_1_of_7": _trials(7, 1),
        "out_1_of_6": _trials(6, 1),
        "kept_3_of_20": _trials(20, 3),
        "out_4_of_20": _trials(20, 4),
        "anchor_2_of_7": _trials(7, 0, 2),
        "perfect": _trials(5),
    }
    verdicts = {s.listener: s for s in screen_listeners(scores)}
    assert {name for name, s in verdicts.items() if s.excluded} == {"out_1_of_6", "out_4_of_20", "anchor_2_of_7"}
    assert verdicts["out_1_of_6"].reference_below == 1 and verdicts["out_1_of_6"].trials == 6
    assert verdicts["out_1_of_6"].reason == "hidden reference rated below 90 in 1 of 6 trials (17 % > 15 %)"
    assert verdicts["kept_3_of_20"].reason == ""  # exactly 15 % is not more than 15 %
    assert "mid-range anchor (anchor_7000hz) rated above 90 in 2 of 7" in verdicts["anchor_2_of_7"].reason
    without_anchor_rule = {s.listener: s.excluded for s in screen_listeners(scores, anchor_rule=False)}
    assert not without_anchor_rule["anchor_2_of_7"] and without_anchor_rule["out_1_of_6"]


def test_mean_and_95_percent_interval_known_answers():
    # Student's t quantiles from printed tables: t(0.975, 2) = 4.3027, t(0.975, 9) = 2.2622
    s = mean_ci([60, 70, 80])
    assert s["n"] == 3 and s["mean"] == 70 and s["std"] == pytest.approx(10)
    assert s["ci95"] == pytest.approx(4.3027 * 10 / 3**0.5, abs=1e-3)
    s = mean_ci(range(10, 101, 10))
    assert s["mean"] == 55 and s["ci95"] == pytest.approx(2.2622 * 30.2765 / 10**0.5, abs=2e-3)
    assert (s["low"], s["high"]) == pytest.approx((55 - s["ci95"], 55 + s["ci95"]))
    assert mean_ci([42])["ci95"] is None and mean_ci([])["mean"] is None


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    """A test with three listeners: two reliable, one who misses the hidden reference in both trials;
    and a fourth with only part of a trial (ignored)."""
    test = make_test(tmp_path_factory.mktemp("results"), n=2, seconds=1.0)
    from heartcodec_lab.listen import Manifest

    manifest = Manifest(test)
    store = RatingStore(test / "ratings.sqlite")
    plan = {
        "good_a": {REF: 100, "anchor_3500hz": 10, MID: 30, "quiet": 90, "noisy": 40},
        "good_b": {REF: 96, "anchor_3500hz": 20, MID: 50, "quiet": 94, "noisy": 60},
        "sloppy": {REF: 40, "anchor_3500hz": 90, MID: 90, "quiet": 50, "noisy": 95},
    }
    ids = {}
    for name, scores in plan.items():
        ids[name] = store.add_listener(name)
        for trial in manifest.trials:
            store.add_ratings(ids[name], trial["id"], [(c, trial["stimuli"][c]["id"], v) for c, v in scores.items()])
    partial = store.add_listener("partial")
    store.add_ratings(partial, "t001", [("noisy", manifest.trials[0]["stimuli"]["noisy"]["id"], 0.0)])
    store.close()
    return test, ids


def test_results_screen_listeners_and_summarise_the_kept_ones(rated):
    test, ids = rated
    results = compute_results(test)
    verdict = {s["name"]: s for s in results["listeners"]}
    assert verdict["sloppy"]["excluded"] and "2 of 2 trials" in verdict["sloppy"]["reason"]
    assert verdict["partial"]["excluded"] and verdict["partial"]["reason"] == "no complete trial"
    assert results["kept"] == sorted([ids["good_a"], ids["good_b"]])
    noisy = results["conditions"]["noisy"]
    assert noisy["n"] == 4 and noisy["mean"] == 50  # (40 + 60) x 2 trials, the sloppy listener left out
    assert noisy["ci95"] == pytest.approx(mean_ci([40, 60, 40, 60])["ci95"])
    assert results["items"]["song_0"][REF]["mean"] == 98

    report = write_results(test)
    text = report.read_text()
    assert f"- excluded {ids['sloppy']} (sloppy): hidden reference rated below 90 in 2 of 2 trials" in text
    assert "| noisy | 4 | 50.0 | ± " in text and "4 listener(s), 2 kept" in text
    with open(report.parent / "ratings.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 * 5 + 1
    assert {r["name"] for r in rows if r["excluded"] == "1"} == {"sloppy", "partial"}
    with open(report.parent / "conditions.csv") as f:
        conditions = {r["condition"]: r for r in csv.DictReader(f)}
    assert float(conditions["quiet"]["mean"]) == 92
    assert (report.parent / "plots" / "conditions.png").stat().st_size > 1000
    assert (report.parent / "plots" / "items.png").stat().st_size > 1000


def test_evaluation_report_includes_the_listening_test(rated, tmp_path):
    from heartcodec_lab.evaluate import write_report

    test, _ = rated
    report = write_report(tmp_path / "report", [], title="Comparison", listening_test=test).read_text()
    assert "## Listening test (MUSHRA)" in report and "| hidden_reference | 4 | 98.0 |" in report
    assert "4 listener(s), 2 kept" in report
    assert (tmp_path / "report" / "plots" / "listening_conditions.png").is_file()


def test_study_report_includes_the_listening_test(rated, tmp_path):
    from omegaconf import OmegaConf

    from heartcodec_lab.study.report import write_study_report

    test, _ = rated
    out = tmp_path / "study"
    (out / "eval").mkdir(parents=True)
    cfg = OmegaConf.create(
        {
            "input": "songs",
            "codec": {"path": None},
            "official_encoder": None,
            "budget": {"max_steps": 1},
            "evaluate": {"listening_test": str(test)},
        }
    )
    report = write_study_report(out, cfg, {}, {"encoders": {}}, n_train=1, n_heldout=1).read_text()
    assert "## Listening test (MUSHRA)" in report and "| noisy | 4 | 50.0 |" in report
