"""Known-answer and gradient tests for the projection training losses."""

from __future__ import annotations

import math

import pytest
import torch

from heartcodec_lab.codec.flow_matching import FlowMatching
from heartcodec_lab.losses import (
    CommitmentLoss,
    DistillCodeLoss,
    DistillFeatureLoss,
    DistillRVQInputLoss,
    FeatureL2Loss,
    FlowMatchingLoss,
    HighFrequencyLoss,
    LossSet,
    MelLoss,
    MultiScaleSTFTLoss,
    build_losses,
)

SR = 48000
DIM = 64  # stand-in codec width (the real one is 512)
SIGMA_MIN = 1e-6  # the released solver's residual noise at t = 1


@pytest.fixture(scope="module")
def flow_matching() -> FlowMatching:
    """A small frozen FlowMatching (RVQ 8 x 64 codes of dim 8, 2-layer estimator) standing in for the codec's."""
    torch.manual_seed(123)
    fm = FlowMatching(
        dim=DIM,
        codebook_size=64,
        codebook_dim=8,
        num_quantizers=8,
        attention_head_dim=8,
        in_channels=2 * 256 + DIM,
        num_attention_heads=2,
        num_layers=2,
        num_layers_2=1,
        out_channels=256,
    )
    return fm.eval().requires_grad_(False)


def tone(freq: float, seconds: float = 0.3, amp: float = 0.3, channels: int = 2) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amp * torch.sin(2 * math.pi * freq * t)).float().expand(channels, -1)


def music(batch: int = 2, seconds: float = 0.3) -> torch.Tensor:
    """[B, 2, S]: a few partials with a little noise (broadband, non-zero in every band)."""
    g = torch.Generator().manual_seed(7)
    x = sum(tone(f, seconds, 0.1) for f in (220.0, 1100.0, 5000.0, 7000.0))
    return (x.unsqueeze(0) + 0.01 * torch.randn(batch, 2, x.shape[-1], generator=g)).contiguous()


# ---------------------------------------------------------------------------------------- LossSet


def test_lossset_weights_total_logs_and_weight_zero_not_optimized():
    features = torch.randn(2, 5, 16, requires_grad=True)
    quantized = torch.randn(2, 5, 16)
    batch = {"features": features, "quantized": quantized}
    losses = LossSet([CommitmentLoss(weight=2.0), FeatureL2Loss(weight=0.0)])
    total, logs = losses(batch)

    commit = torch.mean((features - quantized) ** 2)
    l2 = torch.mean(features**2)
    torch.testing.assert_close(total, 2.0 * commit)
    torch.testing.assert_close(logs["loss/commitment"], commit.detach())
    torch.testing.assert_close(logs["loss/feature_l2"], l2.detach())  # computed and logged...
    torch.testing.assert_close(logs["loss/total"], total.detach())
    assert not logs["loss/feature_l2"].requires_grad
    total.backward()
    # ...but not optimized: the gradient is the commitment term's alone
    torch.testing.assert_close(features.grad, 2.0 * 2 * (features - quantized).detach() / features.numel())
    assert losses.requires == {"features", "quantized"}


def test_lossset_errors_and_dict_names():
    with pytest.raises(ValueError, match="duplicate"):
        LossSet([FeatureL2Loss(), FeatureL2Loss()])
    named = LossSet({"small_l2": FeatureL2Loss(0.1), "l2": FeatureL2Loss(0.0)})
    _, logs = named({"features": torch.ones(1, 2, 3)})
    assert set(logs) == {"loss/small_l2", "loss/l2", "loss/total"}
    torch.testing.assert_close(logs["loss/total"], torch.tensor(0.1))
    with pytest.raises(KeyError, match="quantized"):
        LossSet([CommitmentLoss()])({"features": torch.zeros(1, 2, 3)})


def test_lossset_all_weights_zero_gives_zero_total():
    total, logs = LossSet([FeatureL2Loss(0.0)])({"features": torch.ones(1, 2, 3)})
    assert total.item() == 0.0 and logs["loss/feature_l2"].item() == 1.0


