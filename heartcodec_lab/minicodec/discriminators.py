"""Small, CPU-friendly discriminators for the miniature's ScalarModel stage, and their losses.

As the released neural audio codecs train their decoders: a multi-period discriminator (waveform
folded into ``[B, 1, S / p, p]`` for a few prime periods p, 2-D convolutions along time) hears
periodic structure (pitch), a multi-resolution STFT discriminator (2-D convolutions over the
real and imaginary parts of STFTs at several window sizes) hears spectral texture. Both return
logits and their intermediate feature maps (for feature matching).

Shapes: audio ``[B, 1, S]`` -> list over sub-discriminators of (logits ``[B, ...]``, features list).
Objectives (:func:`discriminator_loss`, :func:`generator_loss`): ``"hinge"`` or ``"lsgan"``
(least squares); :func:`feature_matching` is the relative L1 between the fake's and the real's features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class PeriodDiscriminator(nn.Module):
    """One period ``p``: ``[B, 1, S]`` -> ``[B, 1, S/p, p]`` -> strided 2-D convs along time."""

    def __init__(self, period: int, channels=(8, 16, 32, 32), kernel: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        layers, c_in = [], 1
        for i, c in enumerate(channels):
            s = stride if i < len(channels) - 1 else 1
            layers.append(weight_norm(nn.Conv2d(c_in, c, (kernel, 1), (s, 1), padding=(kernel // 2, 0))))
            c_in = c
        self.layers = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(c_in, 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor):
        b, c, s = x.shape
        pad = (-s) % self.period
        if pad:
            x = F.pad(x, (0, pad), mode="reflect")
        x = x.reshape(b, c, -1, self.period)
        feats = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.1)
            feats.append(x)
        x = self.out(x)
        feats.append(x)
        return x.flatten(1), feats


class STFTDiscriminator(nn.Module):
    """One resolution: real + imaginary STFT ``[B, 2, T, F]`` -> 2-D convs, each halving the frequency axis."""

    def __init__(self, n_fft: int, channels: int = 8, layers: int = 3):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        convs = []
        for i in range(layers):
            convs.append(weight_norm(nn.Conv2d(2 if i == 0 else channels, channels, (3, 9), (1, 2), padding=(1, 4))))
        convs.append(weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(convs)
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor):
        spec = torch.stft(x.flatten(0, 1), self.n_fft, self.hop, window=self.window, return_complex=True)
        x = torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, 2, T, F]
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        x = self.out(x)
        feats.append(x)
        return x.flatten(1), feats


class MultiDiscriminator(nn.Module):
    """The periods and the STFT resolutions together: ``[B, 1, S]`` -> list of (logits, features)."""

    def __init__(
        self,
        periods=(2, 3, 5, 7, 11),
        fft_sizes=(512, 1024, 2048),
        period_channels=(8, 16, 32, 32),
        stft_channels: int = 8,
    ):
        super().__init__()
        self.discs = nn.ModuleList(
            [PeriodDiscriminator(p, tuple(period_channels)) for p in periods]
            + [STFTDiscriminator(n, stft_channels) for n in fft_sizes]
        )

    def forward(self, x: torch.Tensor):
        return [d(x) for d in self.discs]


def discriminator_loss(real: list, fake: list, objective: str = "hinge") -> torch.Tensor:
    """Mean over sub-discriminators; ``real``/``fake`` are :class:`MultiDiscriminator` outputs."""
    total = 0.0
    for (r, _), (f, _) in zip(real, fake):
        if objective == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        elif objective == "lsgan":
            total = total + ((1 - r) ** 2).mean() + (f**2).mean()
        else:
            raise ValueError(f"unknown adversarial objective {objective!r} (hinge or lsgan)")
    return total / len(real)


def generator_loss(fake: list, objective: str = "hinge") -> torch.Tensor:
    total = 0.0
    for f, _ in fake:
        if objective == "hinge":
            total = total + F.relu(1 - f).mean()
        elif objective == "lsgan":
            total = total + ((1 - f) ** 2).mean()
        else:
            raise ValueError(f"unknown adversarial objective {objective!r} (hinge or lsgan)")
    return total / len(fake)


def feature_matching(real: list, fake: list, eps: float = 1e-8) -> torch.Tensor:
    """Relative L1 between the fake's and the (detached) real's feature maps, mean over every layer:
    mean |fake - real| / mean |real| per layer, so that every layer counts alike whatever its scale."""
    total, n = 0.0, 0
    for (_, fr), (_, ff) in zip(real, fake):
        for a, b in zip(fr, ff):
            a = a.detach()
            total = total + (b - a).abs().mean() / (a.abs().mean() + eps)
            n += 1
    return total / n
