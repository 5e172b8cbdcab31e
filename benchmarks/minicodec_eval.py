"""Compatibility shim: the scoring moved to :mod:`heartcodec_lab.minicodec.scoring` (import it from there)."""

from heartcodec_lab.minicodec.scoring import *
from heartcodec_lab.minicodec.scoring import (  # noqa: F401  (names the star import skips)
    METRIC_HEADER,
    METRICS,
    SR,
    agreement_cells,
    agreement_header,
    detokenize,
    load_miniature,
    markdown_table,
    mean_metrics,
    metric_cells,
    metrics,
    roundtrip,
    same_loudness,
    score_encoders,
    shipped_miniature_dirs,
)
