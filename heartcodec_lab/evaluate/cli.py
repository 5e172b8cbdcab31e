"""``heartcodec-evaluate``: compose ``conf/evaluate.yaml`` with key=value overrides and run it."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from heartcodec_lab.conf import CONF_PKG
from heartcodec_lab.evaluate.dataset import DatasetError
from heartcodec_lab.evaluate.runner import run_evaluation
from heartcodec_lab.provenance import one_line_errors

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="evaluate")
@one_line_errors("heartcodec-evaluate", extra=(DatasetError,))
def main(cfg: DictConfig) -> None:
    run_evaluation(cfg)
    log.info("report: %s/report.md", cfg.out_dir)


if __name__ == "__main__":
    main()
