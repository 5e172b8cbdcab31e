"""Small pieces of the training package: schedule, adapter, resolver, config composition, export errors."""

from __future__ import annotations

import math

import pytest
import torch

from heartcodec_lab.cli.export import main as export_main
from heartcodec_lab.conf import group_options
from heartcodec_lab.training.adapter import LatentAdapter
from heartcodec_lab.training.export import ExportError, export_checkpoint
from heartcodec_lab.training.run import compose_config
from heartcodec_lab.training.schedule import WarmupCosine

# every experiment in conf/experiment/, found on disk: a new recipe is tested without editing this file
EXPERIMENTS = group_options("experiment")


def test_warmup_cosine_known_values():
    f = WarmupCosine(warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    # halfway through the cosine: the mean of 1 and the floor
    assert f(60) == pytest.approx(0.55)
    assert f(110) == pytest.approx(0.1)
    assert f(10_000) == pytest.approx(0.1)
    values = [f(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_adapter_shapes_and_layout():
    torch.manual_seed(0)
    adapter = LatentAdapter(in_dim=16, latent_dim=3, num_channels=2)
    q = torch.randn(2, 5, 16)
    out = adapter(q)
    assert out.shape == (2, 6, 10)
    assert out.abs().max() < 1
    # frame 2k and 2k+1 come from 12.5 Hz frame k only: changing frame 1 changes latent frames 2, 3
    q2 = q.clone()
    q2[:, 1] += 1.0
    diff = (adapter(q2) - out).abs().sum(dim=(0, 1))
    assert torch.nonzero(diff).flatten().tolist() == [2, 3]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(name, tmp_path):
    cfg = compose_config([f"+experiment={name}", f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path}"])
    assert cfg.experiment_name == name
    assert cfg.projection.kind in ("conv1d", "linear")
    assert len(cfg.loss) >= 1
    # the embedded codecs (the default miniature, the random tiny one) get the small demo sizes
    assert cfg.codec.path is None and cfg.trainer.max_steps <= 60
    pinned = compose_config([f"+experiment={name}", "codec.path=embedded:random", f"paths.output_dir={tmp_path}"])
    assert pinned.data.batch_size == cfg.data.batch_size and pinned.trainer.max_steps == cfg.trainer.max_steps
    real = compose_config([f"+experiment={name}", "codec.path=/ckpt/HeartCodec-oss", f"paths.output_dir={tmp_path}"])
    assert real.data.batch_size > cfg.data.batch_size
    if name != "demo":  # the demo stays short whatever the codec
        assert real.trainer.max_steps >= 100_000
    if name in ("distill", "stable"):
        assert cfg.teacher == {"kind": "minicodec", "path": None}  # the miniature's true encoder
        assert compose_config(
            ["+experiment=distill", "teacher=random_projection", f"paths.output_dir={tmp_path}"]
        ).teacher == {"kind": "random_projection", "seed": 1234}


def test_train_yaml_does_not_default_an_experiment(tmp_path):
    cfg = compose_config([f"paths.output_dir={tmp_path}"])
    assert cfg.experiment_name == "custom"
    ddp = compose_config(["trainer=ddp", f"paths.output_dir={tmp_path}"])
    assert ddp.trainer.devices == 2 and ddp.trainer.strategy._target_.endswith("DDPStrategy")


def test_export_refuses_bad_checkpoints(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        export_checkpoint(tmp_path / "missing.ckpt", tmp_path / "out")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ExportError, match="junk.ckpt"):
        export_checkpoint(junk, tmp_path / "out")
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, other)
    with pytest.raises(ExportError, match="not a projection training checkpoint"):
        export_checkpoint(other, tmp_path / "out")
    with pytest.raises(SystemExit) as exited:
        export_main([f"input={other}", f"output={tmp_path / 'out'}"])
    assert exited.value.code == 2


class _Evil:
    def __reduce__(self):
        return (math.sqrt, (4.0,))


def test_export_does_not_unpickle_arbitrary_objects(tmp_path):
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "heartcodec_lab": {"projection": _Evil()}}, evil)
    with pytest.raises(ExportError, match="trust_pickle=true"):
        export_checkpoint(evil, tmp_path / "out")
