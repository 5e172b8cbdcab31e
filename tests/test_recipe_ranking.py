"""Ranking of the projection recipes against the miniature codec (benchmarks/rank_recipes.py).

Fast: per-level agreement with known answers, the ranking's settings, skip and failure paths.
Slow: the whole command at a tiny budget (three recipes trained through train.py, then scored).
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from heartcodec_lab.evaluate.metrics import level_agreement
from heartcodec_lab.minicodec.report import held_out_table

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rank():
    return _load("rank_recipes")


# -- per-level agreement ----------------------------------------------------------------------


def test_level_agreement_counts_each_level_alone_and_all_levels_together_frame_weighted():
    ref1 = np.zeros((8, 10), dtype=np.int64)
    tok1 = ref1.copy()
    tok1[0, 0:2] = 7  # q0 wrong on frames 0-1
    tok1[3, 0:5] = 7  # q3 wrong on frames 0-4 (overlapping q0's)
    ref2 = np.arange(8 * 32).reshape(8, 32)
    tok2 = ref2[:, :30].copy()  # 30 common frames
    tok2[7, 10:16] += 1  # q7 wrong on 6 frames
    result = level_agreement([(tok1, ref1), (tok2, ref2)])
    assert result["frames"] == 40
    assert result["per_level"] == [38 / 40, 1.0, 1.0, 35 / 40, 1.0, 1.0, 1.0, 34 / 40]
    # exact tokens: piece 1 frames 5-9 (5), piece 2 all but the 6 wrong q7 frames (24)
    assert result["all_levels"] == 29 / 40
    # a mean of per-piece rates would give q0 (0.8 + 1) / 2 = 0.9, not the frame-weighted 0.95
    assert level_agreement([(ref2, ref2)]) == {"frames": 32, "per_level": [1.0] * 8, "all_levels": 1.0}


def test_level_agreement_refuses_mismatched_levels_and_no_items():
    with pytest.raises(ValueError, match="quantizer counts differ: 8 vs 4"):
        level_agreement([(np.zeros((8, 5)), np.zeros((4, 5)))])
    with pytest.raises(ValueError, match="no token pairs"):
        level_agreement([])


# -- the ranking command's pieces -------------------------------------------------------------


def test_ranking_table_has_per_level_columns_and_budget(rank):
    agree = {"frames": 40, "per_level": [0.5, 0.25] + [0.0] * 6, "all_levels": 0.0}
    full = {"frames": 40, "per_level": [1.0] * 8, "all_levels": 1.0}
    metrics = {"chroma_similarity": 0.5, "onset_correlation": 0.875, "log_mel_l1": 1.25, "mstft_distance": 2.0}
    scores = {"true encoder": {**metrics, "agreement": full}, "flow": {**metrics, "agreement": agree}}
    table = rank.ranking_markdown(scores, {"flow": {"global_step": 100, "cpu_s": 90.0}})
    header, rule, truth, flow = table.splitlines()
    cells = [c.strip() for c in flow.strip("|").split("|")]
    assert [c.strip() for c in header.strip("|").split("|")][:4] == ["recipe", "steps", "CPU min", "q0 %"]
    assert "all 8 %" in header and "MSTFT" in header
    assert cells == ["flow", "100", "1.5", "50.0", "25.0", *["0.0"] * 6, "0.0", "0.500", "0.875", "1.250", "2.000"]
    assert [c.strip() for c in truth.strip("|").split("|")][:4] == ["true encoder", "-", "-", "100.0"]


def test_overrides_distil_the_true_encoder_and_the_folder_tracks_settings(rank, tmp_path):
    a = rank.parse_args(["--steps", "300"])
    flow = rank.recipe_overrides("flow", Path("/c"), Path("/e"), a)
    distill = rank.recipe_overrides("distill", Path("/c"), Path("/e"), a)
    assert "+experiment=flow" in flow and "trainer.max_steps=300" in flow and "model.optim.warmup_steps=30" in flow
    assert "teacher.path=/e" in distill and not any(o.startswith("teacher") for o in flow)
    weights = {"codec": "a", "encoder": "b"}
    folder = rank.run_folder(tmp_path, "flow", 300, flow, weights)
    assert folder == rank.run_folder(tmp_path, "flow", 300, list(flow), dict(weights))
    assert folder != rank.run_folder(tmp_path, "flow", 300, flow, {"codec": "other", "encoder": "b"})
    heavier = rank.parse_args(["--steps", "300", "--set", "loss.flow.weight=2"])
    more = rank.recipe_overrides("flow", Path("/c"), Path("/e"), heavier)
    assert folder != rank.run_folder(tmp_path, "flow", 300, more, weights)


def test_bad_inputs_end_in_one_line_naming_the_problem(rank, tmp_path):
    codec, encoder = rank.shipped_miniature_dirs()
    with pytest.raises(SystemExit, match=rf"{re.escape(str(tmp_path))}: missing config.json, model.safetensors"):
        rank.check_inputs(tmp_path, encoder, ["flow"], 10)
    with pytest.raises(SystemExit, match="unknown recipe.*nope: conf/experiment/ has .*distill"):
        rank.check_inputs(codec, encoder, ["flow", "nope"], 10)
    with pytest.raises(SystemExit, match="--steps must be at least 1"):
        rank.check_inputs(codec, encoder, ["flow"], 0)


def test_a_finished_run_is_skipped_and_a_failed_one_reported(rank, tmp_path, monkeypatch):
    done = tmp_path / "flow-run"
    (done / "projection").mkdir(parents=True)
    (done / "projection" / "projection.safetensors").write_bytes(b"")
    record = {"recipe": "flow", "done": True, "global_step": 7, "cpu_s": 3.0}
    (done / "rank_run.json").write_text(json.dumps(record))

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(subprocess, "run", no_training)
    assert rank.train_recipe("flow", done, ["+experiment=flow"], 1, quiet=True) == record

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    failed = tmp_path / "distill-run"
    with pytest.raises(SystemExit, match=r"training distill failed \(exit code 1\); see .*console.log"):
        rank.train_recipe("distill", failed, ["+experiment=distill"], 1, quiet=True)
    assert json.loads((failed / "rank_run.json").read_text())["done"] is False


# -- end to end -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_rank_recipes_trains_three_recipes_and_scores_them_with_the_true_encoder(rank, tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTCODEC_CACHE", str(tmp_path / "cache"))
    args = ["--steps", "2", "--out", str(tmp_path / "rank"), "--threads", "1", "--pieces", "1", "--seconds", "4",
            "--train-pieces", "2", "--piece-seconds", "4", "--crop-seconds", "0.64", "--quiet"]
    result = rank.main(args)
    scores = result["scores"]
    assert list(scores) == ["true encoder", "conv1d", "flow", "distill"]
    assert scores["true encoder"]["agreement"]["all_levels"] == 1.0
    for recipe in ("conv1d", "flow", "distill"):
        run = Path(result["runs"][recipe])
        assert result["records"][recipe]["global_step"] == 2 and result["records"][recipe]["cpu_s"] > 0
        assert (run / "projection" / "projection.safetensors").is_file()
        assert json.loads((run / "summary.json").read_text())["provenance"]["embedded"] == []
        agreement = scores[recipe]["agreement"]
        # 4 s at 12.5 Hz (the encoders pad the last frame): the same frames as the true encoder's
        assert agreement["frames"] == scores["true encoder"]["agreement"]["frames"] in (50, 51)
        assert all(0 <= r <= 1 for r in agreement["per_level"])
        assert agreement["all_levels"] <= min(agreement["per_level"])
        assert all(math.isfinite(scores[recipe][m]) for m in ("log_mel_l1", "mstft_distance"))
    assert "teacher.kind=projection" in result["records"]["distill"]["overrides"]
    # three differently trained projections decode to different audio
    assert len({round(scores[r]["mstft_distance"], 6) for r in scores}) == 4
    table = (tmp_path / "rank" / "ranking.md").read_text()
    assert table.count("\n| ") == 6 and "| true encoder |" in table

    # again: nothing is trained, the scores are the same (same pieces, same decoder noise)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("trained again"))
    again = rank.main(args)
    assert again["scores"] == scores

    # the true encoder's row is the held-out report's miniature row (bench_minicodec.py) on the same pieces
    bench = held_out_table(1, 4.0, result["settings"]["codec"], result["settings"]["encoder"], 0)
    for m in ("chroma_similarity", "onset_correlation", "log_mel_l1", "mstft_distance"):
        assert bench["minicodec"][m] == pytest.approx(scores["true encoder"][m], rel=1e-6)
