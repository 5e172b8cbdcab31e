"""Token stability: known answers on a tiny encoder whose code boundaries are known exactly."""

from __future__ import annotations

import pytest
import torch
from vector_quantize_pytorch import ResidualVQ

from heartcodec_lab.encoders.base import AudioEncoder
from heartcodec_lab.evaluate.stability import (
    Change,
    delay,
    format_against_ceiling,
    frame_shift,
    gain,
    lossy_round_trip,
    measure_stability,
    noise,
    relative_feature_error,
    resample_round_trip,
    stability_table,
    teacher_ceiling,
)

RATE = 1000  # the toy encoder's rate: one token frame = 80 samples


def toy_rvq(levels: int = 2) -> ResidualVQ:
    """Levels on the first feature channel: level 0 codes {0, 1} (boundary 0.5), level q >= 1 codes
    {-0.5^(q+1), +0.5^(q+1)} (boundary 0 of the residual)."""
    rvq = ResidualVQ(dim=512, codebook_size=2, num_quantizers=levels, codebook_dim=1).eval()
    with torch.no_grad():
        rvq.project_in.weight.zero_()
        rvq.project_in.weight[0, 0] = 1.0
        rvq.project_in.bias.zero_()
        rvq.layers[0]._codebook.embed.copy_(torch.tensor([0.0, 1.0]).view(1, 2, 1))
        for q in range(1, levels):
            rvq.layers[q]._codebook.embed.copy_(torch.tensor([-1.0, 1.0]).view(1, 2, 1) * 0.5 ** (q + 1))
    return rvq


class FrameMean(AudioEncoder):
    """Feature 0 of frame i = ``scale`` x mean of its 80 samples (both channels); the rest zero."""

    native_sample_rate = RATE
    chunk_samples = 800
    frames_per_chunk = 10

    def __init__(self, rvq, scale: float = 1.0):
        super().__init__(rvq)
        self.scale = scale

    def encode_chunks(self, chunks):
        b = chunks.shape[0]
        means = chunks.mean(1).reshape(b, self.frames_per_chunk, 80).mean(-1)
        features = torch.zeros(b, self.frames_per_chunk, 512)
        features[..., 0] = self.scale * means
        return features


def steps(means) -> torch.Tensor:
    """Stereo audio ``[2, 80 * len(means)]``, constant within each token frame."""
    return torch.tensor(means, dtype=torch.float32).repeat_interleave(80).expand(2, -1).contiguous()


@pytest.fixture(scope="module")
def encoder():
    return FrameMean(toy_rvq())


UNCHANGED = Change("unchanged", "the same audio", lambda a, sr, g: a.clone())
MEANS = [0.2, 0.45, 0.49, 0.52, 0.7, 0.95, 0.3, 0.51, 0.6, 0.1]


def test_toy_codes_are_the_hand_computed_ones(encoder):
    tokens = encoder.tokenize(steps(MEANS), RATE)
    assert tokens[0].tolist() == [0, 0, 0, 1, 1, 1, 0, 1, 1, 0]
    assert tokens[1].tolist() == [1, 1, 1, 0, 0, 0, 1, 0, 0, 1]  # residual sign: + -> code 1


def test_unchanged_input_agrees_everywhere(encoder):
    result = measure_stability(encoder, [steps(MEANS)], RATE, [UNCHANGED, gain(0.0)])
    for block in result["changes"].values():
        assert block["frames"] == 10
        assert block["match_rate"] == [1.0, 1.0] and block["match_rate_first_k"] == [1.0, 1.0]
        assert block["feature_change"] == 0.0


def test_gain_moves_known_frames_across_code_boundaries(encoder):
    # x1.122 (+1 dB): 0.45 -> 0.505 and 0.49 -> 0.550 cross 0.5 (level 0 flips in frames 1, 2); their residuals
    # turn negative, and 0.95 -> 1.066 leaves a positive residual (level 1 flips in frames 1, 2, 5)
    result = measure_stability(encoder, [steps(MEANS)], RATE, [gain(1.0)])
    block = result["changes"]["gain_+1dB"]
    assert block["per_quantizer"] == [8, 7] and block["first_k"] == [8, 7]
    assert block["match_rate"] == [0.8, 0.7]
    assert block["feature_change"] == pytest.approx(10 ** (1 / 20) - 1, rel=1e-5)
    assert teacher_ceiling(encoder, [steps(MEANS)], RATE, change=gain(1.0)) == {"q0": 0.8, "q1": 0.7}
    # several changes: each level's ceiling is the lowest among them
    assert teacher_ceiling(encoder, [steps(MEANS)], RATE, change=[UNCHANGED, gain(1.0)]) == {"q0": 0.8, "q1": 0.7}


