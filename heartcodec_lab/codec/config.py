"""HeartCodec hyper-parameters as a plain dataclass (defaults = the released HeartCodec-oss).

``config.json`` of a released folder is written by ``transformers`` and carries
bookkeeping keys (``architectures``, ``model_type``, ``transformers_version``,
``dtype``/``torch_dtype``, ...). Those are accepted and dropped; any other
unknown key is dropped with a warning, because it may mean a newer
architecture this code does not know.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heartcodec_lab.audio.rates import SAMPLE_RATE

#: Keys transformers' ``save_pretrained`` adds to every config; never meaningful here.
HF_BOOKKEEPING_KEYS = frozenset(
    {
        "architectures",
        "model_type",
        "transformers_version",
        "dtype",
        "torch_dtype",
        "_name_or_path",
        "auto_map",
        "return_dict",
        "output_hidden_states",
        "output_attentions",
        "torchscript",
        "use_bfloat16",
        "pruned_heads",
        "tie_word_embeddings",
        "chunk_size_feed_forward",
        "is_encoder_decoder",
        "is_decoder",
        "id2label",
        "label2id",
        "problem_type",
        "tokenizer_class",
        "_attn_implementation_autoset",
        "_commit_hash",
    }
)


class ConfigError(ValueError):
    """A codec config file is unreadable or inconsistent; the message names the file."""


@dataclass
class HeartCodecConfig:
    """Architecture of HeartCodec: residual VQ, flow-matching DiT and the ScalarModel conv codec."""

    # residual VQ (vector-quantize-pytorch ResidualVQ)
    dim: int = 512
    codebook_size: int = 8192
    decay: float = 0.9
    commitment_weight: float = 1.0
    threshold_ema_dead_code: int = 2
    use_cosine_sim: bool = False
    codebook_dim: int = 32
    num_quantizers: int = 8
    # flow-matching estimator (LLaMA-style DiT)
    attention_head_dim: int = 64
    in_channels: int = 1024
    norm_type: str = "ada_norm_single"
    num_attention_heads: int = 24
    num_layers: int = 24
    num_layers_2: int = 6
    out_channels: int = 256
    # ScalarModel (conv codec between 48 kHz audio and 25 Hz latents)
    num_bands: int = 1
    sample_rate: int = SAMPLE_RATE
    causal: bool = True
    num_samples: int = 2
    downsample_factors: list[int] = field(default_factory=lambda: [3, 4, 4, 4, 5])
    downsample_kernel_sizes: list[int] = field(default_factory=lambda: [6, 8, 8, 8, 10])
    upsample_factors: list[int] = field(default_factory=lambda: [5, 4, 4, 4, 3])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [10, 8, 8, 8, 6])
    latent_hidden_dim: int = 128
    default_kernel_size: int = 7
    delay_kernel_size: int = 5
    init_channel: int = 64
    res_kernel_size: int = 7

    def __post_init__(self) -> None:
        for name in ("downsample_factors", "downsample_kernel_sizes", "upsample_factors", "upsample_kernel_sizes"):
            setattr(self, name, [int(v) for v in getattr(self, name)])
        problems = []
        if len(self.downsample_factors) != len(self.downsample_kernel_sizes):
            problems.append("downsample_factors and downsample_kernel_sizes differ in length")
        if len(self.upsample_factors) != len(self.upsample_kernel_sizes):
            problems.append("upsample_factors and upsample_kernel_sizes differ in length")
        if self.hop_length != self.upsample_hop_length:
            problems.append(
                f"encoder hop {self.hop_length} != decoder hop {self.upsample_hop_length} samples per latent frame"
            )
        if self.out_channels != 2 * self.latent_hidden_dim:
            problems.append(
                f"out_channels ({self.out_channels}) must be 2 x latent_hidden_dim ({self.latent_hidden_dim}): stereo latents"
            )
        if problems:
            raise ConfigError("invalid HeartCodecConfig: " + "; ".join(problems))

    # -- derived numbers ---------------------------------------------------------------
    @property
    def hop_length(self) -> int:
        """Audio samples per 25 Hz latent frame (1920 at 48 kHz)."""
        hop = self.num_samples
        for f in self.downsample_factors:
            hop *= f
        return hop

    @property
    def upsample_hop_length(self) -> int:
        hop = self.num_samples
        for f in self.upsample_factors:
            hop *= f
        return hop

    @property
    def latent_rate(self) -> float:
        """Latent frames per second (25)."""
        return self.sample_rate / self.hop_length

    @property
    def codes_per_second(self) -> float:
        """Token frames per second (12.5): two latent frames per code frame."""
        return self.latent_rate / 2

    # -- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> HeartCodecConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        unknown = sorted(k for k in data if k not in known and k not in HF_BOOKKEEPING_KEYS)
        if unknown:
            warnings.warn(f"{source}: ignoring unknown HeartCodec config keys {unknown}", stacklevel=2)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: bad HeartCodec config value: {exc}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> HeartCodecConfig:
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ConfigError(f"{path}: HeartCodec config.json not found")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read HeartCodec config: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: HeartCodec config must be a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
