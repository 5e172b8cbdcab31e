"""Projection modules, ProjectionEncoder and the projection checkpoint format."""

from __future__ import annotations

import json
import math
import warnings
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file
from torch import nn
from vector_quantize_pytorch import ResidualVQ

from heartcodec_lab.codec import RANDOM_CODEC, load_codec
from heartcodec_lab.encoders import build_encoder, num_token_frames
from heartcodec_lab.encoders.official import OfficialEncoder
from heartcodec_lab.encoders.projection import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    Conv1dProjection,
    LinearProjection,
    ProjectionCheckpointError,
    ProjectionEncoder,
    build_projection,
    load_projection,
    load_projection_encoder,
    pair_frames,
    save_projection,
)

SR = 48000
HOP = 1920


@pytest.fixture(scope="module")
def codec():
    return load_codec(RANDOM_CODEC)


class FastScalarModel(nn.Module):
    """Cheap stand-in for ScalarModel.encode: [B, 1, S] -> [B, 128, ceil(S / 1920)] from 16 sub-block means per frame."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.linear = nn.Linear(16, 128)

    def encode(self, wav):
        pad = -wav.shape[-1] % HOP
        frames = nn.functional.pad(wav, (0, pad)).reshape(wav.shape[0], -1, 16, HOP // 16).mean(-1)
        return torch.tanh(10 * self.linear(frames)).transpose(1, 2)


class FastCodec(nn.Module):
    """Codec stand-in with the real interface sizes but a cheap ScalarModel and a small RVQ (64 codes),
    for the chunking, frame-count and gradient tests (the embedded codec's 8 x 8192 RVQ costs seconds per chunk)."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(dim=512, latent_hidden_dim=128, codebook_size=64)
        self.scalar_model = FastScalarModel()
        torch.manual_seed(12)
        self.rvq = ResidualVQ(dim=512, codebook_size=64, codebook_dim=8, num_quantizers=8).eval()

    @property
    def quantizer(self):
        return self.rvq

    def describe(self):
        return {"kind": "fast-test-codec"}


@pytest.fixture(scope="module")
def fast_codec():
    return FastCodec()


# ------------------------------------------------------------------------------------ modules


def test_pair_frames_layout():
    lat = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)  # [B, C, T25] with odd T25
    paired = pair_frames(lat)
    assert paired.shape == (2, 2, 6)
    # output frame k = (all channels of frame 2k, then all channels of frame 2k+1); frame 4 dropped
    torch.testing.assert_close(paired[1, 1], torch.cat([lat[1, :, 2], lat[1, :, 3]]))


@pytest.mark.parametrize("kind", ["linear", "conv1d"])
@pytest.mark.parametrize("t25", [2, 7, 8, 31, 744])
def test_projection_shapes_even_and_odd(kind, t25):
    proj = build_projection(kind, hidden_dim=32, out_dim=48)
    out = proj(torch.rand(3, 256, t25) * 2 - 1)
    assert out.shape == (3, t25 // 2, 48) and out.dtype == torch.float32
    assert proj.num_frames(t25) == t25 // 2


def test_linear_projection_sees_exactly_its_frame_pair():
    proj = LinearProjection(hidden_dim=32)
    lat = torch.rand(1, 256, 12)
    bumped = lat.clone()
    bumped[0, 200, 5] += 1.0  # latent frame 5 belongs to output frame 2
    changed = (proj(bumped) - proj(lat)).abs().amax(-1)[0]
    assert changed[2] > 0 and changed[torch.arange(6) != 2].max() == 0


def test_conv1d_projection_is_local_in_time():
    # receptive field: in-conv and 3 blocks of kernel 5 -> +-8 latent frames, then the pair
    proj = Conv1dProjection(hidden_dim=32, num_layers=3, kernel_size=5)
    lat = torch.rand(1, 256, 60)
    bumped = lat.clone()
    bumped[0, 3, 30] += 1.0
    changed = (proj(bumped) - proj(lat)).abs().amax(-1)[0] > 0
    assert changed[15] and changed.nonzero().flatten().tolist() == list(range(11, 20))


def test_projection_bad_inputs():
    proj = LinearProjection()
    with pytest.raises(ValueError, match=r"\[B, 256, T25\]"):
        proj(torch.zeros(1, 128, 10))
    with pytest.raises(ValueError, match="at least 2"):
        proj(torch.zeros(1, 256, 1))
    with pytest.raises(ValueError, match="unknown projection kind"):
        build_projection("transformer")
    with pytest.raises(ValueError, match="bad arguments"):
        build_projection("linear", kernel_size=3)
    with pytest.raises(ValueError, match="odd"):
        build_projection("conv1d", kernel_size=4)


@pytest.mark.parametrize("kind", ["linear", "conv1d"])
def test_projection_config_is_json_and_rebuilds(kind):
    proj = build_projection(kind, hidden_dim=64, num_layers=2)
    config = json.loads(json.dumps(proj.config))
    assert config["hidden_dim"] == 64 and config["latent_dim"] == 128 and config["out_dim"] == 512
    again = build_projection(kind, **config)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in proj.state_dict().items()}


