"""Projection modules: stereo ScalarModel latents at 25 Hz -> 512-d features at 12.5 Hz.

Both modules read ``latents [B, num_channels * latent_dim, T25]`` laid out as
``cat(left, right)`` along dim 1 (the order the FlowMatching decoder uses for its
256-d stereo latents) and return ``[B, T25 // 2, out_dim]``. Frames are grouped in
pairs (2k, 2k+1), like the official query encoder does, so the tokens come out at
12.5 Hz; an odd trailing latent frame has no partner and is dropped.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU}


def _check_latents(latents: torch.Tensor, in_channels: int) -> None:
    if latents.dim() != 3 or latents.shape[1] != in_channels:
        raise ValueError(f"expected latents [B, {in_channels}, T25], got {tuple(latents.shape)}")
    if latents.shape[-1] < 2:
        raise ValueError(f"need at least 2 latent frames (one 12.5 Hz frame), got {latents.shape[-1]}")


def _activation(name: str) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def pair_frames(latents: torch.Tensor) -> torch.Tensor:
    """``[B, C, T25]`` -> ``[B, T25 // 2, 2 * C]``: frame 2k's C values, then frame 2k+1's."""
    b, c, t = latents.shape
    t2 = t // 2
    return latents[..., : 2 * t2].transpose(1, 2).reshape(b, t2, 2 * c)


class Projection(nn.Module):
    """Common part: a ``kind`` name, JSON-able ``config`` (constructor kwargs) and sizes."""

    kind: str = "projection"

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        self.in_channels = config["latent_dim"] * config["num_channels"]
        self.out_dim = config["out_dim"]

    def num_frames(self, latent_frames: int) -> int:
        return latent_frames // 2

    @property
    def context_frames(self) -> int:
        """Latent frames on each side that can influence an output frame beyond its own pair."""
        return 0


class LinearProjection(Projection):
    """Per-frame MLP on stacked frame pairs (2 x 256 = 512 inputs for stereo 128-d latents).

    ``num_layers`` linear layers with the activation between them (1 = a single linear map).
    """

    kind = "linear"

    def __init__(
        self,
        latent_dim: int = 128,
        num_channels: int = 2,
        hidden_dim: int = 512,
        num_layers: int = 2,
        out_dim: int = 512,
        activation: str = "gelu",
    ):
        super().__init__(
            dict(
                latent_dim=latent_dim,
                num_channels=num_channels,
                hidden_dim=hidden_dim,
                num_layers=num_layers,
                out_dim=out_dim,
                activation=activation,
            )
        )
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        act = _activation(activation)
        widths = [2 * self.in_channels] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            if i > 0:
                layers.append(act())
            layers.append(nn.Linear(widths[i], widths[i + 1]))
        self.mlp = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """latents ``[B, C, T25]`` -> features ``[B, T25 // 2, out_dim]``."""
        _check_latents(latents, self.in_channels)
        return self.mlp(pair_frames(latents))


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over channels of a ``[B, C, T]`` tensor (per frame, so chunking and padding don't leak in)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ResidualConvBlock(nn.Module):
    """Pre-norm residual block at 25 Hz: x + pointwise(act(conv_k(norm(x))))."""

    def __init__(self, channels: int, kernel_size: int, activation: str):
        super().__init__()
        self.norm = ChannelNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.act = _activation(activation)()
        self.pointwise = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pointwise(self.act(self.conv(self.norm(x))))


class Conv1dProjection(Projection):
    """Temporal 1-D convolutions at 25 Hz, then a stride-2 convolution to 12.5 Hz.

    in-conv (kernel_size) -> ``num_layers`` residual blocks -> norm -> Conv1d(kernel 2, stride 2),
    whose receptive field is exactly one frame pair.
    """

    kind = "conv1d"

    def __init__(
        self,
        latent_dim: int = 128,
        num_channels: int = 2,
        hidden_dim: int = 512,
        num_layers: int = 3,
        kernel_size: int = 5,
        out_dim: int = 512,
        activation: str = "gelu",
    ):
        super().__init__(
            dict(
                latent_dim=latent_dim,
                num_channels=num_channels,
                hidden_dim=hidden_dim,
                num_layers=num_layers,
                kernel_size=kernel_size,
                out_dim=out_dim,
                activation=activation,
            )
        )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-length padding), got {kernel_size}")
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        _activation(activation)
        self.conv_in = nn.Conv1d(self.in_channels, hidden_dim, kernel_size, padding=kernel_size // 2)
        self.blocks = nn.Sequential(
            *[ResidualConvBlock(hidden_dim, kernel_size, activation) for _ in range(num_layers)]
        )
        self.norm_out = ChannelNorm(hidden_dim)
        self.downsample = nn.Conv1d(hidden_dim, out_dim, kernel_size=2, stride=2)

    @property
    def context_frames(self) -> int:
        # conv_in and every block's conv reach kernel_size // 2 frames to each side
        return (len(self.blocks) + 1) * (self.conv_in.kernel_size[0] // 2)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """latents ``[B, C, T25]`` -> features ``[B, T25 // 2, out_dim]``."""
        _check_latents(latents, self.in_channels)
        h = self.blocks(self.conv_in(latents))
        return self.downsample(self.norm_out(h)).transpose(1, 2)


PROJECTIONS: dict[str, type[Projection]] = {"linear": LinearProjection, "conv1d": Conv1dProjection}


def build_projection(kind: str, **kwargs) -> Projection:
    """``kind`` in ``PROJECTIONS`` ("linear", "conv1d"); kwargs go to its constructor."""
    if kind not in PROJECTIONS:
        raise ValueError(f"unknown projection kind {kind!r}; choose one of {sorted(PROJECTIONS)}")
    try:
        return PROJECTIONS[kind](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for projection {kind!r}: {err}") from None
