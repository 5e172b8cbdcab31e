"""``heartcodec-tokenize-convert``: a tokenized dataset into the other layout, without loss (conf/tokenize_convert.yaml)."""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command


def _convert(cfg: DictConfig) -> int:
    from heartcodec_lab.tokenize.hf_convert import convert

    rows = convert(str(cfg.input), str(cfg.output), str(cfg.layout), cfg.get("audio_root"), int(cfg.shard_rows))
    print(f"{cfg.output}: {rows} rows in the {cfg.layout} layout", file=sys.stderr)
    return 0


COMMAND = Command("heartcodec-tokenize-convert", "tokenize_convert", _convert, errors=(ValueError, FileExistsError))


def main(argv: list[str] | None = None) -> None:
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
