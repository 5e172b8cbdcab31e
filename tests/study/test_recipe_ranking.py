"""The recipe ranking, a heartcodec-study preset (heartcodec_lab/study/ranking*.py, conf/preset/ranking.yaml).

Fast: per-level agreement with known answers, the table, the run key, the reuse of a finished run.
Slow: the whole preset at a tiny budget (recipes trained, exported, scored against the true encoder).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from heartcodec_lab.evaluate.metrics import level_agreement
from heartcodec_lab.study import objectives, ranking
from heartcodec_lab.study.ranking_run import REFERENCE, ranking_table

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


# -- the preset's pieces ----------------------------------------------------------------------


def _scores():
    agree = {"frames": 40, "per_level": [0.5, 0.25] + [0.0] * 6, "all_levels": 0.0}
    full = {"frames": 40, "per_level": [1.0] * 8, "all_levels": 1.0}
    metrics = {"chroma_similarity": 0.5, "onset_correlation": 0.875, "log_mel_l1": 1.25, "mstft_distance": 2.0}
    return {REFERENCE: {**metrics, "agreement": full}, "flow": {**metrics, "agreement": agree}}


def test_ranking_table_has_per_level_columns_feature_error_and_budget():
    records = {"flow": {"steps": 100, "cpu_s": 90.0, "cpu_s_per_step": 0.9, "final": {"relative_feature_error": 0.125}}}
    header, rule, truth, flow = ranking_table(_scores(), records).splitlines()
    cells = [c.strip() for c in flow.strip("|").split("|")]
    assert [c.strip() for c in header.strip("|").split("|")][:5] == ["recipe", "steps", "CPU min", "CPU s/step", "q0 %"]
    assert "all 8 %" in header and "feature err %" in header and "MSTFT" in header
    assert cells == [
        "flow",
        "100",
        "1.5",
        "0.900",
        "50.0",
        "25.0",
        *["0.0"] * 6,
        "0.0",
        "12.5",
        "-",  # no decoder objective in these scores
        "-",  # nor self-agreement
        "0.500",
        "0.875",
        "1.250",
        "2.000",
    ]
    assert [c.strip() for c in truth.strip("|").split("|")][:5] == [REFERENCE, "-", "-", "-", "100.0"]
    # with the reference's own stability ceiling, every level reads "agreement / ceiling"
    with_ceiling = ranking_table(_scores(), records, ceiling=[0.985, 0.95] + [0.5] * 6).splitlines()[3]
    assert "| 50.0 / 98 | 25.0 / 95 |" in with_ceiling


def test_run_key_follows_a_recipes_own_settings_only():
    s = {"steps": 10, "overrides": ["a=1"], "recipe_overrides": {"conv1d": ["x=1"]}, "wall_limit_s": None}
    key = ranking.settings_key("flow", s)
    assert key == ranking.settings_key("flow", {**s, "recipe_overrides": {"conv1d": ["x=2"]}, "wall_limit_s": 60})
    assert key != ranking.settings_key("flow", {**s, "steps": 11})
    assert ranking.settings_key("conv1d", s) != ranking.settings_key("conv1d", {**s, "recipe_overrides": {}})
    # a recipe's own data sizes change its key only
    sized = {**s, "recipe_sizes": {"adapter": {"crop_seconds": 0.64}}}
    assert ranking.settings_key("flow", sized) == key
    assert ranking.settings_key("adapter", sized) != ranking.settings_key("adapter", s)


def test_agreement_and_feature_error_known_answers():
    from heartcodec_lab.codec import RANDOM_CODEC, load_codec
    from heartcodec_lab.encoders.projection import LinearProjection

    codec = load_codec(RANDOM_CODEC)
    torch.manual_seed(0)
    proj = LinearProjection(
        latent_dim=codec.config.latent_hidden_dim, hidden_dim=16, num_layers=1, out_dim=codec.config.dim
    )
    latents = torch.randn(1, 2 * codec.config.latent_hidden_dim, 20)

    class Module:
        projection = proj

    with torch.no_grad():
        feats = proj(latents)
        _, codes = codec.quantize(feats)
    same = ranking.agreement(Module, codec, latents, feats, codes)
    assert same["per_level"] == [1.0] * 8 and same["all_levels"] == 1.0 and same["relative_feature_error"] == 0.0
    shifted = codes.clone()
    shifted[:, 2, :5] = (shifted[:, 2, :5] + 1) % codec.config.codebook_size  # q2 wrong on 5 of 10 frames
    other = ranking.agreement(Module, codec, latents, 2 * feats, shifted)
    assert other["per_level"][2] == 0.5 and other["all_levels"] == 0.5
    # measured after project_in (affine: W x + b), relative to the reference there: |W x| / |2 W x + b|
    p = codec.quantizer.project_in
    w_x = p(feats) - p.bias
    expected = float(w_x.norm() / (2 * w_x + p.bias).norm())
    assert other["relative_feature_error"] == pytest.approx(expected, rel=1e-5) and 0.45 < expected < 0.55


def test_decoder_objective_is_the_flow_loss_on_fixed_draws_and_prefers_the_true_tokens():
    """The codec's own objective on the miniature: deterministic for a seed, lowest for the true encoder's
    features among perturbations of them, and read relative to the reference in the table."""
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.encoders import build_encoder
    from heartcodec_lab.minicodec.data import held_out_pieces
    from heartcodec_lab.study.ranking_run import add_decoder_objective

    codec = load_codec()
    truth = build_encoder("minicodec", None, codec)
    audio = held_out_pieces(1, 2.56)  # [1, 2, S]
    with torch.no_grad():
        latents = truth.latents(audio)
        feats = truth.projection(latents)
    value = objectives.decoder_objective(codec, feats, latents, draws=4, seed=3)
    assert value == objectives.decoder_objective(codec, feats, latents, draws=4, seed=3)
    assert value != objectives.decoder_objective(codec, feats, latents, draws=4, seed=4)
    # the condition of other frames (time reversed) and no condition at all both score worse
    assert value < objectives.decoder_objective(codec, feats.flip(1), latents, draws=4, seed=3)
    assert value < objectives.decoder_objective(codec, torch.zeros_like(feats), latents, draws=4, seed=3)

    class Reversed:
        projection = staticmethod(lambda lat: truth.projection(lat).flip(1))

    scores = {REFERENCE: {}, "reversed": {}}
    add_decoder_objective(scores, codec, {"reversed": Reversed}, {"latents": latents, "ref_features": feats}, seed=3)
    assert scores[REFERENCE]["decoder_objective_rel_pct"] == 0.0
    assert scores["reversed"]["decoder_objective"] > scores[REFERENCE]["decoder_objective"]
    assert scores["reversed"]["decoder_objective_rel_pct"] == pytest.approx(
        100 * (scores["reversed"]["decoder_objective"] / scores[REFERENCE]["decoder_objective"] - 1)
    )


def test_crops_longer_than_the_pieces_are_refused_in_one_line():
    lat, audio = torch.zeros(1, 256, 50), torch.zeros(1, 2, 50 * 1920)
    aud, crop = ranking._crops(audio, lat, 2, 50, torch.Generator().manual_seed(0))
    assert crop.shape == (2, 256, 50) and aud.shape == (2, 2, 50 * 1920)
    with pytest.raises(ValueError, match="crop_seconds"):
        ranking._crops(audio, lat, 2, 64, torch.Generator().manual_seed(0))


def test_a_finished_run_is_reused(tmp_path, monkeypatch):
    s = {"steps": 5, "seed": 0, "overrides": [], "recipe_overrides": {}, "wall_limit_s": None}
    record = {"recipe": "flow", "key": ranking.settings_key("flow", s), "done": True, "steps": 5}
    (tmp_path / "flow").mkdir()
    (tmp_path / "flow" / "run.json").write_text(json.dumps(record))
    monkeypatch.setattr("heartcodec_lab.training.run.build_module", lambda *a, **k: pytest.fail("trained again"))
    assert ranking.train_recipe("flow", s, None, None, None, None, tmp_path) == record


# -- end to end -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ranking_preset_trains_recipes_and_scores_them_against_the_true_encoder(tmp_path):
    from omegaconf import OmegaConf

    from heartcodec_lab.study.run import run_study

    cfg = OmegaConf.load(ranking.__file__.replace("heartcodec_lab/study/ranking.py", "conf/preset/ranking.yaml"))
    cfg.ranking.update(
        {
            "recipes": ["flow", "distill", "conv1d"],
            "steps": 3,
            "curve_every": 2,
            "train_pieces": 2,
            "piece_seconds": 2.0,
            "crop_seconds": 0.64,
            "heldout_pieces": 1,
            "heldout_seconds": 2.0,
            "detokenize": {"num_steps": 2, "guidance_scale": 1.25},
        }
    )
    cfg.output = str(tmp_path / "rank")
    cfg.codec = {"path": None}
    report = run_study(cfg)
    result = json.loads((tmp_path / "rank" / "ranking.json").read_text())
    scores = result["scores"]
    assert list(scores) == [REFERENCE, "flow", "distill", "conv1d"]
    assert scores[REFERENCE]["agreement"]["all_levels"] == 1.0
    for recipe in ("flow", "distill", "conv1d"):
        rec = result["records"][recipe]
        assert rec["steps"] == 3 and rec["cpu_s"] > 0 and [c["step"] for c in rec["curve"]] == [2, 3]
        export = json.loads((tmp_path / "rank" / recipe / "projection" / "projection_config.json").read_text())
        assert len(export["extra"]["agreement_with_reference"]["per_level"]) == 8
        assert all(math.isfinite(scores[recipe][m]) for m in ("log_mel_l1", "mstft_distance"))
        assert math.isfinite(scores[recipe]["decoder_objective_rel_pct"])
        assert all(0 <= v <= 1 for v in scores[recipe]["self_agreement"]["delay_1"])
    # the reference's row: its own objective (0 % by definition) and its stability, the ceiling's source
    assert scores[REFERENCE]["decoder_objective_rel_pct"] == 0.0
    assert scores[REFERENCE]["self_agreement"]["noise_-60dB"] == result["ceiling"]
    text = report.read_text()  # header, rule, the reference and the three recipes
    assert text.count("\n| ") == 6 and (tmp_path / "rank" / "q0_vs_steps.png").is_file()
    # every student's level reads "agreement / the reference's own ceiling", the ceiling a percentage
    ceiling = json.loads((tmp_path / "rank" / "ranking.json").read_text())["ceiling"]
    assert len(ceiling) == 8 and all(0 <= c <= 1 for c in ceiling) and f"/ {100 * ceiling[0]:.0f} |" in text
    # again: nothing is trained, the scores are the same (same pieces, same decoder noise)
    run_study(cfg)
    assert json.loads((tmp_path / "rank" / "ranking.json").read_text())["scores"] == scores
