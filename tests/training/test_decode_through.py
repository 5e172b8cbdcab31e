"""Decode-through reconstruction (the card's recipe) and distillation terms that converge.

Known answers: the decode-through path is the codec's own Euler solver + ScalarModel decoder;
its gradient reaches the projection and never the frozen codec (parameters and RVQ buffers
unchanged after a training step); a normalised distillation term drives an exactly realizable
student to its teacher; the hinge code term is zero at the teacher's features where the
cross-entropy term is not.
"""

from __future__ import annotations

import pytest
import torch

from heartcodec_lab.codec import RANDOM_CODEC, load_codec
from heartcodec_lab.encoders.projection import LinearProjection
from heartcodec_lab.losses import build_losses
from heartcodec_lab.losses.distill import DistillCodeLoss, DistillRVQInputLoss
from heartcodec_lab.training.decode_through import DecodeThrough
from heartcodec_lab.training.module import ProjectionTrainingModule


@pytest.fixture(scope="module")
def codec():
    return load_codec(RANDOM_CODEC)


def _projection(codec, seed: int, num_layers: int = 1) -> LinearProjection:
    torch.manual_seed(seed)
    cfg = codec.config
    return LinearProjection(latent_dim=cfg.latent_hidden_dim, hidden_dim=32, num_layers=num_layers, out_dim=cfg.dim)


def _audio(frames: int = 8, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(batch, 2, frames * 3840, generator=g)


def test_decode_through_is_the_codecs_own_solver_and_decoder(codec):
    """With every frame decoded, the output equals solve_euler (guided, same noise) + ScalarModel.decode."""
    fm, sm = codec.flow_matching, codec.scalar_model
    quantized = torch.randn(2, 4, codec.config.dim)
    dt = DecodeThrough(codec, num_steps=3, guidance_scale=1.25, noise_seed=5, decode_frames=0, checkpointing=False)
    with torch.no_grad():
        audio, first, chans = dt(quantized)
        mu = fm.embedding_to_condition(quantized)
        noise = torch.randn(2, 8, fm.latent_dim, generator=torch.Generator().manual_seed(5))
        lat = fm.solve_euler(noise, torch.zeros_like(noise), 0, torch.linspace(0, 1, 4), mu, 1.25)
        stereo = lat.reshape(2, 8, 2, -1).permute(0, 2, 3, 1).reshape(4, -1, 8)
        expected = sm.decode(stereo, block_frames=0).reshape(2, 2, -1)
    assert first == 0 and chans == slice(0, 2) and audio.shape == (2, 2, 8 * sm.hop_length)
    torch.testing.assert_close(audio, expected, rtol=1e-5, atol=1e-6)
    # one channel per call: that channel of the same decode
    one = DecodeThrough(codec, num_steps=3, guidance_scale=1.25, noise_seed=5, decode_frames=0, channels=1)
    with torch.no_grad():
        mono, _, chans = one(quantized, generator=torch.Generator().manual_seed(1))
    assert mono.shape == (2, 1, 8 * sm.hop_length)
    torch.testing.assert_close(mono, expected[:, chans], rtol=1e-5, atol=1e-6)
    # fixed noise: the same tokens decode to the same audio, whatever the global RNG does
    torch.manual_seed(123)
    with torch.no_grad():
        torch.testing.assert_close(dt(quantized)[0], audio)


def test_checkpointing_and_a_decoded_span_keep_the_gradient(codec):
    quantized = torch.randn(1, 6, codec.config.dim)
    grads = []
    for ckpt in (False, True):
        q = quantized.clone().requires_grad_(True)
        dt = DecodeThrough(codec, num_steps=2, decode_frames=4, warmup_frames=2, checkpointing=ckpt)
        audio, first, _ = dt(q, generator=torch.Generator().manual_seed(0))
        assert audio.shape == (1, 2, 4 * codec.scalar_model.hop_length) and first % codec.scalar_model.hop_length == 0
        audio.pow(2).sum().backward()
        grads.append(q.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_a_train_step_reaches_the_projection_through_the_decoder_and_leaves_the_codec_alone(codec):
    losses = build_losses({"mel": {"weight": 1.0}, "stft": {"weight": 1.0}}, codec)  # audio losses only
    module = ProjectionTrainingModule(
        codec,
        _projection(codec, 0, num_layers=2),
        losses,
        decode={"through": "decoder", "num_steps": 2, "decode_frames": 6, "channels": 1},
    )
    assert module.adapter is None and module.decode_through is not None
    assert module.trainable_parameters() == list(module.projection.parameters())  # nothing of the codec
    before = {k: v.clone() for k, v in codec.state_dict().items()}  # parameters and RVQ buffers
    module.guard_frozen()
    opt = torch.optim.AdamW(module.trainable_parameters(), lr=1e-2)
    audio = _audio()
    out = module.forward_batch(audio)
    assert out["recon"].shape == out["audio"].shape == (2, 1, 6 * codec.scalar_model.hop_length)
    total, _ = module.losses(out)
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.projection.parameters())
    assert all(p.grad is None for p in codec.parameters())
    opt.step()
    assert not codec.training and not any(p.requires_grad for p in codec.parameters())
    after = codec.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key


def test_the_adapter_recipe_is_still_there(codec):
    losses = build_losses({"mel": {"weight": 1.0}}, codec)
    module = ProjectionTrainingModule(codec, _projection(codec, 0), losses, decode={"through": "adapter"})
    assert module.adapter is not None and module.decode_through is None
    with pytest.raises(ValueError, match="decode.through"):
        ProjectionTrainingModule(codec, _projection(codec, 0), losses, decode={"through": "vocoder"})


def _fit(student, teacher_features, latents, loss, steps: int, lr: float) -> None:
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    # decaying to zero, as training's warm-up + cosine does: at a constant rate Adam's normalised
    # steps keep their size as the loss vanishes and the student circles the teacher
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps)
    for _ in range(steps):
        value = loss({"features": student(latents), "teacher_features": teacher_features})
        opt.zero_grad()
        value.backward()
        opt.step()
        sched.step()


