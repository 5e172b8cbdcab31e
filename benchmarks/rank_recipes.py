"""Thin wrapper: the recipe ranking is the ``heartcodec-study`` preset ``preset=ranking``.

    python benchmarks/rank_recipes.py [key=value ...]
    # = heartcodec-study preset=ranking [key=value ...]   (heartcodec_lab/study/ranking.py, conf/preset/ranking.yaml)

e.g. ``ranking.steps=2000 'ranking.recipes=[flow,distill,conv1d]' output=outputs/ranking``.
"""

from __future__ import annotations

import sys

from heartcodec_lab.cli.study import main

if __name__ == "__main__":
    main(["preset=ranking", *sys.argv[1:]])
