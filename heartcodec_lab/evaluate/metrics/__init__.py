"""Metrics, each implemented once: codebook usage, reconstruction, token agreement."""

from heartcodec_lab.codec.usage import codebook_usage, count_codes, entropy_bits, quantizer_usage, rank_frequency
from heartcodec_lab.evaluate.metrics.agreement import (
    level_agreement,
    match_counts,
    match_rates,
    sum_match_counts,
    token_agreement,
)
from heartcodec_lab.evaluate.metrics.audio import (
    LogMelParams,
    MstftParams,
    ReconstructionMetrics,
    align,
    band_energy,
    log_mel_l1,
    loudness_diff_lu,
    loudness_lufs,
    mstft_distance,
    shimmer_ratio_5_7khz,
    si_sdr_db,
)

__all__ = [
    "LogMelParams",
    "MstftParams",
    "ReconstructionMetrics",
    "align",
    "band_energy",
    "codebook_usage",
    "count_codes",
    "entropy_bits",
    "level_agreement",
    "log_mel_l1",
    "loudness_diff_lu",
    "loudness_lufs",
    "match_counts",
    "match_rates",
    "mstft_distance",
    "quantizer_usage",
    "rank_frequency",
    "shimmer_ratio_5_7khz",
    "si_sdr_db",
    "sum_match_counts",
    "token_agreement",
]
