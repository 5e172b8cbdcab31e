"""``heartcodec-train`` (and ``python train.py``): train an encoder projection (conf/train.yaml)."""

from __future__ import annotations

from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command
from heartcodec_lab.training.overrides import select_experiment

#: the one vocabulary in training's terms: the music to train on, and the run folder
VOCABULARY = {"input": "data.train_dir", "output": "hydra.run.dir"}


def rewrite(args: list[str]) -> list[str]:
    """``input=DIR`` -> ``data.train_dir=DIR``, ``output=DIR`` -> ``hydra.run.dir=DIR``; ``+experiment=`` as
    the experiment slot (:func:`select_experiment`)."""
    out = []
    for arg in args:
        key, eq, value = arg.partition("=")
        out.append(f"{VOCABULARY[key]}={value}" if eq and key in VOCABULARY else arg)
    return select_experiment(out)


def _train(cfg: DictConfig) -> None:
    from heartcodec_lab.training.run import train

    train(cfg)


COMMAND = Command("heartcodec-train", "train", _train, rewrite=rewrite)


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    command = COMMAND if prog is None else Command(prog, COMMAND.config, COMMAND.task, rewrite=COMMAND.rewrite)
    run_command(command, argv)


if __name__ == "__main__":
    main()
