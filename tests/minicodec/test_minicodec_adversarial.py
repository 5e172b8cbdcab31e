"""The miniature's second model: discriminators learn, the generator hears them only after warm-up,
training resumes bit-identically (discriminator, both optimizers, RNG, data position included),
quantizer dropout decodes from the first k levels, and the rich bank keeps the held-out programs out.

Tiny sizes (ScalarModel width 2, 4-frame segments, two-period / one-STFT discriminators).
"""

from __future__ import annotations

import json

import pytest
import torch

from heartcodec_lab.minicodec.data import (
    HELD_OUT_BASS,
    HELD_OUT_CHORDS,
    HELD_OUT_LEADS,
    RICH_STYLES,
    rich_notes,
    train_bank,
)
from heartcodec_lab.minicodec.discriminators import (
    MultiDiscriminator,
    discriminator_loss,
)
from heartcodec_lab.minicodec.stage1_run import (
    Stage1Settings,
    setup_stage1,
    train_stage1,
)
from heartcodec_lab.training.plain_loop import checkpoint_step

TINY = {
    "width": 2,
    "batch": 2,
    "segment_frames": 4,
    "n_pieces": 2,
    "piece_seconds": 0.5,
    "eval_every": 0,
    "noise_steps": 1,
    "warmup_steps": 1,
    "w_adv": 1.0,
    "disc_from_step": 1,
    "adv_from_step": 2,
    "disc_batch": 2,
    "disc_periods": [2, 3],
    "disc_fft_sizes": [256],
    "disc_period_channels": [4, 4],
    "disc_stft_channels": 4,
    "bank": "rich",
}


def tiny_disc() -> MultiDiscriminator:
    torch.manual_seed(0)
    return MultiDiscriminator(periods=(2, 3), fft_sizes=(256,), period_channels=(4, 4), stft_channels=4)


@pytest.mark.parametrize("objective", ["hinge", "lsgan"])
def test_a_discriminator_step_lowers_its_loss_on_fixed_data(objective):
    disc = tiny_disc()
    g = torch.Generator().manual_seed(1)
    real = torch.sin(torch.arange(4096) * 0.05)[None, None].repeat(2, 1, 1)  # a tone
    fake = 0.3 * torch.randn(2, 1, 4096, generator=g)  # noise
    opt = torch.optim.Adam(disc.parameters(), 3e-3)
    with torch.no_grad():
        before = float(discriminator_loss(disc(real), disc(fake), objective))
    for _ in range(15):
        loss = discriminator_loss(disc(real), disc(fake), objective)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(discriminator_loss(disc(real), disc(fake), objective))
    assert after < 0.8 * before, (before, after)
    with pytest.raises(ValueError, match="unknown adversarial objective"):
        discriminator_loss(disc(real), disc(fake), "wasserstein")


def _grads_after_perturbing_the_discriminator(step_index: int) -> tuple[dict, dict, list]:
    """Generator gradients of step ``step_index`` with the discriminator as is and with its weights doubled."""
    s = Stage1Settings(**TINY)
    grads, parts_seen = [], []
    for scale in (1.0, 2.0):
        model, _sampler, _, modules, _, _, step = setup_stage1(s, resuming=False)
        with torch.no_grad():
            for p in modules["disc"].parameters():
                p.mul_(scale)
        step.disc_opt = torch.optim.SGD(modules["disc"].parameters(), lr=0.0)  # the D update must not move it
        torch.manual_seed(5)
        loss, parts = step(step_index)
        model.zero_grad()
        loss.backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
        parts_seen.append(sorted(parts))
    return grads[0], grads[1], parts_seen


