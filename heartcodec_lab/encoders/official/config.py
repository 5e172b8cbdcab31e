"""Configuration of the official vqv12 encoder, as written in ``encoder_config.json``.

The config stays a plain JSON-able dict (the released file's structure) so a checkpoint
folder round-trips unchanged. :func:`released_config` is the published architecture;
:func:`embedded_tiny_config` is the few-MB default the package builds itself.
"""

from __future__ import annotations

import copy
from typing import Any

from heartcodec_lab.audio.rates import OFFICIAL_ENCODER_SAMPLE_RATE

VERSION = "vqv12"
CHUNK_SAMPLES = 714240  # 29.76 s at 24 kHz
TAIL_SAMPLES = 240  # zero tail appended to every chunk by the released tokenizer
NATIVE_SAMPLE_RATE = OFFICIAL_ENCODER_SAMPLE_RATE

# Hidden states the query encoder reads (index 0 = input of layer 1).
CONFORMER_ACOUSTIC_STATE = 2
CONFORMER_SEMANTIC_STATE = 11
WAVLM_AVERAGED_STATES = (6, 7, 8, 9)


def released_config() -> dict[str, Any]:
    """The published HeartCodec-oss-encoder architecture (537 M parameters)."""
    return {
        "version": VERSION,
        "chunk_samples": CHUNK_SAMPLES,
        "feature_extractors": {
            "whisper_config": {
                "d_model": 768,
                "encoder_layers": 12,
                "encoder_attention_heads": 12,
                "encoder_ffn_dim": 3072,
                "num_mel_bins": 80,
                "max_source_positions": 1500,
                "activation_function": "gelu",
                "dropout": 0.0,
                "attention_dropout": 0.0,
                "activation_dropout": 0.0,
                "encoder_layerdrop": 0.0,
                "scale_embedding": False,
            },
            "wavlm_config": {
                "hidden_size": 768,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "intermediate_size": 3072,
                "hidden_act": "gelu",
                "hidden_dropout": 0.1,
                "attention_dropout": 0.1,
                "activation_dropout": 0.0,
                "feat_proj_dropout": 0.1,
                "layerdrop": 0.05,
                "layer_norm_eps": 1e-5,
                "feat_extract_norm": "group",
                "feat_extract_activation": "gelu",
                "conv_dim": [512] * 7,
                "conv_stride": [5, 2, 2, 2, 2, 2, 2],
                "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
                "conv_bias": False,
                "num_conv_pos_embeddings": 128,
                "num_conv_pos_embedding_groups": 16,
                "num_buckets": 320,
                "max_bucket_distance": 800,
                "do_stable_layer_norm": False,
                "add_adapter": False,
            },
            "muencoder_config": {
                "sample_rate": 24000,
                "n_fft": 2048,
                "hop_length": 240,
                "n_mels": 128,
                "conv_dim": 512,
                "mean": 6.768444971712967,
                "std": 18.417922652295623,
                "conformer_config": {
                    "hidden_size": 1024,
                    "num_hidden_layers": 12,
                    "num_attention_heads": 16,
                    "intermediate_size": 4096,
                    "hidden_act": "swish",
                    "position_embeddings_type": "rotary",
                    "rotary_embedding_base": 10000,
                    "max_source_positions": 5000,
                    "layer_norm_eps": 1e-5,
                    "conv_depthwise_kernel_size": 31,
                    "num_conv_pos_embeddings": 128,
                    "num_conv_pos_embedding_groups": 16,
                    "hidden_dropout": 0.1,
                    "attention_dropout": 0.1,
                    "activation_dropout": 0.1,
                    "conformer_conv_dropout": 0.1,
                    "layerdrop": 0.0,
                },
            },
        },
        "query": {"dim": 512, "num_layers": 6, "head_dim": 128, "interval": 2},
    }


