"""Stage 2's quantizer dropout and the held-out report's pieces (tone pitch, cents, depth curve)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from heartcodec_lab.codec.model import HeartCodec
from heartcodec_lab.codec.scalar_model import ScalarModel
from heartcodec_lab.encoders.projection import Conv1dProjection
from heartcodec_lab.minicodec.config import mini_config
from heartcodec_lab.minicodec.report import (
    cents,
    checkpoint_rows,
    harmonic_tone,
    load_stage1_checkpoint,
    pitch_hz,
    training_probes,
)
from heartcodec_lab.minicodec.stage2 import Stage2Loss

TINY = {"width": 2, "codebook_dim": 4, "heads": 2, "head_dim": 16, "layers": 1, "layers_2": 1}


def setup():
    torch.manual_seed(0)
    codec = HeartCodec(mini_config(**TINY))
    encoder = Conv1dProjection(latent_dim=128, num_channels=2, hidden_dim=16, num_layers=1, kernel_size=3, out_dim=512)
    return codec, encoder


def test_quantizer_dropout_decodes_rows_from_their_first_k_levels():
    codec, encoder = setup()
    loss_fn = Stage2Loss(codec.flow_matching, encoder, level_dropout=1.0)
    rvq = codec.flow_matching.vq_embed
    feats = torch.randn(16, 5, 512, requires_grad=True)
    rvq.eval()  # no EMA update, so the code vectors below are the ones the codes were chosen from
    quantized, codes, _ = rvq(feats)
    quantized = feats + (quantized - feats).detach()  # straight-through, as the train-mode RVQ returns it
    torch.manual_seed(3)
    out = loss_fn.first_levels(feats, quantized, codes)
    per_level = rvq.get_codes_from_indices(codes)  # [8, B, T, codebook_dim]
    seen = set()
    for row in range(16):
        matches = [
            k for k in range(1, 9) if torch.allclose(out[row], rvq.project_out(per_level[:k, row].sum(0)), atol=1e-5)
        ]
        assert len(matches) == 1, (row, matches)  # each row is exactly one depth's output
        seen.add(matches[0])
    assert len(seen) >= 4  # depths are drawn per row
    out.sum().backward()  # straight-through: the encoder's features get gradients at every depth
    assert feats.grad is not None and bool((feats.grad.abs().sum(-1) > 0).all())


def test_no_quantizer_dropout_leaves_the_full_output():
    codec, encoder = setup()
    loss_fn = Stage2Loss(codec.flow_matching, encoder, level_dropout=0.0)
    quantized = torch.randn(4, 5, 512)
    codes = torch.zeros(4, 5, 8, dtype=torch.long)
    assert loss_fn.first_levels(torch.randn(4, 5, 512), quantized, codes) is quantized


def test_pyin_pitch_of_a_harmonic_tone_and_cents():
    tone = harmonic_tone(220.0, seconds=1.0)
    assert tone.shape == (2, 48000) and float(tone.abs().max()) == pytest.approx(0.3, abs=1e-3)
    assert abs(cents(pitch_hz(tone), 220.0)) < 10
    assert abs(cents(pitch_hz(harmonic_tone(82.41, seconds=1.0)), 82.41)) < 10
    assert cents(440.0, 220.0) == pytest.approx(1200.0)
    assert cents(220.0 * 2 ** (1 / 24), 220.0) == pytest.approx(50.0)
    assert math.isnan(cents(float("nan"), 220.0))
    assert math.isnan(pitch_hz(torch.zeros(2, 48000)))  # silence: nothing voiced


def test_training_probes_are_read_in_step_order_and_a_reprobed_step_keeps_its_last_row(tmp_path):
    rows = [{"step": 500, "chroma": 0.5}, {"step": 250, "chroma": 0.4}, {"step": 500, "chroma": 0.6}]
    (tmp_path / "stage1_eval.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    probes = training_probes(tmp_path)
    assert list(probes) == ["stage1"]  # no stage2_eval.jsonl: no stage 2 entry
    assert [(r["step"], r["chroma"]) for r in probes["stage1"]] == [(250, 0.4), (500, 0.6)]


def test_a_broken_probe_line_names_the_file_and_line(tmp_path):
    (tmp_path / "stage2_eval.jsonl").write_text('{"step": 100, "log_mel_l1": 1.0}\n{"log_mel_l1": 0.9}\n')
    with pytest.raises(ValueError, match=r"stage2_eval.jsonl, line 2"):
        training_probes(tmp_path)


def test_a_stage1_checkpoint_loads_at_its_own_width_and_scores_like_its_model(tmp_path):
    torch.manual_seed(0)
    model = ScalarModel(mini_config(width=2))
    torch.save({"step": 7, "modules": {"model": model.state_dict()}}, tmp_path / "stage1.pt")
    loaded, step = load_stage1_checkpoint(tmp_path / "stage1.pt")
    assert step == 7 and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    pieces = 0.1 * torch.randn(1, 2, 48000)
    ((name, row),) = checkpoint_rows([tmp_path / "stage1.pt"], pieces).items()
    assert name.endswith("(step 7)")
    assert row["log_mel_l1"] > 0 and -1 <= row["onset_correlation"] <= 1


def test_a_file_that_is_not_a_stage1_checkpoint_is_refused_by_name(tmp_path):
    torch.save({"step": 1, "modules": {"flow_matching": {}}}, tmp_path / "stage2.pt")
    with pytest.raises(ValueError, match=r"stage2.pt: not a stage-1 checkpoint"):
        load_stage1_checkpoint(tmp_path / "stage2.pt")
