"""Token stability inside heartcodec-evaluate: per-clip blocks, summary, report, feature error, resume."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from test_stability import FrameMean, toy_rvq

import heartcodec_lab.encoders as encoders_pkg
from heartcodec_lab.evaluate import run_evaluation
from heartcodec_lab.evaluate.context import EvalContext

SR = 48000


class NoCodec:
    sample_rate = SR

    class config:
        codebook_size = 2

    def describe(self):
        return {"codec": "none"}


@pytest.fixture
def toys(monkeypatch):
    rvq, built = toy_rvq(levels=8), {}

    def build(kind, path, codec, **kwargs):
        built[kind] = FrameMean(rvq, scale=1.1 if kind == "student" else 1.0)
        return built[kind]

    monkeypatch.setattr(EvalContext, "codec", property(lambda self: NoCodec()))
    monkeypatch.setattr(encoders_pkg, "build_encoder", build)
    return built


def cfg(tmp_path, **stability):
    folder = tmp_path / "clips"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        sig = (0.5 + 0.3 * rng.standard_normal(SR)).astype(np.float32)  # 1 s, 13 frames
        sf.write(folder / f"clip_{i}.wav", np.stack([sig, sig], 1), SR)
    return {
        "mode": "encoders",
        "output": str(tmp_path / "run"),
        "resume": True,
        "input": str(folder),
        "codec": {"path": None},
        "codebook_size": 2,
        "audio": {"extensions": ["wav"], "max_clips": None, "max_seconds": None, "min_seconds": 0.1},
        "encoders": [
            {"name": "student", "kind": "student", "path": None},
            {"name": "ref", "kind": "ref", "path": None},
        ],
        "reference": "ref",
        "reconstruction": False,
        "roundtrip": False,
        "music_metrics": False,
        "mula": {"enabled": False},
        "plots": {"spectrogram_clips": 0},
        "detokenize": {"num_steps": 2, "guidance_scale": 1.25, "duration": 29.76, "seed": 0},
        "stability": {
            "encoders": "reference",
            "changes": ["gain_+0.01dB", "noise_-60dB", "delay_1"],
            "seed": 0,
            "feature_error": True,
            **stability,
        },
    }


def test_reference_stability_and_student_feature_error(tmp_path, toys):
    summary = run_evaluation(cfg(tmp_path))
    ref, student = summary["encoders"]["ref"], summary["encoders"]["student"]
    assert set(ref["stability"]) == {"gain_+0.01dB", "noise_-60dB", "delay_1"} and "stability" not in student
    for block in ref["stability"].values():
        assert block["frames"] == 26 and len(block["match_rate"]) == 8
        assert all(0.0 <= r <= 1.0 for r in block["match_rate"])
    # the student's features are the reference's x1.1: exactly 10 % apart in the RVQ's input space
    assert student["feature_error"]["relative_rvq_input"] == pytest.approx(0.1, rel=1e-5)
    assert "feature_error" not in ref
    assert summary["stability_params"]["encoders"] == ["ref"] and summary["stability_params"]["skipped"] == {}
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Token stability" in report and "### ref" in report
    assert "**student**: q0: " in report and "of a ceiling of" in report and "10.00 %" in report


def test_stability_records_are_reused_on_resume_and_redone_when_changes_change(tmp_path, toys):
    first = run_evaluation(cfg(tmp_path))
    items = (tmp_path / "run" / "items.jsonl").read_text()
    again = run_evaluation(cfg(tmp_path))
    assert (tmp_path / "run" / "items.jsonl").read_text() == items
    assert again["encoders"]["ref"]["stability"] == first["encoders"]["ref"]["stability"]
    other = run_evaluation(cfg(tmp_path, changes=["gain_-0.01dB"], encoders="all"))
    assert set(other["encoders"]["ref"]["stability"]) == {"gain_-0.01dB"}
    assert set(other["encoders"]["student"]["stability"]) == {"gain_-0.01dB"}


def test_no_stability_settings_measure_nothing(tmp_path, toys):
    config = cfg(tmp_path)
    del config["stability"]
    summary = run_evaluation(config)
    assert all("stability" not in b and "feature_error" not in b for b in summary["encoders"].values())


def test_unknown_encoder_name_is_refused(tmp_path, toys):
    with pytest.raises(ValueError, match="not configured encoders"):
        run_evaluation(cfg(tmp_path, encoders=["nobody"]))


def test_delay_alignment_in_records_uses_the_input_rate(toys):
    from heartcodec_lab.evaluate.stability import measure_stability

    # 48 kHz input, a half-frame delay (1920 samples) at the input rate: the toy encoder (1 kHz) sees 40 samples
    x = torch.full((2, SR), 0.3)
    result = measure_stability(FrameMean(toy_rvq()), [x], SR, ["delay_half"])
    assert result["changes"]["delay_half"]["frames"] == 13


def test_study_report_has_the_stability_overview(tmp_path):
    from omegaconf import OmegaConf

    from heartcodec_lab.study.report import write_study_report

    out = tmp_path / "study"
    (out / "eval").mkdir(parents=True)
    (out / "eval" / "items.jsonl").write_text("")

    def block(rates):
        return {"match_rate": rates, "match_rate_first_k": rates, "feature_change": 0.1}

    evaluation = {
        "config": {"reference": "minicodec"},
        "encoders": {
            "minicodec": {
                "stability": {"noise_-60dB": block([0.96, 0.86] + [0.5] * 6), "delay_1": block([0.6, 0.2] + [0.0] * 6)}
            },
            "distill": {
                "agreement": {"match_rate": [0.92, 0.83] + [0.1] * 6},
                "feature_error": {"relative_rvq_input": 0.0123},
                "stability": {"delay_1": block([0.95, 0.5] + [0.0] * 6)},
            },
        },
    }
    cfg = OmegaConf.create(
        {"input": "songs", "codec": {"path": None}, "official_encoder": None, "budget": {"max_steps": 3}}
    )
    report = write_study_report(out, cfg, {}, evaluation, n_train=3, n_heldout=1).read_text()
    assert "## Token stability" in report
    assert "| minicodec | reference | 96/86/50/50 | 60/20/0/0 |" in report
    assert "| distill | 1.23 | n/a | 95/50/0/0 |" in report
    assert "q0: 92 % of a ceiling of 96 %; q1: 83 % of a ceiling of 86 %" in report
