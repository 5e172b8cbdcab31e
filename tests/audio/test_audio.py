"""heartcodec_lab.audio: formats, channel policy, resampling and clear errors for bad files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from heartcodec_lab.audio import AudioError, audio_info, load_audio, resample, save_audio, to_stereo


def tone(seconds=0.5, sr=48000, freq=440.0, channels=2):
    t = torch.arange(int(seconds * sr)) / sr
    x = 0.5 * torch.sin(2 * math.pi * freq * t)
    return torch.stack([x * (1 - 0.3 * c) for c in range(channels)])


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg", ".opus", ".mp3"])
def test_formats_round_trip(tmp_path, ext):
    sr = 48000
    x = tone(sr=sr)
    path = save_audio(tmp_path / f"t{ext}", x, sr)
    y, got_sr = load_audio(path, channels="keep")
    assert got_sr == sr and y.dtype == torch.float32 and y.shape[0] == 2
    # Lossy codecs add encoder delay/padding; compare loudness, and exact content for lossless.
    assert abs(y.shape[1] - x.shape[1]) < 0.1 * sr
    if ext in (".wav", ".flac"):
        assert torch.allclose(y, x, atol=1e-4)
    else:
        assert abs(float(y.pow(2).mean().sqrt()) - float(x.pow(2).mean().sqrt())) < 0.05


def test_mono_is_duplicated_and_resampled(tmp_path):
    path = save_audio(tmp_path / "m.wav", tone(channels=1, sr=44100), 44100)
    y, sr = load_audio(path, sample_rate=48000)
    assert sr == 48000 and y.shape == (2, 24000)
    assert torch.equal(y[0], y[1])
    assert audio_info(path) == (44100, 1, 22050)


def test_more_than_two_channels_downmixed_with_warning(tmp_path):
    x = torch.zeros(6, 4800)
    x[0] = 0.5  # front left only
    path = save_audio(tmp_path / "surround.wav", x, 48000)
    with pytest.warns(UserWarning, match="6 channels downmixed"):
        y, _ = load_audio(path)
    assert y.shape == (2, 4800)
    assert float(y[0].mean()) > 0.1 and float(y[1].abs().max()) == 0.0


def test_to_stereo_rejects_bad_shape():
    with pytest.raises(ValueError, match="channels, samples"):
        to_stereo(torch.zeros(10))


def test_resample_known_length_and_identity():
    x = tone(seconds=1.0, sr=44100)
    y = resample(x, 44100, 48000)
    assert y.shape == (2, 48000)
    assert resample(x, 44100, 44100) is x
    # A 440 Hz tone stays at 440 Hz: its spectral peak does not move.
    peak = torch.fft.rfft(y[0]).abs().argmax().item()
    assert abs(peak - 440) <= 1


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.flac"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.flac: empty file"):
        load_audio(p)


def test_not_audio(tmp_path):
    p = tmp_path / "notes.mp3"
    p.write_text("this is not audio at all\n" * 50)
    with pytest.raises(AudioError, match=r"notes\.mp3: unreadable audio"):
        load_audio(p)


def test_truncated_file(tmp_path):
    good = save_audio(tmp_path / "good.flac", tone(seconds=2.0), 48000)
    bad = tmp_path / "cut.flac"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(AudioError, match=r"cut\.flac"):
        load_audio(bad)


def test_non_finite_samples(tmp_path):
    data = np.zeros((4800, 2), dtype=np.float32)
    data[100, 1] = np.nan
    data[200, 0] = np.inf
    p = tmp_path / "nan.wav"
    sf.write(p, data, 48000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: contains 2 non-finite"):
        load_audio(p)


def test_too_short_and_zero_samples(tmp_path):
    p = save_audio(tmp_path / "short.wav", tone(seconds=0.01), 48000)
    with pytest.raises(AudioError, match=r"short\.wav: too short: 0\.010 s < 0\.080 s"):
        load_audio(p, min_seconds=0.08)
    z = tmp_path / "zero.wav"
    sf.write(z, np.zeros((0, 2), dtype=np.float32), 48000)
    with pytest.raises(AudioError, match=r"zero\.wav: contains no samples"):
        load_audio(z)


def test_m4a_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    import heartcodec_lab.audio.io as io

    p = tmp_path / "song.m4a"
    p.write_bytes(b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 100)
    monkeypatch.setattr(io.shutil, "which", lambda name: None)
    with pytest.raises(AudioError, match=r"song\.m4a: m4a/AAC needs ffmpeg"):
        load_audio(p)


def test_save_is_atomic_on_failure(tmp_path):
    with pytest.raises(RuntimeError):  # libsndfile refuses a sample rate of 0
        save_audio(tmp_path / "x.wav", torch.zeros(2, 100), 0)
    assert list(tmp_path.iterdir()) == []
