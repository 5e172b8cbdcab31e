"""``heartcodec-export-projection input=CKPT output=FOLDER``: export a training checkpoint's projection (conf/export.yaml).

The old spelling ``heartcodec-export-projection CKPT OUTDIR [--trust-pickle]`` still works for one release.
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from heartcodec_lab.cli.runner import Command, run_command
from heartcodec_lab.cli.vocabulary import REMOVED_IN

_HYDRA_FLAGS_WITH_VALUE = {
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--config-name",
    "-cn",
    "--config-path",
    "-cp",
    "--config-dir",
    "-cd",
    "--info",
    "-i",
    "--experimental-rerun",
}


def positional_to_overrides(args: list[str]) -> list[str]:
    """``CKPT OUTDIR [--trust-pickle]`` (the old spelling) -> ``input=CKPT output=OUTDIR [trust_pickle=true]``."""
    out, positional, after_flag = [], [], False
    for arg in args:
        if arg == "--trust-pickle":
            out.append("trust_pickle=true")
        elif "=" not in arg and not arg.startswith("-") and not after_flag:
            positional.append(arg)
        else:
            out.append(arg)
        after_flag = arg in _HYDRA_FLAGS_WITH_VALUE
    if positional or "--trust-pickle" in args:
        print(
            f"heartcodec-export-projection: note: 'CKPT OUTDIR --trust-pickle' is now "
            f"'input=CKPT output=OUTDIR trust_pickle=true'; the old spelling goes in {REMOVED_IN}",
            file=sys.stderr,
        )
    return [f"{key}={value}" for key, value in zip(("input", "output"), positional)] + out


def _export(cfg: DictConfig) -> None:
    from heartcodec_lab.training.export import export_checkpoint

    out = export_checkpoint(cfg.input, cfg.output, trust_pickle=bool(cfg.trust_pickle))
    print(f"exported projection to {out}")


COMMAND = Command("heartcodec-export-projection", "export", _export, rewrite=positional_to_overrides)


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns 0 (a failure exits with its code, 2 for a refused checkpoint)."""
    run_command(COMMAND, argv)
    return 0


if __name__ == "__main__":
    main()
