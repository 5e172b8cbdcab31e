"""``heartcodec-evaluate``: compose ``conf/evaluate.yaml`` with key=value overrides and run it."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from heartcodec_lab.evaluate.runner import run_evaluation

log = logging.getLogger(__name__)
# an absolute folder, so it works whether or not conf/ is an importable package
from heartcodec_lab.conf import CONF_PKG


@hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_evaluation(cfg)
    log.info("report: %s/report.md", cfg.out_dir)


if __name__ == "__main__":
    main()
