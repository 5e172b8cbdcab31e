"""End-to-end training runs on the embedded tiny codec and synthetic music.

Every experiment config is composed for real and run for a step; the frozen codec is
bit-identical after training; resume is exact; NaN/Inf steps are skipped and counted.
"""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from heartcodec_lab.cli.export import main as export_main
from heartcodec_lab.codec import RANDOM_CODEC, load_codec
from heartcodec_lab.conf import group_options
from heartcodec_lab.encoders.projection import LinearProjection, load_projection, load_projection_encoder
from heartcodec_lab.losses import BatchLoss, LossSet
from heartcodec_lab.training.export import export_checkpoint
from heartcodec_lab.training.learning_proof import quiet_trainer
from heartcodec_lab.training.module import ProjectionTrainingModule
from heartcodec_lab.training.run import compose_config, train

# every experiment in conf/experiment/, found on disk: a new recipe is tested without editing this file
EXPERIMENTS = group_options("experiment")


@pytest.fixture(scope="module")
def codec():
    return load_codec(RANDOM_CODEC)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("synth_cache")


def _distills(experiment: str) -> bool:
    """The experiment configures a teacher (distill, stable, ...)."""
    return compose_config([f"+experiment={experiment}", "paths.output_dir=/tmp/unused"]).get("teacher") is not None


def _cfg(experiment: str, out, cache, *extra: str):
    # debug=fast is merged after the experiment: its sizes (2 samples per epoch, ...) hold for every recipe
    # plumbing: the random tiny codec (distill: the hidden random teacher, as the minicodec one fits only the miniature)
    pinned = [f"codec.path={RANDOM_CODEC}"] + (["teacher=random_projection"] if _distills(experiment) else [])
    return compose_config(
        [
            f"+experiment={experiment}",
            "debug=fast",
            f"paths.output_dir={out}",
            f"paths.cache_dir={cache}",
            "callbacks.reconstruction_preview.num_clips=0",
            *pinned,
            *extra,
        ]
    )


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_a_step(name, codec, cache_dir, tmp_path):
    summary = train(_cfg(name, tmp_path, cache_dir, "trainer.max_steps=1"), codec=codec)
    assert summary["global_step"] == 1 and summary["batches_seen"] == 1 and summary["skipped_steps"] == 0
    metrics = summary["metrics"]
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert "val/loss/total" in metrics and "train/grad_norm" in metrics
    if _distills(name):
        assert {f"val/agree_q{i}_pct" for i in range(8)} <= set(metrics)
        assert {f"train/agree_q{i}_pct" for i in range(8)} <= set(metrics)
        assert "train/loss/distill_code/accuracy_q0" in metrics
    if name in ("flow", "demo"):
        assert "train/loss/flow" in metrics
    # the run's export loads as an encoder and tokenizes
    encoder = load_projection_encoder(tmp_path / "projection", codec)
    tokens = encoder.tokenize(torch.zeros(2, 48000), 48000)
    assert tokens.shape == (8, encoder.num_frames(48000, 48000))
    run_summary = json.loads((tmp_path / "summary.json").read_text())
    assert run_summary["global_step"] == 1
    # the run summary and the export say which parts were embedded (the tiny codec; distill's hidden teacher)
    if name == "stable":
        assert "train/loss/consistency" in metrics and "train/loss/consistency/same_q0" in metrics
    embedded = ["codec", "teacher"] if _distills(name) else ["codec"]
    assert run_summary["provenance"]["embedded"] == embedded
    assert (
        json.loads((tmp_path / "projection" / "projection_config.json").read_text())["provenance"]["embedded"]
        == embedded
    )


def _tb_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "audio": 0, "images": 0})
    acc.Reload()
    return acc.Tags()


