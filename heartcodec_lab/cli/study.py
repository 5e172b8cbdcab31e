"""``heartcodec-study``: train each projection recipe, evaluate them against a true encoder, one report
(conf/study.yaml)."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command

log = logging.getLogger("heartcodec-study")


def _study(cfg: DictConfig) -> None:
    from heartcodec_lab.study.run import run_study

    log.info("report: %s", run_study(cfg))


COMMAND = Command(
    "heartcodec-study", "study", _study, errors=(ValueError,), renamed={"audio_dir": "input", "out_dir": "output"}
)


def main(argv: list[str] | None = None) -> None:
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
