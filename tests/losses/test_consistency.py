"""The stability training term: zero for identical inputs, positive otherwise, gradients to the projection only."""

from __future__ import annotations

import pytest
import torch
from vector_quantize_pytorch import ResidualVQ

from heartcodec_lab.codec import RANDOM_CODEC, load_codec
from heartcodec_lab.losses import ConsistencyLoss, LossSet, build_losses
from heartcodec_lab.losses.consistency import perturb


@pytest.fixture(scope="module")
def rvq():
    torch.manual_seed(3)
    return ResidualVQ(dim=512, codebook_size=64, codebook_dim=8, num_quantizers=8).eval()


def test_zero_for_identical_features_positive_otherwise(rvq):
    loss = ConsistencyLoss(rvq)
    f = torch.randn(2, 6, 512)
    value, logs = loss.compute({"features": f, "perturbed_features": f.clone()})
    assert float(value) == 0.0 and float(logs["same_q0"]) == 1.0
    moved = f + 0.1 * torch.randn_like(f)
    assert float(loss({"features": f, "perturbed_features": moved})) > 0
    # relative: scaling both feature sets leaves it unchanged (P is affine: compare without its bias)
    with torch.no_grad():
        bias = rvq.project_in.bias.clone()
        rvq.project_in.bias.zero_()
    try:
        a = float(loss({"features": f, "perturbed_features": moved}))
        b = float(loss({"features": 10 * f, "perturbed_features": 10 * moved}))
    finally:
        with torch.no_grad():
            rvq.project_in.bias.copy_(bias)
    assert a == pytest.approx(b, rel=1e-4)


def test_differences_outside_the_rvq_input_space_cost_nothing(rvq):
    f = torch.randn(1, 5, 512)
    w = rvq.project_in.weight  # [8, 512]: a direction in its null space does not change P(f)
    null = torch.randn(512)
    null = null - w.t() @ torch.linalg.lstsq(w.t(), null[:, None]).solution[:, 0]
    value = ConsistencyLoss(rvq)({"features": f, "perturbed_features": f + 5 * null})
    assert float(value) < 1e-9


def test_edge_frames_are_left_out(rvq):
    f = torch.randn(1, 6, 512)
    g = f.clone()
    g[:, 0] += 3.0
    g[:, -1] -= 3.0
    assert float(ConsistencyLoss(rvq, edge_frames=1)({"features": f, "perturbed_features": g})) == 0.0
    assert float(ConsistencyLoss(rvq, edge_frames=0)({"features": f, "perturbed_features": g})) > 0


def test_perturb_delays_scales_and_adds_noise_reproducibly():
    audio = torch.randn(3, 2, 4000)
    same = perturb(audio, max_delay=0, gain_db=0.0, noise_db=None)
    assert torch.equal(same, audio)
    only_delay = perturb(audio, max_delay=1, gain_db=0.0, noise_db=None)
    assert torch.equal(only_delay[..., 1:], audio[..., :-1]) and torch.all(only_delay[..., 0] == 0)
    a = perturb(audio, generator=torch.Generator().manual_seed(5))
    b = perturb(audio, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == audio.shape and not torch.equal(a, audio)
    delays = [
        int(
            (
                perturb(torch.arange(1.0, 600).view(1, 1, -1), 480, 0.0, None, torch.Generator().manual_seed(s)) == 0
            ).sum()
        )
        for s in range(200)
    ]
    assert min(delays) >= 1 and max(delays) <= 480 and sum(d <= 8 for d in delays) > 40  # log-uniform


def test_gradients_reach_the_projection_only():
    from heartcodec_lab.encoders.projection import default_projection
    from heartcodec_lab.training.module import ProjectionTrainingModule

    codec = load_codec(RANDOM_CODEC)
    projection = default_projection(codec, "conv1d", hidden_dim=32)
    losses = build_losses({"consistency": {"weight": 1.0, "detach_clean": False}}, codec=codec)
    module = ProjectionTrainingModule(codec, projection, losses)
    audio = 0.1 * torch.randn(2, 2, 3840 * 4)
    batch = module.forward_batch(audio)
    assert batch["perturbed_features"].shape == batch["features"].shape
    total, logs = module.losses(batch)
    assert float(total.detach()) > 0 and "loss/consistency/same_q0" in logs
    total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in projection.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in projection.parameters())
    assert all(p.grad is None for p in codec.parameters())
    assert isinstance(module.losses, LossSet)


def test_init_from_starts_at_an_exported_projection_and_refuses_other_sizes(tmp_path):
    from heartcodec_lab.encoders.projection import default_projection, save_projection
    from heartcodec_lab.training.run import build_module, compose_config

    codec = load_codec(RANDOM_CODEC)
    start = default_projection(codec, "conv1d", seed=7, hidden_dim=16, num_layers=1, kernel_size=3)
    folder = save_projection(tmp_path / "start", start, codec.describe())
    base = [
        "+experiment=stable",
        "debug=fast",
        f"codec.path={RANDOM_CODEC}",
        "teacher=random_projection",
        f"paths.output_dir={tmp_path / 'run'}",
        "projection.hidden_dim=16",
        "projection.num_layers=1",
        "projection.kernel_size=3",
        f"model.init_from={folder}",
    ]
    module, _ = build_module(compose_config(base), codec=codec)
    for (k, a), b in zip(module.projection.state_dict().items(), start.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="cannot start a conv1d projection"):
        build_module(compose_config(base + ["projection.hidden_dim=32"]), codec=codec)