# ------------------------------------------------------------------------------------ encoder


@pytest.mark.parametrize("seconds", [0.3, 1.0, 10.0, 12.34, 29.76, 29.8, 40.0, 61.0, 123.45])
def test_frame_count_matches_official_encoder(seconds, fast_codec):
    enc = load_projection_encoder(None, fast_codec)
    n48, n24 = round(seconds * SR), round(seconds * 24000)
    official = num_token_frames(
        n24,
        OfficialEncoder.native_sample_rate,
        OfficialEncoder.frames_per_chunk,
        OfficialEncoder.chunk_samples / OfficialEncoder.native_sample_rate,
    )
    assert enc.num_frames(n48, SR) == official
    released_rule = int(n24 / 24000 * 12.5) + 1  # capped by what the zero-padded chunks give
    assert official == min(released_rule, math.ceil(round(seconds / 29.76, 9)) * 372)


@pytest.mark.parametrize("seconds", [0.3, 29.76, 40.0])
def test_encode_length_follows_frame_rule(seconds, fast_codec):
    enc = load_projection_encoder(None, fast_codec, hidden_dim=32, num_layers=1)
    audio = 0.1 * torch.randn(2, round(seconds * SR))
    out = enc.encode(audio, SR)
    assert out.tokens.shape == (8, enc.num_frames(audio.shape[-1], SR))
    assert out.features.shape == (out.tokens.shape[1], 512)


def test_latents_keep_left_then_right_and_encode_chunks_shape(fast_codec):
    enc = load_projection_encoder(None, fast_codec, hidden_dim=32, num_layers=1)
    chunks = 0.1 * torch.randn(2, 2, enc.chunk_samples)
    lat = enc.latents(chunks)
    assert lat.shape == (2, 256, 744)
    with torch.no_grad():
        torch.testing.assert_close(lat[1, :128], fast_codec.scalar_model.encode(chunks[1:2, :1])[0])
        torch.testing.assert_close(lat[1, 128:], fast_codec.scalar_model.encode(chunks[1:2, 1:])[0])
    assert enc.encode_chunks(chunks).shape == (2, 372, 512)
    with pytest.raises(ValueError, match="stereo"):
        enc.latents(chunks[:, :1])


def test_encode_independent_of_batch_chunks_and_tokens_are_nearest_codes(fast_codec):
    audio = 0.1 * torch.randn(1, round(31.0 * SR))  # mono in, 2 chunks
    one = load_projection_encoder(None, fast_codec, batch_chunks=1, hidden_dim=32, num_layers=1).encode(audio, SR)
    two = load_projection_encoder(None, fast_codec, batch_chunks=2, hidden_dim=32, num_layers=1).encode(audio, SR)
    assert torch.equal(one.tokens, two.tokens) and torch.equal(one.features, two.features)
    _, codes = fast_codec.quantizer(one.features[None])[:2]
    assert torch.equal(one.tokens, codes[0].T)


def test_train_mode_keeps_codec_frozen_and_gradients_reach_projection_only(fast_codec):
    enc = load_projection_encoder(None, fast_codec, hidden_dim=32, num_layers=1).train()
    assert enc.projection.training and not enc.codec.training and not enc.quantizer.training
    feats = enc.encode_chunks(0.1 * torch.randn(1, 2, 20 * HOP))
    feats.square().mean().backward()
    assert all(p.grad is not None for p in enc.projection.parameters())
    assert all(p.grad is None and not p.requires_grad for p in enc.codec.parameters())


def test_default_projection_is_deterministic_and_leaves_global_rng(fast_codec):
    state = torch.random.get_rng_state()
    a = load_projection_encoder(None, fast_codec).projection.state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    b = build_encoder("projection", None, fast_codec).projection.state_dict()
    assert isinstance(load_projection_encoder(None, fast_codec).projection, Conv1dProjection)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = load_projection_encoder(None, fast_codec, seed=1).projection.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_encode_synthetic_music_with_embedded_codec(codec):
    from heartcodec_lab.data.synth import synth_music

    enc = build_encoder("projection", None, codec, batch_chunks=1)
    audio = synth_music(3.0, seed=1)
    out = enc.encode(audio, SR)
    n = enc.num_frames(audio.shape[-1], SR)
    assert n == 38 and out.tokens.shape == (8, n) and out.tokens.dtype == torch.int64
    assert 0 <= out.tokens.min() and out.tokens.max() < codec.config.codebook_size
    assert out.features.shape == (n, 512) and torch.isfinite(out.features).all()
    assert len(out.tokens[0].unique()) > 1  # the untrained projection still follows the music
    info = enc.describe()
    assert info["encoder"] == "projection-conv1d" and info["codec"]["kind"] == "embedded-tiny"
    json.dumps(info)


# ------------------------------------------------------------------------------------ export


