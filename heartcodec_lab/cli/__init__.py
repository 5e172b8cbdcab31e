"""Every console command, each a thin module over the one Hydra runner (:mod:`heartcodec_lab.cli.runner`).

The packages below (codec, encoders, tokenize, evaluate, mula, study, ...) never import this one; only
``cli`` and ``training`` import Hydra (``tests/cli/test_layers.py`` walks the import graph).
"""