def test_build_losses_from_config(flow_matching):
    class Codec(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.flow_matching = flow_matching
            self.quantizer = flow_matching.vq_embed

    losses = build_losses(
        {"mel": {"weight": 1.0, "n_mels": 40}, "fm": {"type": "flow", "weight": 0.0}, "distill_code": {"tau": 0.5}},
        codec=Codec(),
    )
    assert list(losses.losses) == ["mel", "fm", "distill_code"]
    assert losses["mel"].mel.n_mels == 40 and losses["fm"].weight == 0.0 and losses["distill_code"].tau == 0.5
    # the frozen codec parts are not part of the loss state
    assert not list(losses.parameters()) and not any(k.startswith("fm") for k in losses.state_dict())
    with pytest.raises(ValueError, match="needs the codec"):
        build_losses({"flow": {}})
    with pytest.raises(ValueError, match="unknown loss type"):
        build_losses({"nope": {}})
    with pytest.raises(ValueError, match="bad arguments"):
        build_losses({"mel": {"n_melz": 3}})


# ---------------------------------------------------------------------------------------- audio losses


@pytest.mark.parametrize(
    "loss",
    [MultiScaleSTFTLoss(), MultiScaleSTFTLoss(fft_sizes=(512, 2048), w_phase=0.1), MelLoss(), HighFrequencyLoss()],
    ids=["stft", "stft_phase", "mel", "high_freq"],
)
def test_audio_losses_zero_when_identical_positive_and_decreasing(loss):
    audio = music()
    assert loss({"audio": audio, "recon": audio.clone()}).item() == pytest.approx(0.0, abs=1e-6)
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(audio.shape, generator=g)
    values = [loss({"audio": audio, "recon": audio + eps * noise}).item() for eps in (0.1, 0.03, 0.01)]
    assert values[0] > values[1] > values[2] > 0


@pytest.mark.parametrize(
    "loss", [MultiScaleSTFTLoss(), MelLoss(), HighFrequencyLoss()], ids=["stft", "mel", "high_freq"]
)
def test_audio_losses_reach_recon_gradient(loss):
    audio = music(1, 0.25)
    recon = (0.5 * audio).requires_grad_(True)
    loss({"audio": audio, "recon": recon}).backward()
    assert recon.grad is not None and recon.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="shapes differ"):
        loss({"audio": audio, "recon": audio[..., :-10]})


def test_mel_loss_of_scaled_audio_is_log_of_scale():
    # log-mel L1: scaling the audio by 2 shifts every (unclamped) log-mel value by log 2
    audio = music()
    value = MelLoss()({"audio": audio, "recon": 2 * audio})
    assert value.item() == pytest.approx(math.log(2), rel=1e-4)


def test_high_frequency_loss_only_sees_4_to_8_khz():
    audio = music(1)
    loss = HighFrequencyLoss()
    fade = torch.hann_window(audio.shape[-1], periodic=False)  # no clicks at the clip edges

    def error_at(freq: float) -> float:
        return loss({"audio": audio, "recon": audio + fade * tone(freq).unsqueeze(0)}).item()

    inside, below, above = error_at(6000.0), error_at(1000.0), error_at(12000.0)
    assert inside > 0.01
    assert below < 1e-3 * inside and above < 1e-3 * inside  # window leakage only
    # linear magnitudes: recon = 2 x audio differs by exactly the target's band magnitude
    torch.testing.assert_close(loss({"audio": audio, "recon": 2 * audio}), loss.band_magnitude(audio).mean())


def test_stft_loss_is_spectral_convergence_plus_log_magnitude():
    # recon = 2 x audio: per resolution SC = 1 and |log|X| - log|Y|| = log 2, so the mean is 1 + log 2
    audio = music()
    value = MultiScaleSTFTLoss(fft_sizes=(512, 1024))({"audio": audio, "recon": 2 * audio})
    assert value.item() == pytest.approx(1 + math.log(2), rel=1e-3)


# ---------------------------------------------------------------------------------------- feature losses


