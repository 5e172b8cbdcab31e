"""Proof that training learns (slow): the recipes of training/learning_proof.py on the embedded tiny codec, CPU.

`python benchmarks/bench_learning.py` prints the same numbers as a table.
"""

from __future__ import annotations

import pytest

from heartcodec_lab.training.learning_proof import gap_closed_pct, prove_learning


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 3000 steps: about 20 min on one busy core, past the default 900 s
def test_distill_learns_the_hidden_teachers_tokens_on_held_out_clips():
    (result,) = prove_learning(["distill"])
    before, after = result["before"], result["after"]
    assert before["val/agree_q0_pct"] < 50
    # 864 held-out frames (12 unseen pieces): one frame is 0.12 %; measured 96.4 %
    assert after["val/agree_q0_pct"] >= 95.0
    # deeper quantizers resolve finer residuals: they agree less, but far above chance
    for q in range(1, 8):
        assert after[f"val/agree_q{q}_pct"] > before[f"val/agree_q{q}_pct"]
    assert result["skipped_steps"] == 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_flow_and_reconstruction_lower_their_held_out_losses():
    flow, recon = prove_learning(["flow", "reconstruction"])
    assert recon["after"]["val/loss/total"] < 0.7 * recon["before"]["val/loss/total"]
    # through a decoder fitted to a hidden projection's tokens, the same noise draws for all three:
    # the trained projection must close most of the way from its untrained loss to that floor
    # (the tiny codec's 8-d codes say little about its latents, so the whole gap is small; see
    # docs/training.md)
    assert flow["floor"]["val/loss/flow"] < flow["before"]["val/loss/flow"]
    assert gap_closed_pct(flow, "val/loss/flow") >= 50.0
    assert flow["skipped_steps"] == 0
