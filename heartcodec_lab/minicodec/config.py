"""Sizes of the miniature HeartCodec: the released interface, reduced widths and depths.

Interface kept: 48 kHz, ScalarModel strides 3-4-4-4-5 x pooling 2 (1920 samples per 25 Hz
latent frame), 128-d latents per channel, 256 decoder latent channels, RVQ of 8 x 8192 codes
on a 512-d embedding (12.5 Hz), estimator input 1024, windows + guidance in detokenize.
"""

from __future__ import annotations

from heartcodec_lab.codec.config import HeartCodecConfig


def mini_config(
    width: int = 8, codebook_dim: int = 8, heads: int = 4, head_dim: int = 32, layers: int = 3, layers_2: int = 1
) -> HeartCodecConfig:
    """The miniature's HeartCodecConfig (``width`` = ScalarModel ``init_channel``)."""
    return HeartCodecConfig(
        dim=512,
        codebook_size=8192,
        codebook_dim=codebook_dim,
        num_quantizers=8,
        attention_head_dim=head_dim,
        num_attention_heads=heads,
        num_layers=layers,
        num_layers_2=layers_2,
        in_channels=1024,
        out_channels=256,
        latent_hidden_dim=128,
        init_channel=width,
    )
