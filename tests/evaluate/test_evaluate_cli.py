"""``heartcodec-evaluate`` as a Hydra app on the random tiny codec and embedded encoders (real detokenize)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from heartcodec_lab.audio import save_audio
from heartcodec_lab.cli.evaluate import main
from heartcodec_lab.codec import RANDOM_CODEC
from heartcodec_lab.data.synth import synth_music
from heartcodec_lab.evaluate import run_evaluation


def evaluate(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "heartcodec_lab.cli.evaluate", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_config_composes_with_overrides(compose):
    cfg = compose("evaluate", "mode=encoders", "input=clips", "detokenize.num_steps=2", "mula.enabled=true")
    assert cfg.codec.path is None and cfg.reference is None
    assert [(e.name, e.kind, e.path) for e in cfg.encoders] == [("minicodec", "minicodec", None)]
    assert cfg.detokenize.num_steps == 2 and cfg.mula.enabled and cfg.mode == "encoders" and cfg.input == "clips"


@pytest.fixture
def one_clip(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    save_audio(clips / "song.flac", synth_music(1.6, seed=3), 48000)
    (clips / "song.txt").write_text("piano, calm\n")
    return clips


def test_cli_on_embedded_models(tmp_path, one_clip, monkeypatch):
    # in-process (the slow test below goes through a subprocess); one encoder and one Euler step keep it
    # affordable, since every encode and detokenize works on a whole 29.76 s window
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "heartcodec-evaluate",
            "mode=encoders",
            f"input={one_clip}",
            f"output={out}",
            f"codec.path={RANDOM_CODEC}",
            "encoders=[{name: proj, kind: projection}]",
            "reference=null",
            "detokenize.num_steps=1",
            "roundtrip=false",
            "mula.enabled=true",
        ],
    )
    main()
    summary = json.loads((out / "summary.json").read_text())
    proj = summary["encoders"]["proj"]
    assert proj["frames"] == 21  # int(1.6 * 12.5) + 1
    recon = proj["reconstruction"]
    assert recon["mstft_distance"]["mean"] > 0 and np.isfinite(recon["si_sdr_db"]["mean"])
    assert proj["nll_per_frame_nats"]["mean"] > 0
    assert summary["codec"]["kind"] == "embedded-tiny"
    tokens = np.load(out / "tokens" / "proj" / "song.flac.npy")
    assert tokens.dtype == np.int16 and tokens.shape == (8, 21)
    report = (out / "report.md").read_text()
    assert "## HeartMuLa likelihood" in report and "song.flac__proj.png" in report
    assert (out / "plots" / "spectrograms" / "song.flac__proj.png").stat().st_size > 1000


def test_bad_input_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing: input folder not found"):
        run_evaluation(
            {
                "output": str(tmp_path / "o"),
                "mode": "encoders",
                "input": str(tmp_path / "missing"),
                "codec": {"path": None},
                "resume": True,
                "encoders": [{"name": "x", "kind": "official"}],
                "reference": None,
                "audio": {"extensions": ["wav"]},
            }
        )


@pytest.mark.slow
def test_cli_full_run_with_dataset_and_compare(tmp_path, one_clip):
    # every feature at once: two encoders with agreement and round trip, a rerun that resumes,
    # a dataset made of the run's own tokens, then a comparison of the two runs
    out = tmp_path / "full"
    models = [
        f"codec.path={RANDOM_CODEC}",
        "reference=official",
        "encoders=[{name: official, kind: official}, {name: projection, kind: projection}]",
    ]
    result = evaluate(
        "mode=encoders", f"input={one_clip}", f"output={out}", "detokenize.num_steps=2", *models, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["encoders"]["official"]["roundtrip"]["match_rate"]) == 8
    assert len(summary["encoders"]["projection"]["agreement"]["match_rate_first_k"]) == 8
    again = evaluate(
        "mode=encoders", f"input={one_clip}", f"output={out}", "detokenize.num_steps=2", *models, cwd=tmp_path
    )
    assert again.returncode == 0 and "with official" not in again.stderr + again.stdout
    assert len((out / "items.jsonl").read_text().splitlines()) == 2
    ds = out / "tokens" / "official"
    dataset = evaluate("mode=usage", f"input={tmp_path / 'ds'}", f"output={tmp_path / 'usage'}", cwd=tmp_path)
    assert dataset.returncode != 0 and "dataset folder not found" in dataset.stderr
    (tmp_path / "ds" / "tokens").mkdir(parents=True)
    for p in ds.glob("*.npy"):
        (tmp_path / "ds" / "tokens" / p.name).write_bytes(p.read_bytes())
    dataset = evaluate("mode=usage", f"input={tmp_path / 'ds'}", f"output={tmp_path / 'usage'}", cwd=tmp_path)
    assert dataset.returncode == 0, dataset.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "usage" / "counts.npy"), np.load(out / "counts_official.npy"))
    cmp = evaluate("mode=compare", f"input=[{out},{tmp_path / 'usage'}]", f"output={tmp_path / 'cmp'}", cwd=tmp_path)
    assert cmp.returncode == 0, cmp.stderr[-3000:]
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "| full/official |" in report and "| usage/dataset |" in report
