"""``heartcodec-tokenize``: tokenize a folder or list file into a SimpleTuner-ready dataset (conf/tokenize.yaml)."""

from __future__ import annotations

from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command


def _tokenize(cfg: DictConfig) -> int:
    from heartcodec_lab.tokenize.runner import run

    return run(cfg)


COMMAND = Command(
    "heartcodec-tokenize",
    "tokenize",
    _tokenize,
    errors=(ValueError,),
    renamed={"input_dir": "input", "input_manifest": "input", "output_dir": "output"},
)


def main(argv: list[str] | None = None) -> None:
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
