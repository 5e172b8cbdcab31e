"""benchmarks/gpu_check.sh: says so and exits 0 without CUDA; on a CUDA machine runs every stage within 5 minutes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def test_without_a_cuda_device_it_says_so_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT), "--quick"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA device" in proc.stdout


def test_the_batch_goes_to_the_device_through_the_same_helper_on_cpu():
    from heartcodec_lab.tokenize.pipeline import to_device

    batch = torch.randn(2, 2, 16)
    assert to_device(batch, "cpu") is batch or torch.equal(to_device(batch, "cpu"), batch)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_every_stage_runs_and_reports_peak_memory():
    from heartcodec_lab.tokenize.pipeline import to_device

    moved = to_device(torch.randn(2, 2, 16), "cuda")
    assert moved.device.type == "cuda"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT), "--quick"], capture_output=True, text=True, env=env, timeout=330)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for stage in (
        "tokenize official fp32",
        "tokenize official bf16",
        "tokenize projection",
        "detokenize",
        "train 1 step",
    ):
        assert stage in proc.stdout, proc.stdout
    assert "peak GPU memory" in proc.stdout and "n/a" not in proc.stdout
