"""The reconstruction recipe's throw-away adapter: 512-d at 12.5 Hz -> stereo 128-d latents at 25 Hz.

The community recipe decodes the quantized projection output through a small trainable
adapter into the frozen ScalarModel decoder and compares the audio with the input. The
adapter is discarded after training, so the tokens are only as meaningful *to the real
FlowMatching decoder* as the other objectives (flow, distillation) make them: a projection
and adapter can agree on a private code that detokenize cannot read.
"""

from __future__ import annotations

import torch
from torch import nn


class LatentAdapter(nn.Module):
    """quantized ``[B, T, in_dim]`` -> latents ``[B, num_channels * latent_dim, 2T]`` in (-1, 1).

    One linear map per 12.5 Hz frame produces two 25 Hz frames for every channel; ``tanh``
    keeps them in the ScalarModel's latent range (its encoder ends in tanh as well). The
    output is laid out ``cat(left, right)`` along dim 1, like the stereo decoder latents.
    """

    def __init__(self, in_dim: int = 512, latent_dim: int = 128, num_channels: int = 2, hidden_dim: int = 0):
        super().__init__()
        self.latent_dim, self.num_channels = latent_dim, num_channels
        out = 2 * num_channels * latent_dim
        if hidden_dim > 0:
            self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out))
        else:
            self.net = nn.Linear(in_dim, out)

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:
        b, t, _ = quantized.shape
        y = torch.tanh(self.net(quantized))  # [B, T, 2 * C * D]: frame 2k then 2k+1
        y = y.reshape(b, t, 2, self.num_channels * self.latent_dim).reshape(b, 2 * t, -1)
        return y.transpose(1, 2)


def decode_stereo(scalar_model: nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """latents ``[B, 2 * D, T25]`` = cat(left, right) -> audio ``[B, 2, T25 * 1920]`` through the mono decoder.

    The codec's ``decode`` snaps latents to ninths with a straight-through gradient, so
    gradients reach the adapter through the frozen decoder.
    """
    b, c, t = latents.shape
    wav = scalar_model.decode(latents.reshape(b * 2, c // 2, t))  # [B*2, 1, S]
    return wav.reshape(b, 2, wav.shape[-1])