def test_the_generator_hears_the_discriminator_only_after_the_warm_up():
    a, b, parts = _grads_after_perturbing_the_discriminator(1)  # discriminator trains, generator does not hear it
    assert "disc" in parts[0] and "adv" not in parts[0] and "fm" not in parts[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    a, b, parts = _grads_after_perturbing_the_discriminator(2)
    assert "adv" in parts[0] and "fm" in parts[0]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def _checkpoint(run_dir):
    return torch.load(run_dir / "stage1.pt", weights_only=True)


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flat(v, f"{prefix}/{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _flat(v, f"{prefix}/{i}")
    else:
        yield prefix, tree


def test_adversarial_training_resumes_bit_identically(tmp_path):
    s = dict(TINY, steps=4, schedule_steps=4, checkpoint_every=100)
    train_stage1(Stage1Settings(**s), tmp_path / "straight", progress=False)
    train_stage1(Stage1Settings(**{**s, "steps": 2}), tmp_path / "resumed", progress=False)  # stop at 2
    assert checkpoint_step(tmp_path / "resumed" / "stage1.pt") == 2
    train_stage1(Stage1Settings(**s), tmp_path / "resumed", progress=False)  # steps 3-4 from the checkpoint
    a, b = _checkpoint(tmp_path / "straight"), _checkpoint(tmp_path / "resumed")
    assert set(a["modules"]) == {"model", "readout", "disc"} and set(a["optimizers"]) == {"main", "disc"}
    assert a["extra"]["cpu_s"] > 0 and b["extra"]["cpu_s"] > 0  # CPU time is recorded (and differs)
    flat_a, flat_b = (dict(_flat({k: v for k, v in c.items() if k != "extra"})) for c in (a, b))
    assert flat_a.keys() == flat_b.keys()
    for key, value in flat_a.items():
        if torch.is_tensor(value):
            assert torch.equal(value, flat_b[key]), key
        else:
            assert value == flat_b[key], key
    settings = json.loads((tmp_path / "resumed" / "stage1_settings.json").read_text())
    assert settings["w_adv"] == 1.0 and settings["adv_from_step"] == 2


def test_a_checkpoint_without_the_discriminator_is_refused(tmp_path):
    plain = dict(TINY, w_adv=0.0, steps=1)
    train_stage1(Stage1Settings(**plain), tmp_path, progress=False)
    with pytest.raises(ValueError, match="stage1.pt: checkpoint has no modules \\['disc'\\]"):
        train_stage1(Stage1Settings(**dict(TINY, steps=2)), tmp_path, progress=False)


def test_frozen_encoder_trains_the_decoder_only(tmp_path):
    s = Stage1Settings(**dict(TINY, freeze_encoder=True, steps=2))
    model, *_ = setup_stage1(s, resuming=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = train_stage1(s, tmp_path, progress=False)["model"]
    after = out.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))


def test_the_rich_bank_has_every_style_and_never_a_held_out_program():
    held_out = {p for p, _ in HELD_OUT_CHORDS + HELD_OUT_BASS + HELD_OUT_LEADS}
    styles = set()
    for seed in range(12):
        notes, programs, style = rich_notes(4.0, seed)
        styles.add(style)
        assert notes and not {p for p, _ in programs.values()} & held_out
        if style == "low":
            assert min(n.key for n in notes if n.channel == 1) < 36  # bass below C2
    assert styles == set(RICH_STYLES)
    bank = train_bank(2, 0.25, kind="rich")
    assert bank.shape == (2, 2, 12000) and float(bank.abs().max()) == pytest.approx(0.8, abs=1e-4)
    with pytest.raises(ValueError, match="unknown training bank"):
        train_bank(1, 0.25, kind="jazz")


@pytest.mark.slow
def test_warm_started_stages_run_apart_and_export_together(tmp_path):
    """Stage 1 (frozen encoder, adversarial) and stage 2 (quantizer dropout) from the shipped miniature in
    separate invocations, as the second model was trained; the export joins them and loads strictly."""
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.codec.miniature import ASSETS_DIR, shipped_codec_dir
    from heartcodec_lab.encoders import build_encoder
    from heartcodec_lab.minicodec.train import main

    run, out = tmp_path / "run", tmp_path / "export"
    s1 = json.dumps(
        {
            "freeze_encoder": True,
            "w_adv": 1.0,
            "disc_from_step": 0,
            "adv_from_step": 1,
            "noise_steps": 0,
            "n_pieces": 2,
            "piece_seconds": 0.5,
            "eval_every": 0,
            "bank": "rich",
        }
    )
    s2 = json.dumps(
        {
            "level_dropout": 0.5,
            "n_pieces": 2,
            "piece_seconds": 0.5,
            "segment_frames": 8,
            "batch": 2,
            "eval_every": 0,
            "bank": "rich",
        }
    )
    common = [
        "--run-dir",
        str(run),
        "--threads",
        "1",
        "--init-from",
        str(ASSETS_DIR),
        "--no-progress",
        "--stage1-steps",
        "2",
        "--stage2-steps",
        "2",
        "--stage1",
        s1,
        "--stage2",
        s2,
    ]
    with pytest.raises(SystemExit, match="stage 2 needs a finished stage 1"):
        main([*common, "--stages", "2"])
    assert main([*common, "--stages", "2", "--latents-from", "init"]) == 0
    assert main([*common, "--stages", "1"]) == 0
    assert main([*common, "--stages", "export", "--latents-from", "init", "--export-to", str(out), "--half"]) == 0
    new, old = load_codec(out / "codec"), load_codec(shipped_codec_dir())
    new_sm, old_sm = new.scalar_model.state_dict(), old.scalar_model.state_dict()
    assert all(torch.equal(new_sm[k], old_sm[k]) for k in new_sm if k.startswith("encoder."))
    assert any(not torch.equal(new_sm[k], old_sm[k]) for k in new_sm if k.startswith("decoder."))
    assert build_encoder("minicodec", str(out / "encoder"), new).tokenize(torch.zeros(2, 3840 * 4), 48000).shape == (
        8,
        5,
    )
