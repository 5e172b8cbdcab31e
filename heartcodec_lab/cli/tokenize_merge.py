"""``heartcodec-tokenize-merge``: write a sharded dataset's files once every shard is done (conf/tokenize_merge.yaml)."""

from __future__ import annotations

from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command


def _merge(cfg: DictConfig) -> int:
    from heartcodec_lab.tokenize.merge import merge

    return merge(cfg.output_dir, backend_id=cfg.backend_id, check=bool(cfg.check))


COMMAND = Command("heartcodec-tokenize-merge", "tokenize_merge", _merge)


def main(argv: list[str] | None = None) -> None:
    run_command(COMMAND, argv)


if __name__ == "__main__":
    main()