def test_frozen_codec_is_bit_identical_after_training(codec, cache_dir, tmp_path):
    before = {k: v.detach().clone() for k, v in codec.state_dict().items()}
    rvq_buffers = [k for k in before if k.endswith(("embed", "embed_avg", "cluster_size", "initted"))]
    assert len(rvq_buffers) >= 4 * 8
    # the demo recipe exercises the ScalarModel encoder and decoder, the RVQ, the FlowMatching
    # estimator (flow loss) and detokenize (the preview)
    summary = train(
        _cfg(
            "demo",
            tmp_path,
            cache_dir,
            "trainer.max_steps=2",
            "data.samples_per_epoch=4",
            "callbacks.reconstruction_preview.num_clips=1",
            "detokenize.num_steps=1",
        ),
        codec=codec,
    )
    assert summary["global_step"] == 2
    after = codec.state_dict()
    assert set(after) == set(before)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == []
    assert not codec.training and not any(m.training for m in codec.modules())
    assert not any(p.requires_grad for p in codec.parameters())

    # logs: losses, lr, gradient norm, per-quantizer usage, skipped steps, previews
    tags = _tb_tags(tmp_path / "tensorboard")
    scalars = set(tags["scalars"])
    for tag in [
        "train/loss/total",
        "train/loss/stft",
        "train/loss/flow",
        "train/lr",
        "train/grad_norm",
        "train/skipped_steps",
        "train/codes/used_q0",
        "train/codes/perplexity_q7",
        "val/loss/total",
    ]:
        assert tag in scalars, tag
    assert "reconstruction/clip0" in tags["audio"]
    assert "spectrogram/clip0" in tags["images"]
    previews = sorted((tmp_path / "reconstructions").glob("step*/clip0_recon.wav"))
    assert previews, "the preview wavs are written"
    from heartcodec_lab.audio import audio_info

    assert audio_info(previews[-1]) == (48000, 2, int(0.32 * 48000) // 3840 * 3840)


def test_resume_is_exact_and_checkpoint_exports(codec, cache_dir, tmp_path):
    # 3 batches per epoch: the interruption at step 2 is mid-epoch. The flow loss draws noise.
    common = ["data.samples_per_epoch=6", "model.optim.total_steps=4", "+trainer.limit_val_batches=0", "~logger"]
    straight = train(_cfg("flow", tmp_path / "a", cache_dir, "trainer.max_steps=4", *common), codec=codec)
    train(
        _cfg(
            "flow",
            tmp_path / "b",
            cache_dir,
            "trainer.max_steps=2",
            "callbacks.model_checkpoint.every_n_train_steps=1",
            *common,
        ),
        codec=codec,
    )
    ckpt = tmp_path / "b" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True, map_location="cpu")["heartcodec_lab"]["batches_seen"] == 2
    resumed = train(
        _cfg("flow", tmp_path / "c", cache_dir, "trainer.max_steps=4", f"ckpt_path={ckpt}", *common), codec=codec
    )
    assert resumed["global_step"] == straight["global_step"] == 4
    assert resumed["batches_seen"] == 4
    assert resumed["projection_sha256_per_rank"] == straight["projection_sha256_per_rank"]

    # heartcodec-export-projection input=CKPT output=FOLDER gives what the run exported itself
    assert export_main([f"input={straight['final_checkpoint']}", f"output={tmp_path / 'exported'}"]) == 0
    exported, config = load_projection(tmp_path / "exported")
    own, _ = load_projection(tmp_path / "a" / "projection")
    assert config["kind"] == "conv1d" and config["extra"]["global_step"] == 4
    assert config["provenance"] == {
        "embedded": ["codec"],
        "models": {"codec": "random"},
        "checkpoints": {},
        "allow_embedded": False,
    }
    for k, v in own.state_dict().items():
        assert torch.equal(v, exported.state_dict()[k]), k
    assert export_checkpoint(ckpt, tmp_path / "early").is_dir()


class _Scripted(BatchLoss):
    """features**2 mean, except on scripted batch numbers: a NaN value, or a finite value with a NaN gradient."""

    name = "scripted"
    requires = ("features",)

    def __init__(self, module_ref: list, nan_loss: set[int], nan_grad: set[int]):
        super().__init__(1.0)
        self.module_ref, self.nan_loss, self.nan_grad = module_ref, nan_loss, nan_grad

    def compute(self, batch):
        n = self.module_ref[0].batches_seen
        value = batch["features"].pow(2).mean()
        if n in self.nan_loss:
            return value * float("nan")
        if n in self.nan_grad:
            return _NanGrad.apply(value)
        return value