def test_commitment_and_feature_l2_known_answers():
    features = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], requires_grad=True)
    quantized = torch.tensor([[[1.0, 0.0], [3.0, 6.0]]], requires_grad=True)
    commit = CommitmentLoss()({"features": features, "quantized": quantized})
    assert commit.item() == pytest.approx((4 + 4) / 4)
    commit.backward()
    assert quantized.grad is None  # the codes are not pulled towards the features
    assert FeatureL2Loss()({"features": features}).item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    assert CommitmentLoss()({"features": quantized, "quantized": quantized}).item() == 0.0


def test_distill_feature_loss_mse_and_cosine():
    student = torch.randn(2, 6, 8)
    mse, cos = DistillFeatureLoss(mode="mse"), DistillFeatureLoss(mode="cosine")
    assert mse({"features": student, "teacher_features": student}).item() == 0.0
    assert cos({"features": student, "teacher_features": 3 * student}).item() == pytest.approx(0.0, abs=1e-6)
    assert cos({"features": student, "teacher_features": -student}).item() == pytest.approx(2.0, abs=1e-6)
    e = torch.eye(8)[None, :2]  # two orthogonal unit vectors
    assert cos({"features": e, "teacher_features": e.flip(1)}).item() == pytest.approx(1.0)
    far, near = (mse({"features": student + d, "teacher_features": student}).item() for d in (1.0, 0.1))
    assert far == pytest.approx(1.0) and near == pytest.approx(0.01) and far > near
    with pytest.raises(ValueError, match="mode"):
        DistillFeatureLoss(mode="l1")


def test_distill_rvq_input_loss_sees_only_what_the_quantizer_sees(flow_matching):
    rvq = flow_matching.vq_embed
    loss = DistillRVQInputLoss(rvq)
    teacher = torch.randn(2, 5, DIM)
    w = rvq.project_in.weight  # [8, DIM]: the features' only route to the codes
    null = torch.randn(2, 5, DIM)
    null = null - null @ torch.linalg.pinv(w) @ w  # remove the part project_in can see
    invisible = loss({"features": teacher + 5 * null, "teacher_features": teacher}).item()
    assert invisible == pytest.approx(0.0, abs=1e-9)
    assert DistillFeatureLoss()({"features": teacher + 5 * null, "teacher_features": teacher}).item() > 1.0
    # known answer: along a unit row direction u of project_in, a shift d moves the projection by d * (w u)
    u = w[0] / w[0].norm()
    features = (teacher + 0.5 * u).requires_grad_(True)
    value = loss({"features": features, "teacher_features": teacher})
    torch.testing.assert_close(value, (0.5 * (w @ u)).pow(2).mean(), rtol=1e-5, atol=1e-7)
    value.backward()
    assert features.grad.abs().sum() > 0 and all(p.grad is None for p in rvq.parameters())
    assert loss.state_dict() == {}


def test_distill_code_loss_full_accuracy_on_teacher_features(flow_matching):
    rvq = flow_matching.vq_embed
    features = 3 * torch.randn(2, 10, DIM)
    with torch.no_grad():
        _, teacher_codes, _ = rvq(features)
    teacher_codes = teacher_codes.transpose(1, 2)  # [B, 8, T]
    loss = DistillCodeLoss(rvq, tau=1.0)
    exact = loss({"features": features, "teacher_codes": teacher_codes})
    assert loss.last_logs["accuracy"].item() == 1.0
    assert all(loss.last_logs[f"accuracy_q{q}"].item() == 1.0 for q in range(8))
    # a sharper temperature makes the already-correct choices more certain
    sharp = DistillCodeLoss(rvq, tau=0.01)({"features": features, "teacher_codes": teacher_codes})
    assert sharp < exact
    # moving away from the teacher's features raises the loss
    noisy = DistillCodeLoss(rvq)(
        {"features": features + 2 * torch.randn_like(features), "teacher_codes": teacher_codes}
    )
    assert noisy > exact


