"""detokenize: window plan, decode + overlap-add from stored latents, full seeded runs against the reference."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from heartcodec_lab.codec import RANDOM_CODEC, WindowPlan, load_codec

LONG_SEGMENTS = {"start": 0, "end": 1536000 - 4800, "xfade_begin": 1226400, "xfade_mid": 1328640, "xfade_end": 1426080}


@pytest.fixture(scope="module")
def codec(fixtures_dir):
    return load_codec(fixtures_dir / "ckpt-tiny" / "HeartCodec-oss")


def _expected(fixtures_dir, name):
    return load_file(fixtures_dir / "expected" / f"{name}.safetensors")


def _stats(wav):
    w = wav.double()
    return torch.stack([w.sum(), w.abs().sum(), (w * w).sum(), w.abs().max()])


def _check_pieces(wav, ref, segments, atol):
    for name, start in segments.items():
        torch.testing.assert_close(wav[:, start : start + 4800], ref[f"wav_seg_{name}"], atol=atol, rtol=0, msg=name)
    torch.testing.assert_close(wav[:, ::100], ref["wav_stride100"], atol=atol, rtol=0)


def _record_windows(codec, monkeypatch):
    """Capture what inference_codes returns and the in-context length it is given, per window."""
    seen = {"latents": [], "incontext": []}
    original = codec.flow_matching.inference_codes

    def spy(codes_list, true_latents, latent_length, incontext_length, **kwargs):
        out = original(codes_list, true_latents, latent_length, incontext_length, **kwargs)
        seen["latents"].append(out.clone())
        seen["incontext"].append(int(incontext_length))
        return out

    monkeypatch.setattr(codec.flow_matching, "inference_codes", spy)
    return seen


@pytest.mark.parametrize(
    "frames, padded, starts",
    [(50, 372, (0,)), (372, 372, (0,)), (400, 692, (0, 320)), (424, 692, (0, 320)), (700, 1012, (0, 320, 640))],
)
def test_window_plan(frames, padded, starts):
    plan = WindowPlan.for_length(frames)
    assert (plan.window, plan.hop, plan.overlap) == (372, 320, 52)
    assert (plan.padded_length, plan.starts) == (padded, starts)
    assert plan.starts[-1] + plan.window == plan.padded_length >= frames


def test_windows_shorter_than_93_frames_are_refused():
    with pytest.raises(ValueError, match="at least 93 code frames"):
        WindowPlan.for_length(50, duration=5.0)


def test_decode_and_overlap_add_of_stored_latents(codec, fixtures_dir):
    ref = _expected(fixtures_dir, "codec_detokenize_long")
    wav = codec.latents_to_wav(list(ref["window_latents"].split(1)))[:, : 400 * 3840]
    assert wav.shape == (2, 1536000) and wav.dtype == torch.float32
    _check_pieces(wav, ref, LONG_SEGMENTS, atol=1e-5)


def test_detokenize_long_matches_reference(codec, fixtures_dir, monkeypatch):
    ref = _expected(fixtures_dir, "codec_detokenize_long")
    seen = _record_windows(codec, monkeypatch)
    torch.manual_seed(4321)
    wav = codec.detokenize(ref["codes"])
    assert seen["incontext"] == ref["window_incontext_length"].tolist() == [0, 104]
    torch.testing.assert_close(torch.cat(seen["latents"]), ref["window_latents"], atol=1e-4, rtol=0)
    assert wav.shape == (2, 1536000) and wav.dtype == torch.float32
    _check_pieces(wav, ref, LONG_SEGMENTS, atol=1e-4)
    torch.testing.assert_close(_stats(wav), ref["wav_stats"], atol=0, rtol=1e-6)


def test_detokenize_short_repeats_codes_up_to_one_window(fixtures_dir, monkeypatch):
    codec = load_codec(fixtures_dir / "heartcodec-tiny")  # the plain-save layout; the long run uses the sharded one
    ref = _expected(fixtures_dir, "codec_detokenize_short")
    seen = _record_windows(codec, monkeypatch)
    torch.manual_seed(4321)
    wav = codec.detokenize(ref["codes"])
    assert seen["incontext"] == ref["window_incontext_length"].tolist() == [0]
    assert wav.shape == (2, 192000)
    _check_pieces(wav, ref, {"start": 0, "end": 192000 - 4800}, atol=1e-4)
    torch.testing.assert_close(_stats(wav), ref["wav_stats"], atol=0, rtol=1e-6)


def test_end_to_end_frames_from_heartmula(codec, fixtures_dir):
    ref = _expected(fixtures_dir, "e2e_wav")
    assert ref["frames"].dtype == torch.int32  # as the generation loop returns them
    torch.manual_seed(777)
    wav = codec.detokenize(ref["frames"])
    torch.testing.assert_close(wav, ref["wav"], atol=1e-4, rtol=0)


#: The shortest window the released hop ratio allows (93 code frames, hop 80): cheap runs.
SHORT_WINDOW_SECONDS = 7.44


@pytest.mark.parametrize("frames, duration", [(29, SHORT_WINDOW_SECONDS), (106, SHORT_WINDOW_SECONDS), (150, 10.0)])
def test_output_is_exactly_3840_samples_per_frame(frames, duration):
    # 29 frames: the released float formula gives one sample less. 106 = 2 x overlap + hop:
    # the released padding test skipped padding there and returned a single window. 10 s:
    # the released sample hop (480000 // 93 * 80) disagrees with the code hop (80 frames).
    codec = load_codec(RANDOM_CODEC)
    codes = torch.randint(0, 8192, (8, frames), generator=torch.Generator().manual_seed(frames))
    wav = codec.detokenize(codes, duration=duration, num_steps=1)
    assert wav.shape == (2, frames * 3840)
    assert torch.isfinite(wav).all() and wav[:, -3840:].abs().max() > 0


def test_same_seed_same_audio_and_bad_codes(codec):
    codes = torch.randint(0, 64, (8, 5), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(9)
    a = codec.detokenize(codes, duration=SHORT_WINDOW_SECONDS, num_steps=2)
    torch.manual_seed(9)
    assert torch.equal(a, codec.detokenize(codes, duration=SHORT_WINDOW_SECONDS, num_steps=2))
    torch.manual_seed(10)
    assert not torch.equal(a, codec.detokenize(codes, duration=SHORT_WINDOW_SECONDS, num_steps=2))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        codec.detokenize(torch.full((8, 5), 65))  # e.g. an EOS id left in the frames
    with pytest.raises(ValueError, match=r"\[8, T\]"):
        codec.detokenize(codes[None])
