"""``heartcodec-evaluate``: codebook usage, encoders on audio, audio pairs, lyric adherence or a comparison
of runs (conf/evaluate.yaml)."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command

log = logging.getLogger("heartcodec-evaluate")


def _evaluate(cfg: DictConfig) -> None:
    from heartcodec_lab.evaluate.runner import run_evaluation

    run_evaluation(cfg)
    log.info("report: %s/report.md", cfg.output)


def _errors() -> tuple[type[BaseException], ...]:
    from heartcodec_lab.evaluate.dataset import DatasetError

    return (DatasetError,)


#: the old spellings (until 0.2): a folder key chose the mode, now `mode=` does
RENAMED = {
    "out_dir": "output",
    "dataset_dir": ("input", "mode=usage"),
    "audio_dir": ("input", "mode=encoders"),
    "songs_dir": ("input", "mode=adherence"),
    "compare": ("input", "mode=compare"),
    "estimate_dir": ("estimate", "mode=pairs"),
}
COMMAND = Command("heartcodec-evaluate", "evaluate", _evaluate, errors=_errors(), renamed=RENAMED)


def main(argv: list[str] | None = None) -> None:
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
