"""ScalarModel: the convolutional codec between 48 kHz mono audio and 25 Hz latents.

Encoder (``encode``): ``[B, 1, S]`` -> ``[B, 128, S / 1920]`` in (-1, 1) (tanh).
Decoder (``decode``): ``[B, 128, T]`` -> ``[B, 1, T * 1920]``; it first snaps every
latent value to the nearest ninth (``round(9x) / 9``), the scalar quantiser the
model was trained with, so ``decode(x) == decode(round(9x) / 9)``.

The module tree mirrors the released checkpoint (``scalar_model.encoder.N...`` /
``scalar_model.decoder.N...``), with weight norm as
``torch.nn.utils.parametrizations.weight_norm`` (keys
``parametrizations.weight.original0`` = g, ``original1`` = v).

Layout (defaults; widths scale with ``init_channel`` C)::

    encoder: conv(1->C, k7)  PreProcessor(C, avg-pool /2)  5 x ResEncoderBlock(C*2^i -> C*2^(i+1), stride 3,4,4,4,5)
             conv(32C -> 128, k7) then tanh
    decoder: conv(128 -> 32C, k5, centred)  5 x ResDecoderBlock(up x5,4,4,4,3)  PostProcessor(repeat x2)  conv(C -> 1, k7)

Everything except the decoder's first conv is causal (left padding only), so
inference can stream: ``decode`` (and ``encode`` on one CPU thread, see ``encode``) cut the time
axis into blocks of ``block_frames`` latent frames (4 s by default) and every causal conv carries the
last ``dilation * (kernel - 1)`` samples of its input (a transposed conv: its last
input frame) from one block to the next. The result equals the one-shot pass up
to float rounding, memory stays bounded whatever the length, and the working set
of each block stays near the CPU caches. Weight norm is evaluated once per call
(``parametrize.cached``), not once per block. When autograd needs a graph
(gradient enabled and a parameter or the input requires it), one pass is used.
The carried state lives on the layers during a call: one streamed call per model
at a time (do not share a model between threads).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from .config import HeartCodecConfig

#: Dilations of the five residual units in every encoder / decoder block.
RESIDUAL_DILATIONS = (1, 3, 5, 7, 9)
#: Levels of the scalar quantiser applied at the start of ``decode``.
LATENT_LEVELS = 9
#: Latent frames (25 Hz) per streamed decode block: 4 s. Smaller blocks fit the caches better
#: (2 s was fastest on one uncontended thread) but every block costs a barrier per op, which a
#: 2-thread run on a busy machine pays dearly; 4 s keeps a block's working set near 0.5 GB.
DEFAULT_BLOCK_FRAMES = 100


class _Carry:
    """What a causal layer keeps between streamed blocks: the tail of its previous input."""

    __slots__ = ("tail",)

    def __init__(self) -> None:
        self.tail: torch.Tensor | None = None

    def prepend(self, x: torch.Tensor, keep: int) -> torch.Tensor:
        """``cat(previous tail or zeros, x)`` along time; remembers the last ``keep`` samples of the result."""
        head = self.tail if self.tail is not None else x.new_zeros(*x.shape[:-1], keep)
        joined = torch.cat([head, x], dim=-1)
        self.tail = joined[..., joined.shape[-1] - keep :].clone()  # a copy: do not pin the whole block
        return joined


class _RoundToNinths(torch.autograd.Function):
    """round(9x)/9 with a straight-through gradient (training can backprop through decode)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * LATENT_LEVELS) / LATENT_LEVELS

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def quantize_latent(x: torch.Tensor) -> torch.Tensor:
    """Snap latents to ninths, ``round(9x) / 9`` (gradient passes straight through)."""
    return _RoundToNinths.apply(x)


class PaddedConv1d(nn.Conv1d):
    """Conv1d on ``[B, C, T]``; causal = all padding on the left, so output t sees inputs <= t."""

    def __init__(
        self, n_in: int, n_out: int, kernel_size: int, stride: int = 1, dilation: int = 1, causal: bool = True
    ):
        reach = dilation * (kernel_size - 1)
        # Non-causal convs use the built-in symmetric padding (no extra copy of the input).
        super().__init__(
            n_in, n_out, kernel_size, stride=stride, dilation=dilation, padding=0 if causal else reach // 2
        )
        self.left_pad = reach if causal else 0
        self.carry: _Carry | None = None  # set while streaming

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.left_pad:
            x = F.pad(x, (self.left_pad, 0)) if self.carry is None else self.carry.prepend(x, self.left_pad)
        return super().forward(x)


