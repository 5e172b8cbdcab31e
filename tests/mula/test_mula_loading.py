"""Loading HeartMuLa: flavors, strict key checking, side files, the embedded default."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from heartcodec_lab.mula import FLAVORS, HeartMuLa, MulaConfig, MulaLoadError, load_mula, register_flavor
from heartcodec_lab.mula.embedded import build_embedded_model, build_embedded_tokenizer
from heartcodec_lab.mula.flavors import build_stack, resolve_flavor


def _param_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_released_3b_sizes_match_published_parameter_counts():
    # counts of the released HeartMuLa-oss-3B (fixtures README), built without memory on the meta device
    with torch.device("meta"):
        model = HeartMuLa(MulaConfig())
    assert _param_count(model.backbone) == 2_818_747_392
    assert _param_count(model.decoder) == 311_448_576
    assert _param_count(model) == 3_938_113_536
    assert model.audio_head.shape == (7, 3072, 8197)


@pytest.mark.parametrize("name", ["llama-3B", "llama-300M", "llama-7B", "llama-400M"])
def test_released_flavors_build(name):
    with torch.device("meta"):
        stack, dim = build_stack(name)
    assert dim == FLAVORS[name]["embed_dim"]
    assert len(stack.layers) == FLAVORS[name]["num_layers"]


def test_custom_flavors_inline_and_registered():
    sizes = dict(num_layers=1, num_heads=2, num_kv_heads=1, embed_dim=16, max_seq_len=32, intermediate_dim=24)
    register_flavor("test-mini", **sizes)
    try:
        model = HeartMuLa(MulaConfig("test-mini", dict(sizes, embed_dim=8), 50, 21, 8, 4))
        assert model.projection.weight.shape == (8, 16)
        assert model.max_seq_len == 32 and len(model.backbone.layers) == 1
        assert resolve_flavor("test-mini")["rope_base"] == 500_000
    finally:
        FLAVORS.pop("test-mini")
    with pytest.raises(ValueError, match="unknown HeartMuLa flavor 'test-mini'"):
        resolve_flavor("test-mini")
    with pytest.raises(ValueError, match="lacks"):
        resolve_flavor({"num_layers": 1})


@pytest.fixture
def tiny_copy(fixtures_dir, tmp_path):
    """A writable single-file copy of the tiny checkpoint with tokenizer and gen_config beside it."""
    dst = tmp_path / "HeartMuLa-oss-tiny"
    shutil.copytree(fixtures_dir / "heartmula-tiny", dst)
    shutil.copy(fixtures_dir / "tokenizer.json", tmp_path)
    shutil.copy(fixtures_dir / "gen_config.json", tmp_path)
    return dst


def test_loads_from_model_folder_or_parent_and_rebuilds_rope(tiny_copy):
    for path in (tiny_copy, tiny_copy.parent):
        bundle = load_mula(path)
        rope = bundle.model.backbone.layers[0].attn.pos_embeddings
        assert rope.is_cache_built and rope.cache.device.type == "cpu"
        assert rope.cache.shape == (512, 8, 2)
        assert bundle.gen_config.audio_eos_id == 65
        assert bundle.config.codebook_size == 64
    assert bundle.describe()["path"].endswith("HeartMuLa-oss-tiny")


def _rewrite(folder, change):
    state = load_file(folder / "model.safetensors")
    change(state)
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})


def test_missing_key_is_named(tiny_copy):
    _rewrite(tiny_copy, lambda s: s.pop("decoder.layers.1.mlp.w2.weight"))
    with pytest.raises(MulaLoadError, match=r"missing keys \['decoder\.layers\.1\.mlp\.w2\.weight'\]"):
        load_mula(tiny_copy)


def test_unexpected_key_is_named(tiny_copy):
    _rewrite(tiny_copy, lambda s: s.update({"backbone.layers.2.sa_norm.scale": torch.ones(64)}))
    with pytest.raises(MulaLoadError, match=r"unexpected keys \['backbone\.layers\.2\.sa_norm\.scale'\]"):
        load_mula(tiny_copy)


def test_misshaped_key_is_named(tiny_copy):
    _rewrite(tiny_copy, lambda s: s.update({"audio_head": torch.zeros(7, 32, 70)}))
    with pytest.raises(MulaLoadError, match=r"audio_head has shape \[7, 32, 70\], the model expects \[7, 32, 69\]"):
        load_mula(tiny_copy)


def test_config_with_wrong_flavor_is_refused(tiny_copy):
    cfg = json.loads((tiny_copy / "config.json").read_text())
    cfg["decoder_flavor"] = "llama-300M"
    (tiny_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(MulaLoadError, match=r"missing keys \['decoder\.layers\.2\.attn"):
        load_mula(tiny_copy)


def test_missing_side_files_and_shards(tiny_copy, fixtures_dir, tmp_path):
    (tiny_copy.parent / "gen_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="gen_config.json not found"):
        load_mula(tiny_copy)
    sharded = tmp_path / "sharded"
    shutil.copytree(fixtures_dir / "ckpt-tiny" / "HeartMuLa-oss-tiny", sharded)
    (sharded / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="shard model-00002-of-00002.safetensors"):
        load_mula(sharded)
    (sharded / "model.safetensors.index.json").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors.index.json"):
        load_mula(sharded)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_mula(tmp_path / "nowhere")


def test_gen_config_unknown_key(tiny_copy):
    (tiny_copy.parent / "gen_config.json").write_text(json.dumps({"text_bos_id": 1, "audio_eos": 3}))
    with pytest.raises(MulaLoadError, match="gen_config.json: unknown gen_config keys \\['audio_eos'\\]"):
        load_mula(tiny_copy)


def test_bf16_load_keeps_rope_in_float32(tiny_copy):
    bundle = load_mula(tiny_copy, dtype="bf16")
    assert bundle.dtype == torch.bfloat16 and bundle.model.audio_head.dtype == torch.bfloat16
    assert bundle.model.backbone.layers[0].attn.pos_embeddings.cache.dtype == torch.float32


def test_bad_dtype_is_named(tiny_copy):
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        load_mula(tiny_copy, dtype="int8")


def test_embedded_default_is_deterministic_and_matches_codec_vocab():
    a, b = build_embedded_model(), build_embedded_model()
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.config.audio_vocab_size == 8197 and a.config.codebook_size == 8192
    bundle = load_mula(None)
    assert bundle.describe()["mula"] == "embedded-tiny"
    assert bundle.gen_config.audio_eos_id == 8193
    tok = build_embedded_tokenizer()
    ids = tok.encode("ab é").ids
    assert ids[0] == bundle.gen_config.text_bos_id and len(ids) == 1 + 5  # BOS + 5 UTF-8 bytes
    assert tok.decode(ids, skip_special_tokens=True) == "ab é"
    assert max(ids) < bundle.config.text_vocab_size