def test_whole_frame_delay_is_aligned_and_half_frame_delay_mixes_neighbours(encoder):
    audio = steps(MEANS)
    aligned = measure_stability(encoder, [audio], RATE, [delay(samples=80)])["changes"]["delay_80"]
    assert aligned["match_rate"] == [1.0, 1.0] and aligned["frames"] == 10
    # half a frame: frame i of the delayed audio averages frames i-1 and i of the original
    means = [0.2, 0.9, 0.9, 0.3, 0.2, 0.9, 0.05, 0.3, 0.75, 0.6]
    half = measure_stability(encoder, [steps(means)], RATE, [delay(frames=0.5)])["changes"]["delay_0.5_frame"]
    # averages 0.1 .55 .9 .6 .25 .55 .475 .175 .525 .675: only frame 3 (0.3 -> 0.6) changes its level-0 code
    assert half["per_quantizer"][0] == 9


def test_frame_shift_rounds_half_a_frame_down():
    assert [frame_shift(d, 48000) for d in (0, 1, 1919, 1920, 1921, 3840, 5760)] == [0, 0, 0, 0, 1, 1, 1]


def test_noise_is_seeded_and_negligible_noise_changes_nothing(encoder):
    audio = steps(MEANS)
    tiny = measure_stability(encoder, [audio], RATE, [noise(-200)])["changes"]["noise_-200dB"]
    assert tiny["match_rate"] == [1.0, 1.0]
    loud = [measure_stability(encoder, [audio], RATE, [noise(-6)], seed=s)["changes"]["noise_-6dB"] for s in (1, 1, 2)]
    assert loud[0]["feature_change"] == loud[1]["feature_change"] != loud[2]["feature_change"]


def test_relative_feature_error_in_the_rvq_input_space(encoder):
    audio = [steps(MEANS), steps(MEANS[::-1])]
    student = FrameMean(encoder.quantizer, scale=1.1)
    assert relative_feature_error(student, encoder, audio, RATE) == pytest.approx(0.1, rel=1e-5)
    assert relative_feature_error(encoder, encoder, audio, RATE) == 0.0


def test_format_against_ceiling():
    assert (
        format_against_ceiling([0.92, 0.5, 0.83], {"q0": 0.98, "q1": 0.6, "q2": 0.86}, levels=[2])
        == "q2: 83 % of a ceiling of 86 %"
    )
    assert format_against_ceiling({"q0": 0.05}, [0.0601]) == "q0: 5.0 % of a ceiling of 6.0 %"


def test_unavailable_change_is_skipped_with_a_note(encoder):
    missing = Change("lossy_x", "no codec", lambda a, sr, g: a, available=lambda: "libsndfile lacks X")
    result = measure_stability(encoder, [steps(MEANS)], RATE, [missing, UNCHANGED])
    assert result["skipped"] == {"lossy_x": "libsndfile lacks X"} and list(result["changes"]) == ["unchanged"]
    header, rows = stability_table(result)
    assert header[:3] == ["change", "q0 %", "q1 %"] and rows[0][:3] == ["unchanged", "100.0", "100.0"]
    with pytest.raises(ValueError, match="unknown change"):
        measure_stability(encoder, [steps(MEANS)], RATE, ["louder"])


def test_round_trips_keep_length_and_stay_close():
    t = torch.arange(9600) / 48000
    audio = 0.3 * torch.sin(2 * torch.pi * 440 * t).expand(2, -1).contiguous()
    changes = [resample_round_trip()] + [c for c in (lossy_round_trip(),) if c.available() is None]
    for change in changes:
        out = change.apply(audio, 48000, torch.Generator())
        assert out.shape == audio.shape
        assert float((out - audio).pow(2).mean().sqrt() / audio.pow(2).mean().sqrt()) < 0.1, change.name


def test_true_encoder_of_the_miniature_is_fully_stable_without_a_change():
    from heartcodec_lab.codec.miniature import load_minicodec
    from heartcodec_lab.encoders import build_encoder
    from heartcodec_lab.minicodec.data import held_out_pieces

    codec = load_minicodec()
    truth = build_encoder("minicodec", None, codec)
    piece = held_out_pieces(1, 1.6)[0]
    result = measure_stability(truth, [piece], 48000, [UNCHANGED, "delay_1"])
    assert result["changes"]["unchanged"]["match_rate"] == [1.0] * 8
    assert result["changes"]["delay_1"]["frames"] == 21
    assert result["changes"]["delay_1"]["feature_change"] > 0
