"""The official vqv12 encoder without the 544 MB fixture: layout, loading, chunking, the embedded default.

Parity with the reference outputs is in ``test_encoder_official_parity.py`` (slow).
"""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torchaudio.functional import resample

from heartcodec_lab.encoders import AudioEncoder, build_encoder
from heartcodec_lab.encoders.official import (
    CheckpointError,
    OfficialEncoder,
    VQV12Encoder,
    embedded_tiny_config,
    load_official_encoder,
    load_residual_vq,
    released_config,
    stream_widths,
)
from heartcodec_lab.encoders.official.frontends import stereo_layout
from heartcodec_lab.encoders.official.loading import build_on_meta, expected_layout
from heartcodec_lab.encoders.official.query_transformer import apply_rotary

SHORT = 24 * 1920 + 240  # a 1.92 s chunk with its tail: cheap, same code path as 29.76 s


def layout_from_json(path):
    return {k: (tuple(shape), dtype) for k, (shape, dtype) in json.loads(path.read_text()).items()}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


@pytest.fixture(scope="module")
def rvq(fixtures_dir):
    return load_residual_vq(fixtures_dir / "encoder-tiny" / "rvq")


@pytest.fixture(scope="module")
def tiny(rvq):
    return load_official_encoder(None, quantizer=rvq)


# -- layout -------------------------------------------------------------------------------
def test_full_size_build_has_the_released_keys_and_shapes(fixtures_dir):
    model = build_on_meta(released_config())
    got = {k: (shape, dtype_name(dtype)) for k, (shape, dtype) in expected_layout(model).items()}
    assert got == layout_from_json(fixtures_dir / "encoder-tiny" / "full_size_encoder_keys.json")
    assert sum(p.numel() for p in model.parameters()) == 536_970_736
    assert stream_widths(released_config()) == {"acoustic": 2048, "semantic": 2048, "whisper": 1536, "wavlm": 1536}


def test_tiny_fixture_config_has_the_fixture_keys(fixtures_dir):
    folder = fixtures_dir / "encoder-tiny" / "encoder"
    model = build_on_meta(json.loads((folder / "encoder_config.json").read_text()))
    got = {k: (shape, dtype_name(dtype)) for k, (shape, dtype) in expected_layout(model).items()}
    assert got == layout_from_json(folder / "encoder_keys.json")


def test_fusion_widths_follow_the_sub_models():
    widths = stream_widths(embedded_tiny_config())
    model = build_on_meta(embedded_tiny_config())
    q = model.query
    assert q.cond_fusion_layer_acoustic.in_features == widths["acoustic"] == 32
    assert q.cond_fusion_layer_phone.in_features == widths["wavlm"] == 32
    assert q.feature_proj.in_features == 3 * 512 + widths["whisper"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"version": "vqv11"}, "version"),
        ({"chunk_samples": 480000}, "chunk_samples"),
        ({"feature_extractors": {"wavlm_config": {"num_hidden_layers": 8}}}, "WavLM needs at least 9"),
        ({"feature_extractors": {"muencoder_config": {"conformer_config": {"num_hidden_layers": 10}}}}, "conformer"),
        ({"query": {"head_dim": 96}}, "head_dim"),
    ],
)
def test_invalid_configs_are_refused(override, message):
    with pytest.raises(ValueError, match=message):
        build_on_meta(override)


# -- the embedded default -----------------------------------------------------------------
def test_embedded_default_encodes_audio_to_varying_tokens(tiny):
    from heartcodec_lab.data.synth import synth_music

    assert isinstance(tiny, AudioEncoder) and not tiny.training
    assert sum(p.numel() for p in tiny.encoder.parameters()) < 6_000_000
    out = tiny.encode(synth_music(10.0, seed=3), 48000)
    assert out.tokens.dtype == torch.int64 and out.tokens.shape == (8, 126)  # int(10 * 12.5) + 1
    assert out.features.dtype == torch.float32 and out.features.shape == (126, 512)
    assert torch.isfinite(out.features).all()
    assert 0 <= int(out.tokens.min()) and int(out.tokens.max()) < 64
    # A deterministic random encoder that still follows the audio (not one repeated code).
    # (The fixture RVQ was fitted to other features, so only a few distinct codes here.)
    assert len(out.tokens.T.unique(dim=0)) > 1
    assert out.features.std(0).mean() > 0.2 * out.features.std()
    # Plain tensors (not inference-mode ones): usable as distillation targets.
    assert not out.features.is_inference()
    student = torch.zeros_like(out.features, requires_grad=True)
    torch.nn.functional.mse_loss(student, out.features).backward()
    assert student.grad is not None


