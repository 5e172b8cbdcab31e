"""What the commands write equals what the library computes, and evaluation figures equal known answers.

The models are the tiny fixture checkpoints, named explicitly (the embedded defaults may change).
Audio files are 16-bit WAV, so command-vs-library comparisons allow two quantization steps and
check that another seed differs by far more than that (the comparison is not vacuous).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from heartcodec_lab.audio import load_audio, save_audio
from heartcodec_lab.codec import DetokenizeSettings, load_codec
from heartcodec_lab.encoders import build_encoder
from heartcodec_lab.mula import GenerationConfig, generate_tokens, load_mula
from heartcodec_lab.mula.generation import decode_tokens

PCM16_TOL = 2 / 32768


def test_reconstruct_command_writes_detokenize_of_encode(tmp_path, fixtures_dir, compose):
    from heartcodec_lab.cli.reconstruct import run

    source = tmp_path / "in.wav"
    t = torch.arange(int(1.3 * 44100)) / 44100
    save_audio(
        source, torch.stack([0.3 * torch.sin(2 * math.pi * 330 * t), 0.2 * torch.sin(2 * math.pi * 523 * t)]), 44100
    )
    codec_path = fixtures_dir / "heartcodec-tiny"
    target = tmp_path / "out.wav"
    overrides = [
        f"input={source}",
        f"output={target}",
        f"codec.path={codec_path}",
        "codec.device=cpu",
        "encoder=projection",
        "detokenize.num_steps=2",
        "detokenize.seed=5",
        "++allow_embedded=true",
    ]  # the untrained projection is embedded next to a checkpoint codec
    assert run(compose("reconstruct", *overrides)) == 0
    written, rate = sf.read(str(target), always_2d=True, dtype="float32")
    assert rate == 48000 and written.shape == (62400, 2)  # 1.3 s at 48 kHz

    codec = load_codec(codec_path)
    encoder = build_encoder("projection", None, codec)
    audio, sr = load_audio(source, channels="keep")
    tokens = encoder.tokenize(audio, sr)
    assert tokens.shape == (8, 17)  # int(1.3 * 12.5) + 1

    def library(seed: int) -> np.ndarray:
        torch.manual_seed(seed)
        with torch.inference_mode():
            wav = codec.detokenize(tokens, num_steps=2, guidance_scale=1.25, disable_progress=True)
        return wav[:, :62400].T.numpy()

    expected = library(5)
    assert np.abs(written - expected).max() <= PCM16_TOL
    assert np.abs(written - library(6)).max() > 100 * PCM16_TOL  # the seed matters: equality above is not vacuous


def test_generate_command_gives_the_library_tokens_and_audio(tmp_path, fixtures_dir, compose):
    """The command's run function (tags as text, lyrics from a file) vs generate_tokens + decode_tokens."""
    from heartcodec_lab.cli.generate import run

    lyrics = "[verse]\nthe sun creeps in, across the floor"
    (tmp_path / "song.lyrics").write_text(lyrics, encoding="utf-8")
    mula_path, codec_path = fixtures_dir / "heartmula-tiny", fixtures_dir / "heartcodec-tiny"
    out, tokens_file = tmp_path / "out.wav", tmp_path / "out.npy"
    run(
        compose(
            "generate",
            "tags='Pop, Piano'",
            f"lyrics={tmp_path / 'song.lyrics'}",
            f"output={out}",
            f"tokens_path={tokens_file}",
            f"mula.path={mula_path}",
            "mula.device=cpu",
            "mula.dtype=float32",
            f"codec.path={codec_path}",
            "codec.device=cpu",
            "max_audio_length_ms=720",
            "seed=1",
            "progress=false",
            "detokenize.num_steps=2",
        )
    )
    written_tokens = torch.from_numpy(np.load(tokens_file).astype(np.int64))

    bundle = load_mula(mula_path, device="cpu", dtype=torch.float32)
    cfg = GenerationConfig(max_audio_length_ms=720, temperature=1.0, topk=50, cfg_scale=1.5)
    expected = generate_tokens(bundle, "Pop, Piano", lyrics, cfg, progress=False, seed=1).tokens
    assert expected.shape[1] >= 3  # this seed does not stop at once
    assert torch.equal(written_tokens, expected)
    other = generate_tokens(bundle, "Pop, Piano", lyrics, cfg, progress=False, seed=2).tokens
    assert not torch.equal(other, expected)

    codec = load_codec(codec_path)
    torch.manual_seed(1)
    wav = decode_tokens(codec, expected, DetokenizeSettings(num_steps=2, seed=None))[:, : round(720 * 48)]
    written, rate = sf.read(str(out), always_2d=True, dtype="float32")
    assert rate == 48000 and written.shape == (wav.shape[1], 2)
    assert np.abs(written - wav.T.numpy()).max() <= PCM16_TOL