def embedded_tiny_config() -> dict[str, Any]:
    """Narrow, shallow sub-models with the released frame structure (a few M parameters).

    Depths stay at the minimum the hidden-state indices need (conformer 11 layers for
    state 11, WavLM 9 layers for states 6-9); Whisper keeps 80 mel bins and 1500
    positions because its encoder insists on a 30 s input.
    """
    cfg = released_config()
    fx = cfg["feature_extractors"]
    fx["whisper_config"].update(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32)
    fx["wavlm_config"].update(
        hidden_size=16,
        num_hidden_layers=9,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=[8] * 7,
        num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2,
        num_buckets=32,
        max_bucket_distance=64,
    )
    mu = fx["muencoder_config"]
    mu["conv_dim"] = 2
    mu["conformer_config"].update(
        hidden_size=16,
        num_hidden_layers=11,
        num_attention_heads=2,
        intermediate_size=32,
        conv_depthwise_kernel_size=7,
        num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2,
    )
    cfg["query"].update(num_layers=1, head_dim=128)
    return cfg


def merge_config(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def complete_config(config: dict[str, Any], source: str = "encoder config") -> dict[str, Any]:
    """Fill keys missing from ``config`` with the released values and check the fixed ones.

    Raises ``ValueError`` naming ``source`` (e.g. the config file) when the config
    cannot describe a vqv12 encoder.
    """
    if not isinstance(config, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(config).__name__}")
    cfg = merge_config(released_config(), config)
    if cfg.get("version") != VERSION:
        raise ValueError(f"{source}: version must be {VERSION!r}, got {cfg.get('version')!r}")
    if cfg["chunk_samples"] != CHUNK_SAMPLES:
        raise ValueError(
            f"{source}: chunk_samples must be {CHUNK_SAMPLES} (29.76 s at 24 kHz), got {cfg['chunk_samples']}"
        )
    fx = cfg["feature_extractors"]
    if fx["muencoder_config"]["conformer_config"]["num_hidden_layers"] < CONFORMER_SEMANTIC_STATE:
        raise ValueError(
            f"{source}: the conformer needs at least {CONFORMER_SEMANTIC_STATE} layers (hidden state 11 is read)"
        )
    if fx["wavlm_config"]["num_hidden_layers"] < max(WAVLM_AVERAGED_STATES):
        raise ValueError(
            f"{source}: WavLM needs at least {max(WAVLM_AVERAGED_STATES)} layers (hidden states 6-9 are averaged)"
        )
    if fx["wavlm_config"].get("do_stable_layer_norm") or fx["wavlm_config"].get("add_adapter"):
        raise ValueError(
            f"{source}: WavLM must be post-norm without adapter (do_stable_layer_norm/add_adapter false), as released"
        )
    if fx["muencoder_config"]["conformer_config"].get("position_embeddings_type") != "rotary":
        raise ValueError(f"{source}: the conformer must use rotary position embeddings, as released")
    if fx["muencoder_config"]["sample_rate"] != NATIVE_SAMPLE_RATE:
        raise ValueError(f"{source}: muencoder sample_rate must be {NATIVE_SAMPLE_RATE}")
    q = cfg["query"]
    if q["head_dim"] < 32 or q["head_dim"] % 4 or q["dim"] % q["head_dim"]:
        raise ValueError(f"{source}: query head_dim must be a multiple of 4, at least 32, and divide dim")
    if q["num_layers"] < 1 or q["interval"] != 2:
        raise ValueError(f"{source}: query needs num_layers >= 1 and interval 2 (one query per two 25 Hz frames)")
    return cfg


def stream_widths(config: dict[str, Any]) -> dict[str, int]:
    """Widths of the four stereo feature streams (left and right concatenated).

    Released: acoustic/semantic 2 x 1024 = 2048, whisper/wavlm 2 x 768 = 1536.
    """
    fx = config["feature_extractors"]
    conformer = fx["muencoder_config"]["conformer_config"]["hidden_size"]
    return {
        "acoustic": 2 * conformer,
        "semantic": 2 * conformer,
        "whisper": 2 * fx["whisper_config"]["d_model"],
        "wavlm": 2 * fx["wavlm_config"]["hidden_size"],
    }
