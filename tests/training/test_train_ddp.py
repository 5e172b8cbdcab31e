"""More than one process: `trainer=ddp` on two CPU processes (gloo) through the real `train.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ddp_two_cpu_processes_train_in_lockstep(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "+experiment=distill",
        "debug=fast",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_steps=2",
        "data.samples_per_epoch=8",
        "callbacks.reconstruction_preview.num_clips=0",
        f"paths.output_dir={out}",
        "codec.path=embedded:random",
        "teacher=official",  # plumbing: the random tiny models
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    # cwd: Hydra's own run folder (outputs/...) lands in tmp_path, for both processes
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["global_step"] == 2 and summary["batches_seen"] == 2 and summary["skipped_steps"] == 0
    # gradients were all-reduced: both ranks hold bit-identical projections after the steps
    shas = summary["projection_sha256_per_rank"]
    assert len(shas) == 2 and shas[0] == shas[1]
    assert (out / "projection" / "projection.safetensors").is_file()