class CausalConvTranspose1d(nn.ConvTranspose1d):
    """Transposed conv with kernel = 2 x stride; the last ``stride`` outputs are cut so ``T -> T * stride``."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int, stride: int):
        if kernel_size != 2 * stride:
            raise ValueError(f"causal transposed conv needs kernel_size == 2 * stride, got {kernel_size} and {stride}")
        super().__init__(n_in, n_out, kernel_size, stride=stride)
        self.carry: _Carry | None = None  # set while streaming

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride[0]
        if self.carry is None:
            return super().forward(x)[..., :-s]
        # Output frame m mixes inputs m and m-1: run on [previous last frame, block], drop both ends.
        return super().forward(self.carry.prepend(x, 1))[..., s:-s]


class PreProcessor(nn.Module):
    """conv -> PReLU -> average pooling by ``num_samples`` (48 kHz -> 24 kHz)."""

    def __init__(self, channels: int, num_samples: int, kernel_size: int, causal: bool):
        super().__init__()
        self.conv = PaddedConv1d(channels, channels, kernel_size, causal=causal)
        self.activation = nn.PReLU()
        self.pooling = nn.AvgPool1d(kernel_size=num_samples)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooling(self.activation(self.conv(x)))


class PostProcessor(nn.Module):
    """Repeat every frame ``num_samples`` times (24 kHz -> 48 kHz), then conv -> PReLU."""

    def __init__(self, channels: int, num_samples: int, kernel_size: int, causal: bool):
        super().__init__()
        self.num_samples = num_samples
        self.conv = PaddedConv1d(channels, channels, kernel_size, causal=causal)
        self.activation = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x.repeat_interleave(self.num_samples, dim=2)))


class ResidualUnit(nn.Module):
    """x + PReLU(conv1x1(PReLU(dilated conv(x)))), channels unchanged."""

    def __init__(self, channels: int, dilation: int, kernel_size: int, causal: bool):
        super().__init__()
        self.conv1 = weight_norm(PaddedConv1d(channels, channels, kernel_size, dilation=dilation, causal=causal))
        self.conv2 = weight_norm(PaddedConv1d(channels, channels, 1, causal=causal))
        self.activation1 = nn.PReLU()
        self.activation2 = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.activation2(self.conv2(self.activation1(self.conv1(x))))


class DownsampleLayer(nn.Module):
    """Strided conv (weight norm) -> PReLU."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int, stride: int, causal: bool):
        super().__init__()
        self.layer = weight_norm(PaddedConv1d(n_in, n_out, kernel_size, stride=stride, causal=causal))
        self.activation = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x))


