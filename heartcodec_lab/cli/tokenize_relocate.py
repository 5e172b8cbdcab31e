"""``heartcodec-tokenize-relocate``: re-point a tokenized dataset that moved (conf/tokenize_relocate.yaml)."""

from __future__ import annotations

from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command


def _relocate(cfg: DictConfig) -> int:
    from heartcodec_lab.tokenize.relocate import relocate

    result = relocate(cfg.output, cfg.get("audio_root"))
    print(
        f"{result['dataset_dir']}: multidatabackend.json now points here (was {', '.join(result['previous_dirs'])}); "
        f"{result['links_changed']} audio link(s) re-pointed; {result['unresolved_audio']} audio file(s) unresolved"
    )
    return 1 if result["unresolved_audio"] else 0


def _errors() -> tuple[type[BaseException], ...]:
    from heartcodec_lab.tokenize.relocate import RelocateError

    return (RelocateError,)


COMMAND = Command(
    "heartcodec-tokenize-relocate", "tokenize_relocate", _relocate, errors=_errors(), renamed={"dataset_dir": "output"}
)


def main(argv: list[str] | None = None) -> None:
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
