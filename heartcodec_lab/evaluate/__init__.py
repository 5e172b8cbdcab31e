"""Evaluation of tokens and encoders: codebook usage, reconstruction, agreement, likelihood; reports and plots.

Console command ``heartcodec-evaluate`` (:mod:`heartcodec_lab.cli.evaluate`); from Python,
:func:`run_evaluation` takes the same config as a dict or DictConfig.
"""

from heartcodec_lab.evaluate.report import RunData, write_report
from heartcodec_lab.evaluate.runner import run_evaluation

__all__ = ["RunData", "run_evaluation", "write_report"]