def test_export_round_trip_is_bit_identical(tmp_path, codec):
    proj = build_projection("conv1d", hidden_dim=32, num_layers=2)
    save_projection(tmp_path / "ckpt", proj, codec.describe(), extra={"step": 7})
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {CONFIG_NAME, WEIGHTS_NAME}
    loaded, config = load_projection(tmp_path / "ckpt")
    assert type(loaded) is Conv1dProjection and not loaded.training
    assert config["kind"] == "conv1d" and config["kwargs"] == proj.config and config["extra"] == {"step": 7}
    assert config["codec"]["kind"] == "embedded-tiny" and config["format_version"] == 1
    assert config["toolkit_version"]
    original, restored = proj.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys() and all(torch.equal(original[k], restored[k]) for k in original)
    lat = torch.rand(1, 256, 10)
    assert torch.equal(proj.eval()(lat), loaded(lat))
    # a file path inside the folder works too
    assert load_projection(tmp_path / "ckpt" / CONFIG_NAME)[1] == config


def test_load_projection_encoder_checks_codec(tmp_path, codec):
    save_projection(tmp_path / "same", build_projection("linear"), codec.describe())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = load_projection_encoder(tmp_path / "same", codec, batch_chunks=2)
    assert isinstance(enc, ProjectionEncoder) and enc.batch_chunks == 2 and enc.encoder_id == "projection-linear"
    assert enc.describe()["checkpoint"]["path"] == str(tmp_path / "same")

    save_projection(tmp_path / "other", build_projection("linear"), {"kind": "released", "sha256": {"m": "abc"}})
    # another codec than the one it was trained against: refused, naming the config and both codecs
    with pytest.raises(
        ProjectionCheckpointError,
        match=r"other/projection_config.json: .*trained against codec released \(m sha256 abc\) "
        r"but would run with codec embedded-tiny seed 20260123.*allow_codec_mismatch=true",
    ):
        load_projection_encoder(tmp_path / "other", codec)
    with pytest.warns(UserWarning, match="trained against codec"):
        forced = load_projection_encoder(tmp_path / "other", codec, allow_codec_mismatch=True)
    assert isinstance(forced, ProjectionEncoder)

    save_projection(tmp_path / "narrow", build_projection("linear", out_dim=64), codec.describe())
    with pytest.raises(ProjectionCheckpointError, match="out_dim 64 != codec dim 512"):
        load_projection_encoder(tmp_path / "narrow", codec)
    with pytest.raises(ValueError, match="only apply to path=None"):
        load_projection_encoder(tmp_path / "same", codec, hidden_dim=3)


def _edit_config(folder, **changes):
    path = folder / CONFIG_NAME
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _rewrite_weights(folder, edit):
    weights = folder / WEIGHTS_NAME
    state = load_file(str(weights))
    edit(state)
    save_file(state, str(weights))
    _edit_config(folder, weights_sha256=None)


CORRUPTIONS = {
    "no config": (lambda d: (d / CONFIG_NAME).unlink(), "missing"),
    "no weights": (lambda d: (d / WEIGHTS_NAME).unlink(), "missing"),
    "bad json": (lambda d: (d / CONFIG_NAME).write_text("{not json"), "not valid JSON"),
    "format version": (lambda d: _edit_config(d, format_version=99), "format_version 99"),
    "unknown kind": (lambda d: _edit_config(d, kind="rnn"), "unknown projection kind 'rnn'"),
    "bad kwargs": (lambda d: _edit_config(d, kwargs={"hidden_dim": 8, "colour": 1}), "bad arguments"),
    "architecture": (lambda d: _edit_config(d, kwargs={"hidden_dim": 16, "num_layers": 2}), "has shape"),
    "changed weights": (
        lambda d: (d / WEIGHTS_NAME).write_bytes((d / WEIGHTS_NAME).read_bytes()[:-4] + b"\0\0\0\0"),
        "sha256 differs",
    ),
    "not safetensors": (
        lambda d: ((d / WEIGHTS_NAME).write_bytes(b"PK\x03\x04 pickle zip"), _edit_config(d, weights_sha256=None)),
        "not a readable safetensors",
    ),
    "extra tensor": (
        lambda d: _rewrite_weights(d, lambda s: s.update(extra=torch.zeros(1))),
        "unexpected keys \\['extra'\\]",
    ),
    "missing tensor": (lambda d: _rewrite_weights(d, lambda s: s.pop("mlp.0.bias")), "missing keys \\['mlp.0.bias'\\]"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_strict_loading_errors_name_the_file(tmp_path, corruption):
    folder = tmp_path / "ckpt"
    save_projection(folder, build_projection("linear", hidden_dim=32, num_layers=2), {"kind": "x"})
    corrupt, message = CORRUPTIONS[corruption]
    corrupt(folder)
    with pytest.raises(ProjectionCheckpointError, match=message) as err:
        load_projection(folder)
    assert str(folder) in str(err.value)


def test_missing_folder_error(tmp_path):
    with pytest.raises(ProjectionCheckpointError, match="no such projection checkpoint folder"):
        load_projection(tmp_path / "nowhere")


def test_encoder_config_file():
    from importlib.resources import files

    cfg = OmegaConf.load(str(files("heartcodec_lab.conf") / "encoder" / "projection.yaml"))
    assert cfg == {"kind": "projection", "path": None, "batch_chunks": 1, "allow_codec_mismatch": False}