class UpsampleLayer(nn.Module):
    """Causal transposed conv (weight norm), no activation (the residual units follow)."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int, stride: int):
        super().__init__()
        self.layer = weight_norm(CausalConvTranspose1d(n_in, n_out, kernel_size, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def _residual_stack(channels: int, kernel_size: int, causal: bool) -> nn.ModuleList:
    return nn.ModuleList(ResidualUnit(channels, d, kernel_size, causal) for d in RESIDUAL_DILATIONS)


class ResEncoderBlock(nn.Module):
    """Five residual units at ``n_in`` channels, then a strided conv to ``n_out``."""

    def __init__(self, n_in: int, n_out: int, stride: int, kernel_size: int, res_kernel_size: int, causal: bool):
        super().__init__()
        self.convs = _residual_stack(n_in, res_kernel_size, causal)
        self.down_conv = DownsampleLayer(n_in, n_out, kernel_size, stride, causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.convs:
            x = unit(x)
        return self.down_conv(x)


class ResDecoderBlock(nn.Module):
    """Transposed conv ``n_in -> n_out`` (x stride in time), then five residual units."""

    def __init__(self, n_in: int, n_out: int, stride: int, kernel_size: int, res_kernel_size: int, causal: bool):
        super().__init__()
        self.up_conv = UpsampleLayer(n_in, n_out, kernel_size, stride)
        self.convs = _residual_stack(n_out, res_kernel_size, causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up_conv(x)
        for unit in self.convs:
            x = unit(x)
        return x


class ScalarModel(nn.Module):
    """The ScalarModel conv codec; see the module docstring for shapes and layout."""

    def __init__(self, config: HeartCodecConfig):
        super().__init__()
        c = config
        if not c.causal:
            raise ValueError("only the causal ScalarModel (as released) is implemented")
        width = c.init_channel
        n_down, n_up = len(c.downsample_factors), len(c.upsample_factors)
        self.hop_length = c.hop_length
        self.block_frames = DEFAULT_BLOCK_FRAMES  # streamed decode block (0 = one pass)
        self.encode_block_frames: int | None = None  # streamed encode block; None = auto (see encode)

        encoder: list[nn.Module] = [weight_norm(PaddedConv1d(c.num_bands, width, c.default_kernel_size, causal=True))]
        if c.num_samples > 1:
            encoder.append(PreProcessor(width, c.num_samples, c.default_kernel_size, causal=True))
        for i, (stride, k) in enumerate(zip(c.downsample_factors, c.downsample_kernel_sizes)):
            encoder.append(ResEncoderBlock(width * 2**i, width * 2 ** (i + 1), stride, k, c.res_kernel_size, True))
        encoder.append(
            weight_norm(PaddedConv1d(width * 2**n_down, c.latent_hidden_dim, c.default_kernel_size, causal=True))
        )

        # The first decoder conv looks ahead (centred kernel): the one non-causal layer.
        decoder: list[nn.Module] = [
            weight_norm(PaddedConv1d(c.latent_hidden_dim, width * 2**n_up, c.delay_kernel_size, causal=False))
        ]
        for i, (stride, k) in enumerate(zip(c.upsample_factors, c.upsample_kernel_sizes)):
            decoder.append(
                ResDecoderBlock(
                    width * 2 ** (n_up - i), width * 2 ** (n_up - i - 1), stride, k, c.res_kernel_size, True
                )
            )
        if c.num_samples > 1:
            decoder.append(PostProcessor(width, c.num_samples, c.default_kernel_size, causal=True))
        decoder.append(weight_norm(PaddedConv1d(width, c.num_bands, c.default_kernel_size, causal=True)))

        self.encoder = nn.ModuleList(encoder)
        self.decoder = nn.ModuleList(decoder)

    # -- streaming ------------------------------------------------------------------------
    def _needs_graph(self, x: torch.Tensor) -> bool:
        return torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))

    @contextlib.contextmanager
    def _streaming(self, layers: nn.Module) -> Iterator[None]:
        """Causal convs in ``layers`` carry state across calls; weight norm is evaluated once."""
        convs = [m for m in layers.modules() if isinstance(m, (PaddedConv1d, CausalConvTranspose1d))]
        for m in convs:
            m.carry = _Carry()
        try:
            with parametrize.cached():
                yield
        finally:
            for m in convs:
                m.carry = None

    def _block_frames(self, block_frames: int | None, x: torch.Tensor) -> int:
        block = self.block_frames if block_frames is None else int(block_frames)
        return 0 if block <= 0 or self._needs_graph(x) else block

    # -- encode / decode --------------------------------------------------------------------
    def encode(self, wav: torch.Tensor, block_frames: int | None = None) -> torch.Tensor:
        """``[B, 1, S]`` audio at 48 kHz -> tanh latents ``[B, 128, S / 1920]`` (not yet rounded to ninths).

        ``S`` should be a multiple of 1920; a trailing partial frame is rounded up or dropped
        depending on its length (average pooling floors, strided convs round up).
        ``block_frames``: latent frames per streamed block (0 = one pass); default
        ``self.encode_block_frames``, whose default None means 4 s blocks on a CPU running torch
        on one thread (30 s at full size: 16.2 vs 22.0 CPU-s, the blocks stay in cache) and one
        pass otherwise (on two threads of a loaded machine blocks were no faster, 27.1 vs 26.0).
        Both give the same numbers (bit-identical in the tests).
        """
        if wav.dim() != 3 or wav.shape[1] != self.encoder[0].in_channels:
            raise ValueError(
                f"ScalarModel.encode expects [B, {self.encoder[0].in_channels}, S], got {tuple(wav.shape)}"
            )
        if block_frames is None:
            block_frames = self.encode_block_frames
        if block_frames is None:
            single_cpu_thread = wav.device.type == "cpu" and torch.get_num_threads() == 1
            block_frames = DEFAULT_BLOCK_FRAMES if single_cpu_thread else 0
        block = self._block_frames(block_frames, wav) * self.hop_length
        if not block or wav.shape[-1] < 2 * block:
            return torch.tanh(self._run(self.encoder, wav))
        # Whole blocks (multiples of every stride), the remainder joins the last block.
        cuts = list(range(0, wav.shape[-1] - block + 1, block))[:-1] + [wav.shape[-1]]
        with self._streaming(self.encoder):
            parts = [self._run(self.encoder, wav[..., a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
        return torch.tanh(torch.cat(parts, dim=-1))

    def decode(self, latent: torch.Tensor, block_frames: int | None = None) -> torch.Tensor:
        """Latents ``[B, 128, T]`` -> audio ``[B, 1, T * 1920]``; latents are rounded to ninths first.

        Output frame ``t`` depends on latents up to ``t + 2`` only (the first conv's look-ahead),
        so ``decode(latent[..., :n + 2])[..., :n * 1920]`` is the first ``n`` frames of the whole.
        ``block_frames``: latent frames per streamed block (default ``self.block_frames``; 0 = one pass).
        """
        if latent.dim() != 3 or latent.shape[1] != self.decoder[0].in_channels:
            raise ValueError(
                f"ScalarModel.decode expects [B, {self.decoder[0].in_channels}, T], got {tuple(latent.shape)}"
            )
        x = quantize_latent(latent)
        block = self._block_frames(block_frames, latent)
        frames = x.shape[-1]
        if not block or frames <= block:
            return self._run(self.decoder, x)
        first, rest = self.decoder[0], self.decoder[1:]
        look = first.padding[0]  # the one non-causal conv: centred, `look` frames each side
        x = F.pad(x, (look, look))
        hop = self.hop_length
        out = None
        with self._streaming(rest), parametrize.cached():
            for a in range(0, frames, block):
                b = min(a + block, frames)
                h = F.conv1d(x[..., a : b + 2 * look], first.weight, first.bias, dilation=first.dilation)
                h = self._run(rest, h)
                if out is None:
                    out = h.new_empty(h.shape[0], h.shape[1], frames * hop)
                out[..., a * hop : b * hop] = h
        return out

    @staticmethod
    def _run(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = layer(x)
        return x
