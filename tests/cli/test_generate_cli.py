"""heartcodec-generate end to end on the embedded tiny defaults (noise, but every stage runs)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from heartcodec_lab.cli.generate import quote_free_text, run


@pytest.fixture
def generate_cfg(compose):
    return lambda *overrides: compose("generate", "progress=false", "detokenize.num_steps=2", *overrides)


def test_config_composes_with_defaults(generate_cfg):
    cfg = generate_cfg()
    assert cfg.mula.path is None and cfg.codec.path is None
    assert cfg.mula.dtype == "auto" and cfg.codec.device == "auto"
    assert cfg.encoder.kind == "minicodec" and cfg.lazy_load is True


def test_generate_then_continue(tmp_path, generate_cfg):
    lyrics = tmp_path / "song.lyrics"
    lyrics.write_text("[verse]\nla la la\n[chorus]\noh oh", encoding="utf-8")
    out, tokens = tmp_path / "out.wav", tmp_path / "out.npy"
    run(
        generate_cfg(
            "tags='pop, piano'",
            f"lyrics={lyrics}",
            f"output={out}",
            f"tokens_path={tokens}",
            "max_audio_length_ms=1000",
            "seed=0",
        )
    )
    wav, sr = sf.read(out, always_2d=True)
    assert sr == 48000 and wav.shape == (48000, 2)  # 1 s requested: 13 frames generated, cut to 1 s
    assert np.isfinite(wav).all() and np.abs(wav).max() > 0
    codes = np.load(tokens)
    assert codes.shape == (8, 13) and codes.dtype == np.int16 and codes.max() < 8192

    more, more_tokens = tmp_path / "more.wav", tmp_path / "more.npy"
    run(
        generate_cfg(
            "tags=pop",
            "lyrics=''",
            f"output={more}",
            f"tokens_path={more_tokens}",
            f"input={tokens}",
            "max_audio_length_ms=400",
            "seed=1",
            "cfg_scale=1.0",
        )
    )
    wav, sr = sf.read(more, always_2d=True)
    assert sr == 48000 and wav.shape == (13 * 3840 + 400 * 48, 2)  # history + 400 ms, decoded as one piece
    continued = np.load(more_tokens)
    assert continued.shape == (8, 18) and np.array_equal(continued[:, :13], codes)


def test_missing_continuation_source_is_named(tmp_path, generate_cfg):
    with pytest.raises(FileNotFoundError, match="nothing.wav"):
        run(generate_cfg(f"input={tmp_path / 'nothing.wav'}", f"output={tmp_path / 'x.wav'}"))
    assert not (tmp_path / "x.wav").exists()


def test_free_text_arguments_reach_hydra_verbatim():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    args = ["tags=pop, Piano", "lyrics=[verse]\nit's here", "lyrics='kept'", "seed=3"]
    values = [parser.parse_override(a).value() for a in quote_free_text(args)]
    assert values == ["pop, Piano", "[verse]\nit's here", "kept", 3]