class _NanGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


class _Snapshots(pl.Callback):
    def __init__(self):
        self.pairs = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._before = {k: v.clone() for k, v in module.projection.state_dict().items()}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        after = module.projection.state_dict()
        self.pairs.append(all(torch.equal(self._before[k], after[k]) for k in after))


def _audio_loader(n: int, samples: int = 7680):
    g = torch.Generator().manual_seed(0)
    items = [{"audio": 0.1 * torch.randn(2, samples, generator=g)} for _ in range(n)]
    return DataLoader(items, batch_size=1)


def _module(codec, nan_loss=(), nan_grad=(), **kw):
    ref = []
    projection = LinearProjection(latent_dim=codec.config.latent_hidden_dim, hidden_dim=32, out_dim=codec.config.dim)
    module = ProjectionTrainingModule(
        codec,
        projection,
        LossSet([_Scripted(ref, set(nan_loss), set(nan_grad))]),
        optim={"lr": 1e-2, "warmup_steps": 0},
        **kw,
    )
    ref.append(module)
    return module


def _trainer(steps, callbacks=()):
    # validation off on purpose (limit_val_batches=0 with a loader given, so Lightning does not warn it is missing)
    return quiet_trainer(steps, callbacks)


# Lightning 2.6's CombinedLoader builds torch pytree LeafSpecs the way torch 2.14 deprecates (its code, not ours;
# train() hides library deprecations the same way, training/console.py)
LIGHTNING_LEAFSPEC = pytest.mark.filterwarnings(
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning"
)


@LIGHTNING_LEAFSPEC
def test_nan_or_inf_steps_are_skipped_and_counted(codec):
    module = _module(codec, nan_loss={2}, nan_grad={4})
    snaps = _Snapshots()
    _trainer(5, [snaps]).fit(module, train_dataloaders=_audio_loader(5), val_dataloaders=_audio_loader(1))
    # batches 2 (NaN loss) and 4 (NaN gradient) left the weights untouched; the others moved them
    assert snaps.pairs == [False, True, False, True, False]
    assert module.skipped_steps == 2 and module.batches_seen == 5
    opt = module.trainer.optimizers[0]
    assert all(opt.state[p]["step"] == 3 for p in module.projection.parameters())
    assert module.trainer.lr_scheduler_configs[0].scheduler.last_epoch == 3
    assert all(torch.isfinite(p).all() for p in module.projection.parameters())
    assert not codec.training


@LIGHTNING_LEAFSPEC
def test_too_many_skips_in_a_row_stop_the_run(codec):
    module = _module(codec, nan_loss={1, 2, 3}, max_consecutive_skips=3)
    with pytest.raises(RuntimeError, match="3 training steps in a row"):
        _trainer(5).fit(module, train_dataloaders=_audio_loader(5), val_dataloaders=_audio_loader(1))


def test_official_teacher_targets_follow_the_encoder_definition(codec):
    from heartcodec_lab.training.teacher import build_teacher, teacher_targets

    student = LinearProjection(latent_dim=codec.config.latent_hidden_dim, hidden_dim=16, out_dim=codec.config.dim)
    teacher = build_teacher({"kind": "official", "path": None}, codec, student)
    audio = 0.1 * torch.randn(1, 2, 3 * 3840, generator=torch.Generator().manual_seed(1))
    latents = torch.zeros(1, 2 * codec.config.latent_hidden_dim, 6)
    out = teacher_targets(teacher, codec, audio, latents)
    assert out["teacher_features"].shape == (1, 3, codec.config.dim) and out["teacher_codes"].shape == (1, 8, 3)
    encoded = teacher.encode(audio[0], 48000)
    assert torch.equal(out["teacher_codes"][0], encoded.tokens[:, :3])
    with pytest.raises(ValueError, match="unknown teacher kind"):
        build_teacher({"kind": "oracle"}, codec, student)
