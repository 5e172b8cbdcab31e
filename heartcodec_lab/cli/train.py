"""``heartcodec-train`` (and ``python train.py``): train an encoder projection (conf/train.yaml)."""

from __future__ import annotations

from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command
from heartcodec_lab.training.overrides import select_experiment


def _train(cfg: DictConfig) -> None:
    from heartcodec_lab.training.run import train

    train(cfg)


COMMAND = Command("heartcodec-train", "train", _train, rewrite=select_experiment)


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    command = COMMAND if prog is None else Command(prog, COMMAND.config, COMMAND.task, rewrite=COMMAND.rewrite)
    run_command(command, argv)


if __name__ == "__main__":
    main()
