"""Config groups mirror what they build: debug beats an experiment, one detokenize group, one job group."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from heartcodec_lab.codec import RANDOM_CODEC, DetokenizeSettings, load_codec
from heartcodec_lab.conf import CONF_DIR, group_options
from heartcodec_lab.training.overrides import codec_device, select_experiment
from heartcodec_lab.training.run import compose_config

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["train", "tokenize", "tokenize_merge", "evaluate", "generate", "reconstruct"]


@pytest.fixture
def command_cfg(compose):
    """A command's config; for train, ``+experiment=NAME`` is read as the entry point reads it."""

    def make(name: str, *overrides: str, hydra: bool = False):
        if name == "train":
            overrides = ("paths.output_dir=/tmp/unused", *overrides)
        return compose(name, *select_experiment(list(overrides)), hydra=hydra)

    return make


def test_debug_wins_over_an_experiments_sizes():
    demo = compose_config(["+experiment=demo", "paths.output_dir=/tmp/unused"])
    assert (demo.trainer.max_steps, demo.data.samples_per_epoch) == (30, 60)
    assert demo.callbacks.model_checkpoint.every_n_train_steps == 30
    for order in (
        ["+experiment=demo", "debug=fast"],
        ["debug=fast", "+experiment=demo"],
        ["experiment=demo", "debug=fast"],
    ):
        fast = compose_config([*order, "paths.output_dir=/tmp/unused"])
        assert fast.experiment_name == "demo" and fast.loss.flow.weight == 0.5  # the experiment still applies
        assert (fast.trainer.max_steps, fast.data.samples_per_epoch) == (2, 2), order
        assert fast.callbacks.model_checkpoint.every_n_train_steps == 1


def test_plus_experiment_selects_the_experiment_slot():
    assert select_experiment(["train.py", "+experiment=conv1d", "+trainer.x=1", "seed=3"]) == [
        "train.py",
        "experiment=conv1d",
        "+trainer.x=1",
        "seed=3",
    ]


def test_train_py_takes_the_cards_command_verbatim(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "+experiment=demo", "debug=fast", "--cfg", "job"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["experiment_name"] == "demo" and cfg["trainer"]["max_steps"] == 2


def test_teacher_is_a_group():
    assert group_options("teacher") == ["minicodec", "official", "projection", "random_projection"]
    assert compose_config(["paths.output_dir=/tmp/unused"]).get("teacher") is None
    cfg = compose_config(
        ["+experiment=distill", "teacher=projection", "teacher.path=/x", "paths.output_dir=/tmp/unused"]
    )
    assert dict(cfg.teacher) == {"kind": "projection", "path": "/x"}


def test_one_detokenize_group_reaches_every_decoder(command_cfg):
    for name in ("reconstruct", "generate", "evaluate", "train"):
        cfg = command_cfg(name, "detokenize.num_steps=3", "detokenize.guidance_scale=2.0")
        settings = DetokenizeSettings.from_mapping(cfg.detokenize)
        assert (settings.num_steps, settings.guidance_scale) == (3, 2.0), name
    train = command_cfg("train", "detokenize.num_steps=3", "seed=7")
    preview = train.callbacks.reconstruction_preview.detokenize
    assert (preview.num_steps, preview.seed, preview.duration) == (3, 7, 7.44)  # embedded codec: short windows
    assert command_cfg("train", "codec.path=/ckpt/c").callbacks.reconstruction_preview.detokenize.duration == 29.76
    # the decoder noise follows a command's own seed; evaluate has none and uses 0
    assert command_cfg("generate", "seed=5").detokenize.seed == 5
    assert command_cfg("generate").detokenize.seed is None
    assert command_cfg("evaluate").detokenize.seed == 0


def test_detokenize_settings_refuse_unknown_keys_and_seed_the_noise():
    with pytest.raises(ValueError, match="unknown setting.*num_step"):
        DetokenizeSettings.from_mapping({"num_step": 2})
    codec = load_codec(RANDOM_CODEC)
    codes = torch.randint(0, codec.config.codebook_size, (8, 20))
    settings = DetokenizeSettings(num_steps=1, duration=7.44, seed=11)
    a, b = settings.decode(codec, codes), settings.decode(codec, codes)
    assert a.shape == (2, 20 * 3840) and torch.equal(a, b)
    assert not torch.equal(a, DetokenizeSettings(num_steps=1, duration=7.44, seed=12).decode(codec, codes))


def test_evaluate_uses_the_mula_group(command_cfg):
    cfg = command_cfg("evaluate", "mula.path=/ckpt", "mula.version=3B")
    assert (cfg.mula.path, cfg.mula.version, cfg.mula.device, cfg.mula.enabled) == ("/ckpt", "3B", "auto", None)


def test_hydra_settings_live_in_the_job_group(command_cfg):
    for path in Path(CONF_DIR).glob("*.yaml"):
        assert "hydra" not in (yaml.safe_load(path.read_text()) or {}), (
            f"{path.name}: hydra settings belong in conf/job/"
        )
    for name in COMMANDS:
        cfg = (
            command_cfg(name, "output=e", *(["mode=usage"] if name == "evaluate" else []), hydra=True)
            if name.startswith("tokenize") or name == "evaluate"
            else command_cfg(name, hydra=True)
        )
        run_dir = cfg.hydra.run.dir
        if name == "train":
            assert run_dir.startswith("outputs/train/custom/")
        elif name == "evaluate":
            assert run_dir == "e" and cfg.hydra.output_subdir == ".hydra"
        else:
            assert run_dir == "." and cfg.hydra.output_subdir is None, name
            assert cfg.hydra.runtime.choices["hydra/job_logging"] == "stdout", name


def test_training_codec_device():
    assert codec_device("auto", torch.device("cpu")) == torch.device("cpu")
    assert codec_device("cuda", torch.device("cuda", 1)) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="codec.device=cuda but the trainer runs on cpu"):
        codec_device("cuda", torch.device("cpu"))
