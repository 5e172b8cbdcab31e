"""The embedded default is the shipped miniature codec and its true encoder; the random tiny codec stays reachable.

Music is judged against independent answers, with loose thresholds that hold for any miniature
that learned rhythm (the shipped weights may be retrained): reconstructions of a held-out piece
follow its onsets far better than the random tiny codec's, and tokens are deterministic.
"""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch
from conftest import compose_config

from heartcodec_lab.audio import save_audio
from heartcodec_lab.cli.reconstruct import run as reconstruct
from heartcodec_lab.codec import RANDOM_CODEC, CheckpointError, build_random_codec, load_codec
from heartcodec_lab.codec.miniature import shipped_codec_dir
from heartcodec_lab.encoders import build_encoder
from heartcodec_lab.evaluate.metrics.music import onset_corr
from heartcodec_lab.minicodec.data import held_out_pieces
from heartcodec_lab.provenance import MINIATURE, RANDOM, check_components, codec_component, encoder_component

SR = 48000


@pytest.fixture(scope="module")
def mini():
    return load_codec()


def test_default_codec_is_the_shipped_miniature_frozen_in_float32(mini):
    shipped = json.loads((shipped_codec_dir() / "config.json").read_text())
    assert mini.config.to_dict()["init_channel"] == shipped["init_channel"]
    assert mini.describe()["kind"] == "embedded-minicodec" and set(mini.describe()["sha256"]) == {"model.safetensors"}
    assert not mini.training and all(not p.requires_grad and p.dtype == torch.float32 for p in mini.parameters())
    assert load_codec("embedded:minicodec").describe() == mini.describe()


def test_random_tiny_codec_is_reachable_by_its_reserved_name():
    random_codec = load_codec(RANDOM_CODEC)
    assert random_codec.describe()["kind"] == "embedded-tiny"
    built = build_random_codec()
    for (name, a), (_, b) in zip(random_codec.state_dict().items(), built.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(
        CheckpointError,
        match=r"^codec.path=embedded:tiny: unknown built-in codec; known: "
        r"embedded:minicodec, embedded:random",
    ):
        load_codec("embedded:tiny")


def test_provenance_names_which_embedded_model():
    default = check_components([codec_component(None), encoder_component("encoder", "encoder.path", "minicodec", None)])
    assert default.models == {"codec": MINIATURE, "encoder": MINIATURE}
    assert "shipped miniature" in default.headline() and "random" not in default.headline()
    pinned = check_components(
        [codec_component(RANDOM_CODEC), encoder_component("encoder", "encoder.path", "official", None)]
    )
    assert pinned.embedded == ["codec", "encoder"] and pinned.models == {"codec": RANDOM, "encoder": RANDOM}
    assert "random weights" in pinned.headline()
    with pytest.raises(CheckpointError, match="unknown built-in codec"):
        codec_component("embedded:nope")


def test_minicodec_encoder_refuses_another_codec_unless_forced():
    random_codec = load_codec(RANDOM_CODEC)
    with pytest.raises(
        CheckpointError,
        match=r"true encoder of the miniature codec .* codec here is embedded-tiny; "
        r"set encoder=official",
    ):
        build_encoder("minicodec", None, random_codec)
    with pytest.warns(UserWarning, match="true encoder of the miniature codec"):
        forced = build_encoder("minicodec", None, random_codec, allow_codec_mismatch=True)
    assert forced.tokenize(torch.zeros(2, SR), SR).shape == (8, 13)


def test_released_codec_with_the_default_encoder_is_one_line_naming_the_encoder(tmp_path, capsys, fixtures_dir):
    save_audio(tmp_path / "in.wav", torch.zeros(1, 4800), SR)
    real = fixtures_dir / "heartcodec-tiny"
    io = [f"input={tmp_path / 'in.wav'}", f"output={tmp_path / 'o.wav'}", f"codec.path={real}"]
    assert reconstruct(compose_config("reconstruct", *io)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "set encoder=official encoder.path=<HeartCodec-oss-encoder folder>" in err
    # forcing the mix past provenance still meets the encoder's own refusal (its tokens fit the miniature only)
    assert reconstruct(compose_config("reconstruct", *io, "allow_embedded=true")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "true encoder of the miniature codec" in err
    assert not (tmp_path / "o.wav").exists()


def test_default_reconstruction_follows_the_onsets_of_a_held_out_piece(tmp_path):
    piece = held_out_pieces(1, 3.0)[0]
    save_audio(tmp_path / "piece.wav", piece, SR)

    def onsets(*overrides: str) -> float:
        out = tmp_path / f"rec{len(overrides)}.wav"
        assert (
            reconstruct(compose_config("reconstruct", f"input={tmp_path / 'piece.wav'}", f"output={out}", *overrides))
            == 0
        )
        audio, rate = sf.read(str(out), always_2d=True, dtype="float32")
        return onset_corr(piece, torch.from_numpy(audio.T), rate)

    default = onsets()  # no option at all: the miniature, its true encoder, the default decoder settings
    # the random tiny codec with an untrained projection (the cheapest random pair; one Euler step is enough for noise)
    random = onsets(f"codec.path={RANDOM_CODEC}", "encoder=projection", "detokenize.num_steps=1")
    assert default > 0.5 and default > random + 0.3, (default, random)


def test_default_tokens_are_deterministic_and_decode_to_well_formed_audio(mini):
    piece = held_out_pieces(2, 2.0)[1]
    encoder = build_encoder("minicodec", None, mini)
    tokens = encoder.tokenize(piece, SR)
    assert torch.equal(tokens, build_encoder("minicodec", None, load_codec()).tokenize(piece, SR))
    assert tokens.shape == (8, encoder.num_frames(piece.shape[-1], SR)) and tokens.dtype == torch.int64
    assert 0 <= tokens.min() and tokens.max() < mini.config.codebook_size
    assert len(set(tokens[0].tolist())) > tokens.shape[-1] // 4  # the first level follows the music, not one code
    decode = lambda: (torch.manual_seed(3), mini.detokenize(tokens, num_steps=2))[1]  # noqa: E731
    audio = decode()
    assert audio.shape == (2, tokens.shape[-1] * 3840) and torch.isfinite(audio).all()
    assert torch.equal(audio, decode())
    assert 1e-3 < audio.pow(2).mean().sqrt() < 1.0


def test_distill_by_default_trains_against_the_miniature_and_its_true_encoder(tmp_path):
    from heartcodec_lab.training.run import compose_config, train

    cfg = compose_config(
        [
            "+experiment=distill",
            "debug=fast",
            "trainer.max_steps=1",
            f"paths.output_dir={tmp_path}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "callbacks.reconstruction_preview.num_clips=0",
        ]
    )
    summary = train(cfg)  # no codec passed: the run loads codec.path=null itself
    assert summary["global_step"] == 1 and "val/agree_q0_pct" in summary["metrics"]
    run = json.loads((tmp_path / "summary.json").read_text())
    assert run["provenance"]["models"] == {"codec": MINIATURE, "teacher": MINIATURE}
    exported = json.loads((tmp_path / "projection" / "projection_config.json").read_text())
    assert exported["codec"]["kind"] == "embedded-minicodec"
