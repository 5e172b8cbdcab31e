"""Loading: both released layouts, legacy spellings, strict failures naming key and file, config, default codec."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from heartcodec_lab.codec import (
    RANDOM_CODEC,
    CheckpointError,
    ConfigError,
    HeartCodecConfig,
    build_random_codec,
    load_codec,
)

RVQ_FLAG = "flow_matching.vq_embed.layers.0._codebook.initted"
SOME_KEY = "scalar_model.decoder.7.bias"


@pytest.fixture(scope="module")
def reference_state(fixtures_dir):
    return load_file(fixtures_dir / "heartcodec-tiny" / "model.safetensors")


def _plain_copy(fixtures_dir, tmp_path, state=None):
    """A single-file checkpoint folder in tmp_path, optionally with an edited state dict."""
    folder = tmp_path / "codec"
    folder.mkdir()
    shutil.copy(fixtures_dir / "heartcodec-tiny" / "config.json", folder / "config.json")
    if state is None:
        shutil.copy(fixtures_dir / "heartcodec-tiny" / "model.safetensors", folder / "model.safetensors")
    else:
        save_file(state, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize("folder", ["heartcodec-tiny", "ckpt-tiny/HeartCodec-oss"])
def test_both_layouts_load_the_reference_weights(fixtures_dir, reference_state, folder):
    codec = load_codec(fixtures_dir / folder)
    state = codec.state_dict()
    assert state.keys() == reference_state.keys()
    for key, value in reference_state.items():
        assert torch.equal(state[key], value), key
    flag = state[RVQ_FLAG]  # float32 [1] on disk in the sharded copy, bool [] in the model
    assert flag.dtype == torch.bool and flag.shape == () and bool(flag)
    assert not codec.training and not any(p.requires_grad for p in codec.parameters())
    assert codec.sample_rate == 48000 and codec.codes_per_second == 12.5 and codec.latent_rate == 25


def test_describe_hashes_every_weight_file(fixtures_dir):
    folder = fixtures_dir / "ckpt-tiny" / "HeartCodec-oss"
    info = load_codec(folder).describe()
    shards = sorted(p.name for p in folder.glob("model-*.safetensors"))
    assert sorted(info["sha256"]) == shards
    assert info["sha256"][shards[1]] == hashlib.sha256((folder / shards[1]).read_bytes()).hexdigest()
    assert info["kind"] == "checkpoint" and info["config"]["codebook_size"] == 64
    json.dumps(info)


def test_legacy_weight_norm_spelling_loads(fixtures_dir, tmp_path, reference_state):
    legacy = {}
    for key, value in reference_state.items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        legacy[key.replace(".parametrizations.weight.original1", ".weight_v")] = value
    assert any(k.endswith(".weight_g") for k in legacy)
    state = load_codec(_plain_copy(fixtures_dir, tmp_path, legacy)).state_dict()
    for key, value in reference_state.items():
        assert torch.equal(state[key], value), key


def test_missing_key_is_named(fixtures_dir, tmp_path, reference_state):
    state = {k: v for k, v in reference_state.items() if k != SOME_KEY}
    with pytest.raises(CheckpointError, match=rf"missing key '{SOME_KEY}'"):
        load_codec(_plain_copy(fixtures_dir, tmp_path, state))


def test_unexpected_key_is_named_with_its_file(fixtures_dir, tmp_path, reference_state):
    state = dict(reference_state, **{"scalar_model.extra.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"model\.safetensors: unexpected key 'scalar_model\.extra\.weight'"):
        load_codec(_plain_copy(fixtures_dir, tmp_path, state))


def test_wrong_shape_is_named_with_its_file(fixtures_dir, tmp_path, reference_state):
    state = dict(reference_state, **{SOME_KEY: torch.zeros(2)})
    with pytest.raises(
        CheckpointError, match=rf"model\.safetensors: key '{SOME_KEY}' has shape \[2\], the model expects \[1\]"
    ):
        load_codec(_plain_copy(fixtures_dir, tmp_path, state))


def _sharded_copy(fixtures_dir, tmp_path):
    folder = tmp_path / "HeartCodec-oss"
    shutil.copytree(fixtures_dir / "ckpt-tiny" / "HeartCodec-oss", folder)
    return folder


def test_missing_shard_is_named(fixtures_dir, tmp_path):
    folder = _sharded_copy(fixtures_dir, tmp_path)
    (folder / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"shard file\(s\) missing: .*model-00002-of-00003\.safetensors"):
        load_codec(folder)


@pytest.mark.parametrize("text", ["{not json", '{"metadata": {}}', '{"weight_map": {"a.b": "../x.safetensors"}}'])
def test_corrupt_index_is_named(fixtures_dir, tmp_path, text):
    folder = _sharded_copy(fixtures_dir, tmp_path)
    (folder / "model.safetensors.index.json").write_text(text)
    with pytest.raises(CheckpointError, match=r"model\.safetensors\.index\.json: corrupt shard index"):
        load_codec(folder)


def test_index_naming_the_wrong_shard_is_caught(fixtures_dir, tmp_path):
    folder = _sharded_copy(fixtures_dir, tmp_path)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    key = next(k for k, v in index["weight_map"].items() if v != "model-00003-of-00003.safetensors")
    index["weight_map"][key] = "model-00003-of-00003.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=rf"model-00003-of-00003\.safetensors: key '{key}' is listed"):
        load_codec(folder)


def test_folder_without_weights_or_config(fixtures_dir, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_codec(tmp_path / "nowhere")
    shutil.copy(fixtures_dir / "heartcodec-tiny" / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointError, match=r"no model\.safetensors"):
        load_codec(tmp_path)


def test_config_tolerates_bookkeeping_keys_and_names_bad_files(fixtures_dir, tmp_path):
    data = json.loads((fixtures_dir / "heartcodec-tiny" / "config.json").read_text())
    assert {"architectures", "transformers_version", "dtype", "model_type"} <= data.keys()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = HeartCodecConfig.from_dict(data)
    assert config.init_channel == 2 and config.hop_length == 1920 and config.codes_per_second == 12.5
    assert HeartCodecConfig.from_dict(config.to_dict()) == config
    with pytest.warns(UserWarning, match="new_knob"):
        HeartCodecConfig.from_dict(dict(data, new_knob=1))
    bad = tmp_path / "config.json"
    bad.write_text("[1, 2")
    with pytest.raises(ConfigError, match=str(bad)):
        HeartCodecConfig.from_json(bad)
    bad.write_text(json.dumps(dict(data, upsample_factors=[5, 4, 4, 4])))
    with pytest.raises(ConfigError, match=rf"{bad}.*differ in length"):
        HeartCodecConfig.from_json(bad)


def test_released_defaults():
    c = HeartCodecConfig()
    assert (c.dim, c.codebook_size, c.codebook_dim, c.num_quantizers) == (512, 8192, 32, 8)
    assert (c.num_attention_heads, c.attention_head_dim, c.num_layers, c.num_layers_2) == (24, 64, 24, 6)
    assert (c.in_channels, c.out_channels, c.init_channel, c.latent_hidden_dim) == (1024, 256, 64, 128)


def test_half_precision_is_refused_unless_forced_and_tf32_is_switched_off(fixtures_dir):
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        with pytest.raises(ValueError, match="refusing to run HeartCodec in torch.bfloat16"):
            load_codec(fixtures_dir / "heartcodec-tiny", dtype=torch.bfloat16)
        with pytest.warns(UserWarning, match="forced to torch.bfloat16"):
            codec = load_codec(fixtures_dir / "heartcodec-tiny", dtype="bf16", allow_low_precision=True)
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    assert codec.scalar_model.decoder[0].bias.dtype == torch.bfloat16
    assert codec.quantizer.project_in.weight.dtype == torch.float32  # the RVQ stays float32
    # Mixed dtypes fit together: float32 conditioning -> bf16 estimator -> bf16 decoder -> float32 audio.
    (latents,) = codec.generate_latents(torch.zeros(8, 3, dtype=torch.long), duration=7.44, num_steps=1)
    assert latents.dtype == torch.bfloat16
    wav = codec.decode_latents(latents[:, :4])  # a short slice: bf16 convolutions are slow on CPU
    assert wav.shape == (2, 4 * 1920) and wav.dtype == torch.float32 and torch.isfinite(wav).all()


def test_random_tiny_codec_is_deterministic_with_real_interface_sizes():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = build_random_codec()
    assert torch.equal(torch.rand(3), expected_next)  # the global RNG was not touched
    b = load_codec(RANDOM_CODEC)  # the same random tiny codec, frozen
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    c = b.config
    assert (c.dim, c.codebook_size, c.num_quantizers, c.latent_hidden_dim) == (512, 8192, 8, 128)
    assert (c.out_channels, c.in_channels, c.sample_rate, c.hop_length) == (256, 1024, 48000, 1920)
    assert b.quantizer.layers[0]._codebook.embed.shape == (1, 8192, 8)
    assert b.flow_matching.cond_feature_emb.weight.shape == (512, 512)
    assert b.describe()["kind"] == "embedded-tiny"
    assert all(torch.isfinite(v).all() for v in sa.values() if v.is_floating_point())
