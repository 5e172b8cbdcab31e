"""What `python train.py` prints: Lightning's lines once, no tips or deprecation noise, a step-based bar."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from heartcodec_lab.training.console import listening_files, quiet_library_warnings, route_lightning_logs, run_summary

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_train_py_prints_each_message_once_and_a_step_bar(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "+experiment=demo",
        "debug=fast",
        "trainer.max_steps=2",
        "codec.path=embedded:random",
        "trainer.enable_progress_bar=true",
        "callbacks.reconstruction_preview.num_clips=0",
        "~logger",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    out = subprocess.run(
        cmd,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
        env={**__import__("os").environ, "COLUMNS": "160", "PYTHONWARNINGS": ""},
    )
    assert out.returncode == 0, out.stderr
    printed = out.stdout + out.stderr
    assert printed.count("GPU available") == 1, printed
    assert printed.count("`Trainer.fit` stopped") == 1
    for noise in ("Tip", "litlogger", "deprecated", "Epoch", "INFO:", "Warning"):
        assert noise not in printed, (noise, printed)
    assert "step 2/2" in out.stdout and "loss " in out.stdout and "realtime" in out.stdout
    # it ends by saying where everything went
    run_dir = tmp_path / "run"
    assert f"Done: 2 steps; outputs in {run_dir}/" in out.stdout
    assert f"projection  {run_dir / 'projection'}/" in out.stdout and (run_dir / "projection").is_dir()
    assert "listen      none written" in out.stdout and f"summary     {run_dir / 'summary.json'}" in out.stdout
    # the full-format lines go to the run's log file, once as well
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.count("GPU available") == 1 and "[lightning.pytorch.utilities.rank_zero][INFO]" in log


def test_lightning_logs_one_path_and_no_tips(monkeypatch):
    import lightning.pytorch  # noqa: F401  (installs Lightning's own handler)

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    route_lightning_logs()  # no root handlers: Lightning's own handler stays, nothing propagates
    top = logging.getLogger("lightning")
    assert len(top.handlers) == 1 and top.propagate is False
    monkeypatch.setattr(root, "handlers", [Collect()])
    route_lightning_logs()  # root configured (Hydra): everything goes through it, once
    assert top.handlers == [] and top.propagate
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    rank_zero.info("GPU available: False")
    rank_zero.info("💡 Tip: For seamless cloud logging, try installing litlogger")
    assert seen == ["GPU available: False"]


def test_library_deprecations_hidden_ours_kept(monkeypatch):
    monkeypatch.setattr(sys, "warnoptions", [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_warnings()
        warnings.warn_explicit("old api", FutureWarning, "x.py", 1, module="lightning.pytorch.utilities._pytree")
        warnings.warn_explicit("our own", FutureWarning, "y.py", 1, module="heartcodec_lab.training.run")
    assert [str(w.message) for w in caught] == ["our own"]


def test_run_summary_names_the_newest_listening_files(tmp_path):
    for step in ("step0000010", "step0000040"):
        folder = tmp_path / "reconstructions" / step
        folder.mkdir(parents=True)
        for name in ("clip0_input.wav", "clip0_recon.wav"):
            (folder / name).write_bytes(b"")
    (tmp_path / "reconstructions" / "step0000040" / "index.json").write_text("[]")
    files = listening_files(tmp_path)
    assert [p.name for p in files] == ["clip0_input.wav", "clip0_recon.wav"]
    assert files[0].parent.name == "step0000040"
    text = run_summary({"global_step": 40, "listening_files": [str(p) for p in files]}, tmp_path)
    assert text.splitlines()[0] == f"Done: 40 steps; outputs in {tmp_path}/"
    assert "not exported" in text and f"{files[0].parent}/  clip0_input.wav, clip0_recon.wav" in text
    assert listening_files(tmp_path / "nothing") == []
