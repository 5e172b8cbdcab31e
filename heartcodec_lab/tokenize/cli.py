"""``heartcodec-tokenize``: tokenize a folder or manifest into a SimpleTuner-ready dataset (Hydra app)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from heartcodec_lab.conf import CONF_PKG
from heartcodec_lab.provenance import one_line_errors


@hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="tokenize")
@one_line_errors("heartcodec-tokenize", extra=(ValueError,))
def _main(cfg: DictConfig) -> None:
    from heartcodec_lab.tokenize.runner import run

    code = run(cfg)
    if code:
        sys.exit(code)


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