# -- evaluation: known pairs through the command -------------------------------------------------------------
SR = 48000


def _float_wav(path: Path, audio: torch.Tensor) -> None:
    save_audio(path, audio, SR, subtype="FLOAT")  # no quantization: the known answers hold to many digits


@pytest.fixture
def known_pairs(tmp_path):
    """Originals and estimates with known figures: identical, half the amplitude, a sine delayed by 30 degrees."""
    clips, estimates = tmp_path / "clips", tmp_path / "estimates"
    clips.mkdir()
    estimates.mkdir()
    g = torch.Generator().manual_seed(0)
    t = torch.arange(2 * SR) / SR
    noise = 0.1 * torch.randn(2, 2 * SR, generator=g)  # broadband: every mel band far above the log floor
    _float_wav(clips / "identical.wav", noise)
    _float_wav(estimates / "identical.wav", noise)
    _float_wav(clips / "gain.wav", noise)
    _float_wav(estimates / "gain.wav", 0.5 * noise)
    # 1 kHz sine, 2000 whole cycles; 4 samples of delay = 30 degrees of phase: SI-SDR = 10 log10(cot^2 30 deg)
    sine = 0.5 * torch.sin(2 * math.pi * 1000 * t).expand(2, -1)
    delayed = 0.5 * torch.sin(2 * math.pi * 1000 * (t - 4 / SR)).expand(2, -1)
    _float_wav(clips / "delay.wav", sine)
    _float_wav(estimates / "delay.wav", delayed)
    _float_wav(clips / "unmatched.wav", noise)  # no estimate: a failure record naming it
    return clips, estimates


def test_evaluate_command_gives_known_answers_for_known_pairs(tmp_path, known_pairs, monkeypatch):
    from heartcodec_lab.cli.evaluate import main

    clips, estimates = known_pairs
    out = tmp_path / "eval"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "heartcodec-evaluate",
            "mode=pairs",
            f"input={clips}",
            f"estimate={estimates}",
            f"output={out}",
            "estimate_name=known",
        ],
    )
    main()
    items = {r["clip"]: r["reconstruction"] for r in map(json.loads, (out / "items.jsonl").read_text().splitlines())}
    assert set(items) == {"identical.wav", "gain.wav", "delay.wav"}

    same = items["identical.wav"]
    assert same["mstft_distance"] == pytest.approx(0, abs=1e-6) and same["log_mel_l1"] == pytest.approx(0, abs=1e-6)
    assert same["si_sdr_db"] > 100 and same["loudness_diff_lu"] == pytest.approx(0, abs=1e-9)
    assert same["shimmer_ratio_5_7khz"] == pytest.approx(1, abs=1e-12)

    half = items["gain.wav"]
    assert half["loudness_diff_lu"] == pytest.approx(20 * math.log10(0.5), abs=1e-3)  # -6.02 LU
    assert half["shimmer_ratio_5_7khz"] == pytest.approx(0.25, rel=1e-6)  # energy scales with the gain squared
    assert half["si_sdr_db"] > 100  # scale-invariant
    assert half["log_mel_l1"] == pytest.approx(math.log(2), abs=5e-3)  # |ln 0.5| in every bin above the floor

    late = items["delay.wav"]
    assert late["si_sdr_db"] == pytest.approx(10 * math.log10(3), abs=0.02)  # cot^2(30 deg) = 3: 4.77 dB
    assert late["loudness_diff_lu"] == pytest.approx(0, abs=0.01)

    failures = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["clip"] for f in failures] == ["unmatched.wav"] and "unmatched.wav" in failures[0]["error"]
    summary = json.loads((out / "summary.json").read_text())
    block = summary["encoders"]["known"]
    assert block["clips"] == 3 and block["reconstruction"]["loudness_diff_lu"]["min"] == pytest.approx(
        -6.0206, abs=1e-3
    )
    assert summary["codec"]["loaded"] is False  # no model was needed
    assert "known" in (out / "report.md").read_text()