def test_normalised_distillation_drives_an_exactly_realizable_student_to_its_teacher(codec):
    rvq = codec.quantizer
    teacher, student = _projection(codec, 1), _projection(codec, 2)
    latents = torch.randn(2, 2 * codec.config.latent_hidden_dim, 24, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        target = teacher(latents)
        _, teacher_codes = codec.quantize(target)
    loss = DistillRVQInputLoss(rvq, normalize=True)
    with torch.no_grad():
        start = float(loss({"features": student(latents), "teacher_features": target}))
    _fit(student, target, latents, loss, steps=400, lr=3e-3)
    with torch.no_grad():
        features = student(latents)
        _, codes = codec.quantize(features)
        logs = loss({"features": features, "teacher_features": target}) and loss.last_logs
    assert start > 0.5  # a random student starts far away (relative squared error ~1)
    assert float(logs["relative_error"]) < 1e-3  # measured ~1e-7 in the RVQ's input space
    assert torch.equal(codes, teacher_codes)  # every level, every frame


def test_hinge_code_term_is_zero_at_the_teachers_features_where_cross_entropy_pulls_away(codec):
    rvq = codec.quantizer
    features = torch.randn(2, 6, codec.config.dim).requires_grad_(True)
    _, codes = codec.quantize(features.detach())  # the teacher: these very features
    batch = {"features": features, "teacher_codes": codes}
    hinge = DistillCodeLoss(rvq, mode="hinge")
    value = hinge(batch)
    assert float(value.detach()) == 0.0 and float(hinge.last_logs["accuracy"]) == 1.0
    (grad,) = torch.autograd.grad(value, features)
    assert float(grad.abs().max()) == 0.0
    ce = DistillCodeLoss(rvq, tau=0.05, mode="ce")
    (grad_ce,) = torch.autograd.grad(ce(batch), features)
    assert float(grad_ce.abs().max()) > 0  # the CE optimum is not the teacher: it fights a regression
    wrong = dict(batch, teacher_codes=(codes + 1) % codec.config.codebook_size)
    assert float(hinge(wrong).detach()) > 0
