"""The miniature codec's training: each stage learns, checkpoints resume exactly, exports load strictly.

Tiny sizes (ScalarModel width 2, 4-frame segments, a 1-layer DiT) so that each test takes seconds.
"""

from __future__ import annotations

import torch

from heartcodec_lab.codec import load_codec
from heartcodec_lab.codec.model import HeartCodec
from heartcodec_lab.codec.quantizer import nearest_codes
from heartcodec_lab.codec.scalar_model import ScalarModel
from heartcodec_lab.encoders import build_encoder
from heartcodec_lab.encoders.projection import Conv1dProjection
from heartcodec_lab.minicodec.config import mini_config
from heartcodec_lab.minicodec.data import SegmentSampler, render_piece
from heartcodec_lab.minicodec.export import export_minicodec
from heartcodec_lab.minicodec.stage1 import Stage1Loss, autoencode, lsuv_init
from heartcodec_lab.minicodec.stage2 import Stage2Loss
from heartcodec_lab.training.plain_loop import run_loop

TINY = dict(width=2, codebook_dim=4, heads=1, head_dim=8, layers=1, layers_2=1)


def tiny_encoder() -> Conv1dProjection:
    return Conv1dProjection(latent_dim=128, num_channels=2, hidden_dim=16, num_layers=1, kernel_size=3, out_dim=512)


def audio_bank() -> torch.Tensor:
    return torch.stack([render_piece(0.5, seed) for seed in (0, 1)])


def stage1_setup(init: bool = True):
    torch.manual_seed(0)
    model = ScalarModel(mini_config(**TINY))
    sampler = SegmentSampler(audio_bank(), 4 * 1920, batch=2, seed=1)
    if init:
        lsuv_init(model, sampler(), 0.6)
    return model, sampler, Stage1Loss()


@torch.no_grad()
def music_dependence(model: ScalarModel) -> tuple[float, float]:
    """(std of the pre-tanh latents, std of their difference between two pieces)."""
    a, b = (render_piece(0.5, seed)[:1, None, : 12 * 1920] for seed in (3, 4))
    _, pa = autoencode(model, a, "none")
    _, pb = autoencode(model, b, "none")
    return float(pa.std()), float((pa - pb).std())


def test_lsuv_init_makes_the_latents_depend_on_the_music():
    torch.manual_seed(0)
    default = ScalarModel(mini_config(**TINY))
    std, diff = music_dependence(default)
    assert diff < 0.1 * std  # default init: latents are mostly a constant, whatever the input
    model, _, _ = stage1_setup()
    std, diff = music_dependence(model)
    assert std > 0.3 and diff > 0.3 * std


def test_stage1_loss_falls_on_a_fixed_batch():
    model, sampler, loss_fn = stage1_setup()
    audio = sampler()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    losses = []
    for _ in range(15):
        recon, pre = autoencode(model, audio, "round")
        loss, _ = loss_fn(recon, audio, pre)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


def stage2_setup():
    torch.manual_seed(0)
    codec = HeartCodec(mini_config(**{**TINY, "heads": 2, "head_dim": 16}))
    codec.scalar_model.requires_grad_(False)
    encoder = tiny_encoder()
    loss_fn = Stage2Loss(codec.flow_matching, encoder, cond_drop=0.0, incontext_prob=0.0)
    # low-rank latents (4 factors): something a 13-bit-per-level code can carry
    mix = torch.randn(256, 4) / 2
    latents = torch.round(torch.tanh(mix @ torch.randn(2, 4, 16)) * 9) / 9
    return codec, encoder, loss_fn, latents


def test_stage2_loss_falls_on_fixed_latents():
    codec, _, loss_fn, latents = stage2_setup()
    opt = torch.optim.Adam([p for p in loss_fn.parameters() if p.requires_grad], 3e-3)
    torch.manual_seed(1)
    first = None
    for _ in range(60):
        loss, parts = loss_fn(latents)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or {k: float(v.detach()) for k, v in parts.items()}
    torch.manual_seed(1)  # the same noise and times as the first step
    with torch.no_grad():
        _, parts = loss_fn(latents)
    assert float(parts["flow"]) < 0.8 * first["flow"], (first, parts)
    assert float(parts["readout"]) < 0.5 * first["readout"], (first, parts)


def _train(run_dir, steps):
    model, sampler, loss_fn = stage1_setup(init=False)  # the init is not what this test is about
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step(i):
        audio = sampler()  # the sampler's generator and the noise draws' global RNG are both checkpointed
        recon, pre = autoencode(model, audio, "noise")
        return loss_fn(recon, audio, pre)

    run_loop(
        "stage1", run_dir, steps, step, {"model": model}, {"main": opt}, {}, sampler, progress=False, checkpoint_every=1
    )
    return model


def test_resume_equals_uninterrupted(tmp_path):
    straight = _train(tmp_path / "a", 4)
    _train(tmp_path / "b", 2)
    resumed = _train(tmp_path / "b", 4)  # loads stage1.pt at step 2 and runs steps 3-4
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_export_loads_strictly_through_load_codec_and_build_encoder(tmp_path):
    codec, encoder, loss_fn, latents = stage2_setup()
    loss_fn(latents)  # one EMA update of the RVQ, as in training
    codec.eval()
    codec_dir, enc_dir = export_minicodec(codec, encoder, tmp_path / "mini")
    loaded = load_codec(codec_dir)
    for key, value in codec.state_dict().items():
        assert torch.equal(loaded.state_dict()[key].float(), value.float()), key
    enc = build_encoder("minicodec", str(enc_dir), loaded)
    assert enc.encoder_id == "minicodec-true"
    audio = render_piece(0.32, 5)
    tokens = enc.tokenize(audio, 48000)
    assert tokens.shape == (8, 5)
    latents = loaded.scalar_model.encode(audio[:, None, : 1920 * 8])  # [2, 128, 8]: left, right
    feats = encoder.eval()(latents.reshape(1, 256, 8))
    # the first two token frames lie beyond the conv1d's reach of the clip's end
    assert torch.equal(nearest_codes(loaded.quantizer, feats)[1][0, :, :2], tokens[:, :2])