def test_embedded_default_is_deterministic(tiny):
    again = load_official_encoder(None, quantizer=tiny.quantizer)
    for (name, a), (_, b) in zip(tiny.encoder.state_dict().items(), again.encoder.state_dict().items()):
        assert torch.equal(a, b), name


def test_default_quantizer_comes_from_the_codec():
    from heartcodec_lab.codec import RANDOM_CODEC, load_codec

    codec = load_codec(RANDOM_CODEC)
    encoder = build_encoder("official", None, codec, batch_chunks=2)
    assert isinstance(encoder, OfficialEncoder) and encoder.batch_chunks == 2
    assert encoder.quantizer is codec.quantizer
    with pytest.raises(ValueError, match="unknown encoder kind"):
        build_encoder("vqv13", None, codec)


# -- feature extraction details -----------------------------------------------------------
def test_mono_chunk_is_computed_once_and_equals_the_stereo_computation(tiny, monkeypatch):
    fx = tiny.encoder.feature_extractors
    row = torch.randn(1, SHORT, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.inference_mode():
        both = stereo_layout_of(fx, row.repeat(2, 1))
    seen = []
    original = fx.mono_streams
    monkeypatch.setattr(fx, "mono_streams", lambda rows: seen.append(rows.shape[0]) or original(rows))
    with torch.inference_mode():
        once = fx(row.repeat(2, 1)[None])
    assert seen == [1]
    for name, a, b in zip(("acoustic", "semantic", "whisper", "wavlm"), once, both):
        assert a.shape == (1, 48, b.shape[-1]) and torch.allclose(a, b, atol=1e-5), name
        half = a.shape[-1] // 2
        assert torch.equal(a[..., :half], a[..., half:]), name  # left features, then the same right ones


def stereo_layout_of(fx, rows):
    return tuple(stereo_layout(s, 1) for s in fx.mono_streams(rows))


def test_batch_of_mixed_chunks_maps_channels_back_in_order(tiny, monkeypatch):
    fx = tiny.encoder.feature_extractors
    g = torch.Generator().manual_seed(2)
    stereo = torch.randn(2, SHORT, generator=g) * 0.1
    mono = (torch.randn(1, SHORT, generator=g) * 0.1).repeat(2, 1)
    seen = []
    original = fx.mono_streams
    monkeypatch.setattr(fx, "mono_streams", lambda rows: seen.append(rows.shape[0]) or original(rows))
    with torch.inference_mode():
        batched = fx(torch.stack([mono, stereo]))
        alone = [fx(mono[None]), fx(stereo[None])]
    assert seen == [3, 1, 2]
    for s, (a, b) in enumerate(zip(batched, zip(*alone))):
        # Batch size changes GEMM blocking, hence rounding: close, not equal.
        assert torch.allclose(a[0], b[0][0], atol=1e-4) and torch.allclose(a[1], b[1][0], atol=1e-4), s


def test_feature_extractors_refuse_misaligned_chunks(tiny):
    fx = tiny.encoder.feature_extractors
    with pytest.raises(ValueError, match="1920"):
        fx(torch.zeros(1, 2, 1920 * 3))  # no 240-sample tail
    with pytest.raises(ValueError, match="stereo"):
        fx(torch.zeros(1, 1, SHORT))
    with pytest.raises(ValueError, match="30 s"):
        fx(torch.zeros(1, 2, 1920 * 376 + 240))


def test_rotary_rotates_pairs_and_leaves_the_rest():
    x = torch.randn(1, 2, 5, 128)
    half = torch.rand(5, 32) * 6
    angles = torch.cat((half, half), -1)  # as RotaryEmbedding builds them
    y = apply_rotary(x, angles)
    assert torch.equal(y[..., 64:], x[..., 64:])
    # Each (i, i + 32) pair is a 2-D rotation: norms are kept.
    pair_norm = lambda t: t[..., :32] ** 2 + t[..., 32:64] ** 2  # noqa: E731
    assert torch.allclose(pair_norm(y), pair_norm(x), atol=1e-5)
    assert torch.allclose(apply_rotary(x, torch.zeros(5, 64)), x)


# -- chunking and the frame rule ----------------------------------------------------------
class FakeEncoder(torch.nn.Module):
    """Stands in for the vqv12 module: records input shapes, returns chunk index as features."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
        self.config = {"query": {"dim": 512}}
        self.shapes = []
        self.calls = 0

    def forward(self, chunks):
        self.shapes.append(tuple(chunks.shape))
        out = torch.arange(self.calls, self.calls + chunks.shape[0], dtype=torch.float32)
        self.calls += chunks.shape[0]
        return out.view(-1, 1, 1).expand(-1, 372, 512).clone()


@pytest.mark.parametrize(
    ("samples", "rate", "frames", "chunks"),
    [
        (714240, 24000, 372, 1),  # one full chunk: 372, not the rule's 373
        (714241, 24000, 373, 2),
        (240000, 24000, 126, 1),
        (960000, 24000, 501, 2),
        (1764000, 44100, 501, 2),
        (1, 24000, 1, 1),
    ],
)
def test_chunking_and_frame_count_follow_the_released_tokenizer(rvq, samples, rate, frames, chunks):
    fake = FakeEncoder()
    encoder = OfficialEncoder(fake, rvq, batch_chunks=2)
    out = encoder.encode(torch.zeros(2, samples), rate)
    assert out.tokens.shape == (8, frames) and out.features.shape == (frames, 512)
    # Every chunk seen once, with its 240-sample tail, at most batch_chunks at a time.
    assert sum(shape[0] for shape in fake.shapes) == chunks
    assert all(shape[1:] == (2, 714240 + 240) and shape[0] <= 2 for shape in fake.shapes)
    expected_chunk = torch.arange(frames) // 372
    assert torch.equal(out.features[:, 0], expected_chunk.float())  # chunk order kept
    assert encoder.num_frames(samples, rate) == frames == min(int(samples / rate * 12.5) + 1, 372 * chunks)


def test_prepare_matches_the_released_resampling_and_mono_rule(rvq):
    encoder = OfficialEncoder(FakeEncoder(), rvq)
    mono = torch.randn(44100)
    native = encoder.prepare(mono, 44100)
    assert native.shape == (2, 24000) and torch.equal(native[0], native[1])
    assert torch.equal(native[0], resample(mono[None], 44100, 24000)[0])
    with pytest.raises(ValueError, match="NaN"):
        encoder.prepare(torch.full((2, 100), math.nan), 24000)
    with pytest.raises(ValueError, match="samples > 0"):
        encoder.prepare(torch.zeros(2, 0), 24000)


def test_quantizer_width_must_match(fixtures_dir):
    config = json.loads((fixtures_dir / "encoder-tiny" / "rvq" / "rvq_config.json").read_text())
    from vector_quantize_pytorch import ResidualVQ

    narrow = ResidualVQ(**{**config, "dim": 256}).eval()
    with pytest.raises(ValueError, match="256-d"):
        OfficialEncoder(FakeEncoder(), narrow)
    with pytest.raises(CheckpointError, match="embedded-tiny: the encoder emits 512-d features .* takes 256-d"):
        load_official_encoder(None, quantizer=narrow)


# -- strict split loading -----------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory, tiny):
    """The embedded encoder written in the released layout."""
    folder = tmp_path_factory.mktemp("encoder")
    state = {"encoder." + k: v.contiguous() for k, v in tiny.encoder.state_dict().items()}
    save_file(state, str(folder / "encoder.safetensors"), metadata={"format": "pt"})
    (folder / "encoder_config.json").write_text(json.dumps(tiny.config))
    return folder, state


def write_variant(tmp_path, saved, state=None, config=None):
    folder, original = saved
    (tmp_path / "encoder_config.json").write_text(
        config if config is not None else (folder / "encoder_config.json").read_text()
    )
    save_file(state if state is not None else original, str(tmp_path / "encoder.safetensors"))
    return tmp_path


def test_split_checkpoint_round_trips(saved_tiny, rvq):
    folder, state = saved_tiny
    loaded = load_official_encoder(folder, quantizer=rvq)
    assert loaded.quantizer is rvq and not loaded.training
    got = loaded.encoder.state_dict()
    assert set(got) == {k[len("encoder.") :] for k in state}
    for key, value in state.items():
        assert torch.equal(got[key[len("encoder.") :]], value), key
    assert all(not p.requires_grad for p in loaded.parameters())
    described = loaded.describe()
    assert described["path"] == str(folder.resolve()) and described["encoder"] == "official-vqv12"
    assert described["sha256"] == hashlib.sha256((folder / "encoder.safetensors").read_bytes()).hexdigest()
    json.dumps(described)  # JSON-able, for dataset_info.json
    # The file path works as well as the folder.
    assert isinstance(load_official_encoder(folder / "encoder.safetensors", quantizer=rvq), OfficialEncoder)


def test_missing_key_is_named(tmp_path, saved_tiny, rvq):
    state = dict(saved_tiny[1])
    del state["encoder.query.cls_token"]
    with pytest.raises(CheckpointError, match=r"missing keys \['encoder\.query\.cls_token'\]"):
        load_official_encoder(write_variant(tmp_path, saved_tiny, state), quantizer=rvq)


def test_unexpected_key_is_named(tmp_path, saved_tiny, rvq):
    state = {**saved_tiny[1], "encoder.query.extra": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"unexpected keys \['encoder\.query\.extra'\]"):
        load_official_encoder(write_variant(tmp_path, saved_tiny, state), quantizer=rvq)


def test_foreign_prefix_is_refused(tmp_path, saved_tiny, rvq):
    state = {**saved_tiny[1], "flow_matching.vq_embed.project_in.weight": torch.zeros(8, 512)}
    with pytest.raises(CheckpointError, match="does not start with 'encoder.'"):
        load_official_encoder(write_variant(tmp_path, saved_tiny, state), quantizer=rvq)


def test_wrong_shape_and_dtype_are_named(tmp_path, saved_tiny, rvq):
    key = "encoder.query.feature_proj.weight"
    state = {**saved_tiny[1], key: torch.zeros(512, 7)}
    with pytest.raises(CheckpointError, match=r"feature_proj\.weight has shape \[512, 7\]"):
        load_official_encoder(write_variant(tmp_path, saved_tiny, state), quantizer=rvq)
    state = {**saved_tiny[1], key: saved_tiny[1][key].double()}
    with pytest.raises(CheckpointError, match=r"feature_proj\.weight has dtype F64"):
        load_official_encoder(write_variant(tmp_path, saved_tiny, state), quantizer=rvq)


def test_bad_config_and_missing_files_name_the_file(tmp_path, saved_tiny, rvq):
    folder = write_variant(tmp_path, saved_tiny, config="{not json")
    with pytest.raises(CheckpointError, match="encoder_config.json: cannot read JSON"):
        load_official_encoder(folder, quantizer=rvq)
    (folder / "encoder_config.json").write_text(json.dumps({"version": "vqv9"}))
    with pytest.raises(CheckpointError, match="encoder_config.json: invalid encoder config"):
        load_official_encoder(folder, quantizer=rvq)
    (folder / "encoder.safetensors").unlink()
    with pytest.raises(CheckpointError, match="encoder.safetensors: missing"):
        load_official_encoder(folder, quantizer=rvq)
    with pytest.raises(CheckpointError, match="folder not found"):
        load_official_encoder(tmp_path / "nowhere", quantizer=rvq)
    (folder / "encoder.safetensors").write_bytes(b"\x00" * 16)
    (folder / "encoder_config.json").write_text((saved_tiny[0] / "encoder_config.json").read_text())
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_official_encoder(folder, quantizer=rvq)


def test_rvq_loads_both_initted_spellings(tmp_path, fixtures_dir, rvq):
    source = fixtures_dir / "encoder-tiny" / "rvq"
    with safe_open(str(source / "rvq.safetensors"), "pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    initted = [k for k in state if k.endswith("initted")]
    assert len(initted) == 8 and all(state[k].shape == () for k in initted)
    state.update({k: torch.tensor([1.0]) for k in initted})  # the published decoder's float [1]
    save_file(state, str(tmp_path / "rvq.safetensors"))
    (tmp_path / "rvq_config.json").write_text((source / "rvq_config.json").read_text())
    old = load_residual_vq(tmp_path)
    assert not old.training
    features = torch.randn(1, 20, 512)
    assert torch.equal(old(features)[1], rvq(features)[1])
    del state["flow_matching.vq_embed.project_in.bias"]
    save_file(state, str(tmp_path / "rvq.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys \['flow_matching\.vq_embed\.project_in\.bias'\]"):
        load_residual_vq(tmp_path)


def test_module_is_float32_eval_without_gradients(tiny):
    assert isinstance(tiny.encoder, VQV12Encoder)
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in tiny.encoder.parameters())
    assert not any(m.training for m in tiny.encoder.modules())
    parent = torch.nn.ModuleDict({"teacher": tiny.encoder}).train()  # as a LightningModule would
    assert parent.training and not any(m.training for m in tiny.encoder.modules())
