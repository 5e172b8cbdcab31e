"""``heartcodec-transcribe``: a file or folder of audio -> JSONL transcripts, resumable (conf/transcribe.yaml)."""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig, OmegaConf

from heartcodec_lab.cli.runner import Command, run_command

log = logging.getLogger(__name__)


def transcriber_from_config(cfg: DictConfig):
    """A HeartTranscriptor from a ``transcriber`` config group node."""
    from heartcodec_lab.transcribe import load_transcriber

    settings = OmegaConf.to_container(cfg.get("settings") or OmegaConf.create({}), resolve=True)
    return load_transcriber(cfg.get("path"), device=cfg.get("device", "cpu"), dtype=cfg.get("dtype"), settings=settings)


def run(cfg: DictConfig) -> dict:
    from heartcodec_lab.transcribe.batch import transcribe_files

    if not cfg.get("input"):
        raise ValueError("set input=FILE_OR_FOLDER")
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    transcriber = transcriber_from_config(cfg.transcriber)
    counts = transcribe_files(transcriber, cfg.input, cfg.output, extensions=cfg.extensions, resume=bool(cfg.resume))
    log.info(
        "%s: %d transcribed, %d already done, %d failed",
        cfg.output,
        counts["done"],
        counts["skipped"],
        counts["failed"],
    )
    return counts


def _transcribe(cfg: DictConfig) -> None:
    run(cfg)


COMMAND = Command("heartcodec-transcribe", "transcribe", _transcribe, errors=(ValueError,), renamed={"out": "output"})


def main(argv: list[str] | None = None) -> None:
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
