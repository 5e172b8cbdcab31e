"""The encoder study: train each projection recipe, evaluate all against the official encoder, one report.

Console command ``heartcodec-study`` (``conf/study.yaml``); :func:`run_study` is the library call.
"""

from heartcodec_lab.study.run import run_study, split_folder

__all__ = ["run_study", "split_folder"]
