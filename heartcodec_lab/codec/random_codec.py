"""The random tiny codec (``codec.path=embedded:random``): a HeartCodec built from a fixed seed, no files.

It keeps every interface size of the released model (48 kHz, strides 3-4-4-4-5
with pooling 2, 128-d latents, 256 latent channels, RVQ of 8 x 8192 codes on a
512-d embedding, estimator input 1024) but tiny widths and depths (ScalarModel
base width 2, codebook vectors of 8, a DiT of 2 heads x 8 with 2 + 1 layers).

Its weights are RANDOM: it produces well-formed tokens, latents and audio of
the right shapes and rates, and NO meaningful audio. It is the cheapest model
that runs every code path (tests of plumbing use it); the embedded default
(``codec.path: null``) is the trained miniature (:mod:`.miniature`).
"""

from __future__ import annotations

import math

import torch

from .config import HeartCodecConfig
from .model import HeartCodec
from .weights import skip_weight_init

#: Seed of the private generator that fills the random codec's weights.
RANDOM_CODEC_SEED = 20260123


def random_codec_config() -> HeartCodecConfig:
    """Released interface sizes, tiny widths."""
    return HeartCodecConfig(
        dim=512,
        codebook_size=8192,
        codebook_dim=8,
        num_quantizers=8,
        attention_head_dim=8,
        num_attention_heads=2,
        num_layers=2,
        num_layers_2=1,
        in_channels=1024,
        out_channels=256,
        latent_hidden_dim=128,
        init_channel=2,
    )


def _fill(key: str, tensor: torch.Tensor, gen: torch.Generator) -> None:
    """Deterministic stand-in weights, scaled so activations neither vanish nor explode."""
    if tensor.dtype == torch.bool:  # RVQ "initted" flags
        tensor.fill_(True)
    elif key.endswith("cluster_size"):
        tensor.fill_(1.0)
    elif key.endswith("activation.weight") or ".activation" in key:  # PReLU slopes
        tensor.fill_(0.25)
    elif key.endswith("bias"):
        tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.02)
    elif tensor.dim() <= 1:
        # Norm scales start at one; free vectors (e.g. the unconditional embedding) are N(0, 1).
        tensor.copy_(torch.ones(tensor.shape) if key.endswith("weight") else torch.randn(tensor.shape, generator=gen))
    elif key.endswith("_codebook.embed") or key.endswith("scale_shift_table"):
        tensor.copy_(torch.randn(tensor.shape, generator=gen) * (1.0 if "embed" in key else tensor.shape[-1] ** -0.5))
    else:
        fan_in = max(1, tensor[0].numel())
        tensor.copy_(torch.randn(tensor.shape, generator=gen) / math.sqrt(fan_in))


def build_random_codec(seed: int = RANDOM_CODEC_SEED) -> HeartCodec:
    """The random tiny codec (random weights, no meaningful audio); bit-identical for a given seed.

    Uses a private ``torch.Generator``: the global RNG is left untouched.
    """
    with skip_weight_init():
        model = HeartCodec(random_codec_config())
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()  # shares storage with the module
    with torch.no_grad():
        for key in sorted(state):
            if key.endswith("embed_avg") or key.endswith("original0"):
                continue  # derived below
            _fill(key, state[key], gen)
        for key in state:
            if key.endswith("embed_avg"):  # EMA sum consistent with cluster_size = 1
                state[key].copy_(state[key[: -len("embed_avg")] + "embed"])
            elif key.endswith("original0"):  # weight-norm gain = |v|, so the weight equals v
                v = state[key[: -len("0")] + "1"]
                state[key].copy_(v.flatten(1).norm(dim=1).reshape(state[key].shape))
    model.source = {"kind": "embedded-tiny", "path": None, "seed": seed}
    return model