def test_distill_code_loss_known_answer_and_gradients(flow_matching):
    rvq = flow_matching.vq_embed
    features = torch.randn(1, 4, DIM, requires_grad=True)
    codes = torch.randint(0, 64, (1, 8, 4))
    loss = DistillCodeLoss(rvq, tau=2.0)
    value = loss({"features": features, "teacher_codes": codes})
    # recompute layer by layer with cdist: CE of -d^2 / tau, teacher-forced residuals
    residual, books, ces = rvq.project_in(features), rvq.codebooks, []
    for q in range(8):
        logits = -(torch.cdist(residual[0], books[q]) ** 2) / 2.0
        ces.append(torch.nn.functional.cross_entropy(logits, codes[0, q]))
        residual = residual - books[q][codes[0, q]]
    torch.testing.assert_close(value, torch.stack(ces).mean(), rtol=1e-4, atol=1e-4)
    value.backward()
    assert features.grad.abs().sum() > 0
    assert all(p.grad is None for p in flow_matching.parameters())
    assert not any(k.startswith("_rvq") for k in loss.state_dict())
    with pytest.raises(ValueError, match="teacher_codes"):
        loss({"features": features, "teacher_codes": codes[:, :4]})


# ---------------------------------------------------------------------------------------- flow matching


class Recorder:
    """Wraps the estimator's forward to keep its inputs and output."""

    def __init__(self, estimator):
        self.estimator, self.calls = estimator, []

    def __enter__(self):
        original = self.estimator.forward

        def forward(hidden_states, timestep):
            out = original(hidden_states, timestep)
            self.calls.append((hidden_states.detach(), timestep.detach(), out.detach()))
            return out

        self.estimator.forward = forward
        return self

    def __exit__(self, *exc):
        del self.estimator.forward


def test_flow_matching_loss_follows_solver_convention(flow_matching):
    b, t = 2, 6
    quantized = torch.randn(b, t, DIM, requires_grad=True)
    latents = torch.tanh(torch.randn(b, 256, 2 * t))
    loss = FlowMatchingLoss(flow_matching)
    with Recorder(flow_matching.estimator) as rec:
        value = loss({"quantized": quantized, "latents": latents})
    ((hidden, timestep, pred),) = rec.calls
    assert hidden.shape == (b, 2 * t, 256 + 256 + DIM) and timestep.shape == (b,)
    assert ((timestep >= 0) & (timestep < 1)).all() and timestep[0] != timestep[1]  # one t per row
    x1 = latents.transpose(1, 2)
    x_t, incontext, mu = hidden[..., :256], hidden[..., 256:512], hidden[..., 512:]
    assert (incontext == 0).all()
    cond = flow_matching.cond_feature_emb(quantized.detach())
    torch.testing.assert_close(mu, torch.stack([cond, cond], 2).reshape(b, 2 * t, DIM))  # nearest x2
    # recover the noise from x_t, then the target velocity of the released solver's path
    s = timestep[:, None, None]
    x0 = (x_t - s * x1) / (1 - (1 - SIGMA_MIN) * s)
    target = x1 - (1 - SIGMA_MIN) * x0
    torch.testing.assert_close(value.detach(), torch.mean((pred - target) ** 2), rtol=1e-5, atol=1e-6)


def test_flow_matching_loss_gradients_reach_quantized_only_and_codec_stays_eval(flow_matching):
    quantized = torch.randn(1, 4, DIM, requires_grad=True)
    latents = torch.tanh(torch.randn(1, 256, 9))  # one spare latent frame is cropped
    flow_matching.train()  # even if someone flips the codec to train mode...
    try:
        value = FlowMatchingLoss(flow_matching)({"quantized": quantized, "latents": latents})
        assert not flow_matching.training  # ...the loss runs it in eval mode
    finally:
        flow_matching.eval()
    value.backward()
    assert quantized.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in flow_matching.parameters())
    with pytest.raises(ValueError, match="latents"):
        FlowMatchingLoss(flow_matching)({"quantized": quantized, "latents": latents[..., :7]})


