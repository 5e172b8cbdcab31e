"""``heartcodec-train``: the console-command twin of ``python train.py`` (same config, same overrides)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from heartcodec_lab.conf import CONF_PKG
from heartcodec_lab.provenance import one_line_errors
from heartcodec_lab.training.overrides import select_experiment
from heartcodec_lab.training.run import train


@hydra.main(config_path=CONF_PKG, config_name="train", version_base="1.3")
@one_line_errors("heartcodec-train")
def _hydra_task(cfg: DictConfig) -> None:
    train(cfg)


def main() -> None:
    sys.argv = select_experiment(sys.argv)
    _hydra_task()


if __name__ == "__main__":
    main()
