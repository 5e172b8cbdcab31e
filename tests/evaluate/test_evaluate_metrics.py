"""Known-answer tests for every evaluation metric."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from heartcodec_lab.evaluate.metrics import (
    ReconstructionMetrics,
    codebook_usage,
    count_codes,
    entropy_bits,
    log_mel_l1,
    loudness_diff_lu,
    match_counts,
    mstft_distance,
    rank_frequency,
    shimmer_ratio_5_7khz,
    si_sdr_db,
    sum_match_counts,
    token_agreement,
)

SR = 48000


def tone(freq_hz: float, seconds: float = 1.0, amp: float = 0.5, phase: float = 0.0) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amp * torch.sin(2 * math.pi * freq_hz * t + phase)).float()


def noise(seconds: float, seed: int, channels: int = 2, amp: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return amp * torch.randn(channels, int(seconds * SR), generator=g)


# -- codebook usage -----------------------------------------------------------------------


def test_uniform_distribution_gives_13_bits():
    usage = codebook_usage(np.ones((8, 8192), dtype=np.int64) * 3)
    for q in usage:
        assert q["entropy_bits"] == pytest.approx(13.0, abs=1e-9)
        assert q["normalized_entropy"] == pytest.approx(1.0)
        assert q["perplexity"] == pytest.approx(8192.0, rel=1e-9)
        assert (q["used_codes"], q["dead_codes"], q["utilization"]) == (8192, 0, 1.0)


def test_single_code_gives_zero_bits():
    counts = np.zeros((8, 8192), dtype=np.int64)
    counts[:, 17] = 1000
    for q in codebook_usage(counts):
        assert q["entropy_bits"] == 0.0
        assert q["perplexity"] == 1.0
        assert (q["used_codes"], q["dead_codes"]) == (1, 8191)
        assert q["utilization"] == pytest.approx(1 / 8192)


def test_entropy_of_skewed_distribution():
    # p = (1/2, 1/4, 1/4): H = 1.5 bits
    assert entropy_bits(np.array([2, 1, 1, 0])) == pytest.approx(1.5)
    assert entropy_bits(np.zeros(4)) == 0.0


def test_count_codes_exact_and_padding_excluded():
    tokens = np.array([[0, 0, 3, 9], [2, 2, 2, 9]], dtype=np.int16)
    counts = count_codes(tokens, codebook_size=4, pad_id=9)
    np.testing.assert_array_equal(counts, [[2, 0, 0, 1], [0, 0, 3, 0]])
    assert counts.dtype == np.int64


def test_count_codes_rejects_out_of_range():
    with pytest.raises(ValueError, match="outside 0..3"):
        count_codes(np.array([[0, 4]]), codebook_size=4)


def test_rank_frequency_sorted_and_normalized():
    rf = rank_frequency(np.array([[1, 5, 0, 4], [0, 0, 0, 0]]))
    np.testing.assert_allclose(rf[0], [0.5, 0.4, 0.1, 0.0])
    np.testing.assert_array_equal(rf[1], 0.0)


# -- reconstruction ------------------------------------------------------------------------


def test_identical_signals_give_zero_distances():
    x = noise(1.0, seed=1) + tone(6000.0)
    metrics = ReconstructionMetrics(SR)(x, x.clone())
    assert metrics["mstft_distance"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["log_mel_l1"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["loudness_diff_lu"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["shimmer_ratio_5_7khz"] == pytest.approx(1.0, abs=1e-9)
    assert metrics["si_sdr_db"] > 100


def test_different_signals_give_positive_distances():
    a, b = noise(1.0, seed=1), noise(1.0, seed=2)
    assert mstft_distance(a, b) > 0.5
    assert log_mel_l1(a, b, SR) > 0.1


def test_si_sdr_is_scale_invariant():
    ref = noise(1.0, seed=3)
    est = ref + noise(1.0, seed=4, amp=0.05)
    base = si_sdr_db(ref, est)
    for scale in (0.01, 0.5, 3.0, 100.0):
        assert si_sdr_db(ref, scale * est) == pytest.approx(base, abs=1e-6)


@pytest.mark.parametrize("shift,expected_db", [(6, 0.0), (4, 10 * math.log10(3.0))])
def test_si_sdr_of_a_delayed_sine(shift, expected_db):
    # 1 kHz at 48 kHz has a 48-sample period; a circular shift of s samples is a phase of
    # 2*pi*s/48, and SI-SDR = 10 log10(cot^2 phi): 6 samples = 45 deg -> 0 dB, 4 -> 30 deg -> 4.77 dB.
    ref = tone(1000.0).unsqueeze(0)
    est = torch.roll(ref, shifts=shift, dims=-1)
    assert si_sdr_db(ref, est) == pytest.approx(expected_db, abs=1e-3)


@pytest.mark.parametrize("snr_db", [0.0, 20.0])
def test_si_sdr_of_a_known_noise_level(snr_db):
    ref = noise(1.0, seed=5, channels=1).double()
    ref = ref - ref.mean()
    n = noise(1.0, seed=6, channels=1).double()
    n = n - n.mean()
    n = n - (n * ref).sum() / (ref * ref).sum() * ref  # orthogonal to the reference
    n = n * torch.sqrt((ref * ref).sum() / (n * n).sum() / 10 ** (snr_db / 10))
    assert si_sdr_db(ref, ref + n) == pytest.approx(snr_db, abs=1e-4)


def _si_sdr_by_hand(ref: torch.Tensor, est: torch.Tensor, eps: float = 1e-12) -> float:
    """The toolkit's former hand-written SI-SDR (float64, zero-mean, eps 1e-12), kept to prove torchmetrics equal."""
    ref = ref.double() - ref.double().mean(-1, keepdim=True)
    est = est.double() - est.double().mean(-1, keepdim=True)
    target = (est * ref).sum(-1, keepdim=True) / ((ref * ref).sum(-1, keepdim=True) + eps) * ref
    ratio = ((target * target).sum(-1) + eps) / (((est - target) ** 2).sum(-1) + eps)
    return float((10 * torch.log10(ratio)).mean())


