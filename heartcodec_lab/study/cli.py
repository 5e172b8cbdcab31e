"""``heartcodec-study``: compose ``conf/study.yaml`` with key=value overrides and run the study."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from heartcodec_lab.conf import CONF_PKG
from heartcodec_lab.study.run import run_study

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="study")
def main(cfg: DictConfig) -> None:
    log.info("report: %s", run_study(cfg))


if __name__ == "__main__":
    main()