def test_flow_matching_loss_incontext_prefix_is_given_and_not_scored(flow_matching):
    b, t = 3, 8
    quantized = torch.randn(b, t, DIM)
    latents = torch.tanh(torch.randn(b, 256, 2 * t))
    loss = FlowMatchingLoss(flow_matching, incontext_prob=1.0, max_incontext_fraction=0.5)
    torch.manual_seed(5)
    with Recorder(flow_matching.estimator) as rec:
        value = loss({"quantized": quantized, "latents": latents})
    ((hidden, timestep, pred),) = rec.calls
    x1, x_t, incontext = latents.transpose(1, 2), hidden[..., :256], hidden[..., 256:512]
    given = (incontext != 0).any(-1)  # [B, 2T]
    lengths = given.sum(1)
    for row, n in enumerate(lengths.tolist()):
        assert n <= t and given[row, :n].all()  # a prefix of at most half the frames
        torch.testing.assert_close(incontext[row, :n], x1[row, :n])
    assert lengths.sum() > 0
    s = timestep[:, None, None]
    target = x1 - (1 - SIGMA_MIN) * (x_t - s * x1) / (1 - (1 - SIGMA_MIN) * s)
    scored = ~given
    expected = ((pred - target) ** 2)[scored].mean()
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


def test_flow_matching_condition_dropout_zeroes_mu(flow_matching):
    quantized = torch.randn(2, 3, DIM)
    latents = torch.tanh(torch.randn(2, 256, 6))
    with Recorder(flow_matching.estimator) as rec:
        FlowMatchingLoss(flow_matching, cond_drop_prob=1.0)({"quantized": quantized, "latents": latents})
    assert (rec.calls[0][0][..., 512:] == 0).all()
    with pytest.raises(ValueError, match="incontext_prob"):
        FlowMatchingLoss(flow_matching, incontext_prob=1.5)


# ---------------------------------------------------------------------------------------- end to end


def test_lossset_trains_projection_and_never_the_codec():
    """Projection -> straight-through quantization with the embedded codec -> every feature loss."""
    from heartcodec_lab.codec import RANDOM_CODEC, load_codec
    from heartcodec_lab.encoders.projection import build_projection

    codec = load_codec(RANDOM_CODEC)
    codec_state = {k: v.clone() for k, v in codec.state_dict().items()}
    proj = build_projection("linear", hidden_dim=32).train()
    latents = torch.tanh(torch.randn(2, 256, 12))
    features = proj(latents)
    quantized_values, codes = codec.quantize(features.detach())
    quantized = features + (quantized_values - features).detach()  # straight-through
    teacher = features.detach() + 0.1 * torch.randn_like(features)
    _, teacher_codes = codec.quantize(teacher)
    batch = {
        "features": features,
        "quantized": quantized,
        "codes": codes,
        "latents": latents,
        "teacher_features": teacher,
        "teacher_codes": teacher_codes,
    }
    losses = build_losses(
        {
            "flow": {"weight": 1.0},
            "commitment": {"weight": 0.25},
            "feature_l2": {"weight": 0.0},
            "distill_feature": {"weight": 1.0},
            "distill_code": {"weight": 0.1},
        },
        codec=codec,
    )
    total, logs = losses(batch)
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in proj.parameters())
    assert all(p.grad is None for p in codec.parameters())
    assert not codec.training and not codec.quantizer.training
    assert all(torch.equal(v, codec_state[k]) for k, v in codec.state_dict().items())  # RVQ buffers untouched
    assert {"loss/flow", "loss/feature_l2", "loss/distill_code/accuracy", "loss/total"} <= set(logs)
    assert not list(losses.parameters())


def test_flow_matching_loss_draws_equal_a_repeated_batch(flow_matching):
    """draws=K is the one-draw loss of the batch repeated K times (each copy its own t, noise, prefix)."""
    b, t, k = 2, 5, 3
    quantized = torch.randn(b, t, DIM)
    latents = torch.tanh(torch.randn(b, 256, 2 * t))
    torch.manual_seed(11)
    many = FlowMatchingLoss(flow_matching, draws=k, incontext_prob=0.5)({"quantized": quantized, "latents": latents})
    torch.manual_seed(11)
    repeated = FlowMatchingLoss(flow_matching, incontext_prob=0.5)(
        {"quantized": quantized.repeat(k, 1, 1), "latents": latents.repeat(k, 1, 1)}
    )
    torch.testing.assert_close(many, repeated)
    torch.manual_seed(11)
    one = FlowMatchingLoss(flow_matching, incontext_prob=0.5)({"quantized": quantized, "latents": latents})
    assert not torch.allclose(one, many)  # the extra draws are different draws, not copies
    with pytest.raises(ValueError, match="draws"):
        FlowMatchingLoss(flow_matching, draws=0)