@pytest.mark.parametrize("seed", range(4))
def test_si_sdr_from_torchmetrics_equals_the_former_definition(seed):
    gen = torch.Generator().manual_seed(seed)
    ref = torch.randn(2, 4800, generator=gen) + 0.3  # with a DC offset: both remove the mean
    est = 0.7 * ref + (0.1 + seed) * torch.randn(2, 4800, generator=gen)
    assert si_sdr_db(ref, est) == pytest.approx(_si_sdr_by_hand(ref, est), abs=1e-6)


def test_loudness_of_half_amplitude_is_minus_6_lu():
    x = noise(2.0, seed=7)
    assert loudness_diff_lu(x, 0.5 * x, SR) == pytest.approx(20 * math.log10(0.5), abs=1e-3)


def test_loudness_of_too_short_clip_is_nan():
    x = noise(0.1, seed=8)
    assert math.isnan(loudness_diff_lu(x, x, SR))


def test_log_mel_l1_of_doubled_amplitude_is_log2():
    x = noise(1.0, seed=9)
    assert log_mel_l1(x, 2 * x, SR) == pytest.approx(math.log(2.0), abs=1e-3)


def test_mstft_of_doubled_amplitude():
    # spectral convergence |2Y - Y| / |Y| = 1 plus log-magnitude L1 = ln 2, at every resolution
    x = noise(1.0, seed=10)
    assert mstft_distance(x, 2 * x) == pytest.approx(1.0 + math.log(2.0), abs=1e-3)


def test_shimmer_ratio_counts_only_5_to_7_khz():
    ref = tone(1000.0) + tone(6000.0, amp=0.1)
    louder_band = tone(1000.0) + tone(6000.0, amp=0.2) + tone(10000.0, amp=0.3)
    assert shimmer_ratio_5_7khz(ref[None], louder_band[None], SR) == pytest.approx(4.0, rel=1e-6)
    assert math.isnan(shimmer_ratio_5_7khz(tone(1000.0)[None], ref[None], SR))


def test_metrics_align_lengths_and_mono():
    x = noise(1.0, seed=11, channels=1)
    longer = torch.cat([x, torch.zeros(1, 3840)], -1).expand(2, -1)
    metrics = ReconstructionMetrics(SR)(x, longer)
    assert metrics["mstft_distance"] == pytest.approx(0.0, abs=1e-6)


def test_channel_mismatch_is_an_error():
    with pytest.raises(ValueError, match="channel counts differ"):
        si_sdr_db(torch.zeros(2, 100), torch.zeros(3, 100))


# -- agreement -----------------------------------------------------------------------------


def test_identical_tokens_agree_fully():
    t = torch.randint(0, 8192, (8, 50))
    agreement = token_agreement(t, t.clone())
    assert agreement["frames"] == 50
    assert agreement["match_rate"] == [1.0] * 8
    assert agreement["match_rate_first_k"] == [1.0] * 8


def test_first_k_match_stops_at_first_disagreeing_quantizer():
    ref = np.zeros((8, 10), dtype=np.int64)
    other = ref.copy()
    other[2, :5] = 1  # quantizer 2 differs on half the frames
    other[6, :] = 1  # quantizer 6 differs everywhere
    agreement = token_agreement(other, ref)
    assert agreement["match_rate"] == [1, 1, 0.5, 1, 1, 1, 0, 1]
    assert agreement["match_rate_first_k"] == [1, 1, 0.5, 0.5, 0.5, 0.5, 0, 0]


def test_agreement_over_common_frames_and_frame_weighted_sum():
    a = np.zeros((8, 4), dtype=np.int64)
    b = np.zeros((8, 6), dtype=np.int64)
    b[0, 0] = 5
    c1 = match_counts(a, b)  # 4 common frames, q0 disagrees on 1
    c2 = match_counts(np.zeros((8, 12)), np.zeros((8, 12)))
    assert c1["frames"] == 4 and c1["per_quantizer"][0] == 3
    total = sum_match_counts([c1, c2])
    assert total["frames"] == 16 and total["per_quantizer"][0] == 15 and total["first_k"][7] == 15


def test_encoder_summary_is_frame_weighted_and_skips_missing_values():
    from heartcodec_lab.evaluate.summary import describe_values, summarize_encoder

    short = {
        "frames": 10,
        "agreement": {"frames": 10, "per_quantizer": [0] * 8, "first_k": [0] * 8},
        "reconstruction": {"si_sdr_db": 1.0, "loudness_diff_lu": None},
    }
    long = {
        "frames": 30,
        "agreement": {"frames": 30, "per_quantizer": [30] * 8, "first_k": [30] * 8},
        "reconstruction": {"si_sdr_db": 3.0, "loudness_diff_lu": -2.0},
    }
    summary = summarize_encoder([short, long])
    assert summary["agreement"]["match_rate"] == [0.75] * 8  # 30 of 40 frames, not the mean of 0 and 1
    assert summary["reconstruction"]["si_sdr_db"]["mean"] == 2.0
    assert summary["reconstruction"]["loudness_diff_lu"] == describe_values([-2.0])
    assert describe_values([None, float("nan")])["n"] == 0
