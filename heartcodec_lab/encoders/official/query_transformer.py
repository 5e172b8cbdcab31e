"""Fusion of the four streams and the 12.5 Hz query transformer of the vqv12 encoder.

Every pair of fused 25 Hz frames is followed by a learned query token; the sequence
``f0 f1 q0 f2 f3 q1 ...`` goes through pre-norm-free transformer blocks (weight-normalised
projections, Q/K LayerNorm, rotary position on the first part of each head, sigmoid GLU
feed-forward, LayerScale residuals) and the outputs at the query positions are the 512-d
features fed to the RVQ.

Input widths are derived from the sub-model configs (released: 2048, 2048, 1536, 1536)
so a narrow encoder is possible. Attribute names follow the released checkpoint keys.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


class RotaryEmbedding(nn.Module):
    """Rotation angles for ``rotary_dim`` channels: ``length`` -> ``[length, rotary_dim]``."""

    def __init__(self, rotary_dim: int, base: float = 10000.0):
        super().__init__()
        exponents = torch.arange(0, rotary_dim, 2, dtype=torch.float32, device="cpu") / rotary_dim
        self.register_buffer("inv_freq", 1.0 / (base**exponents))

    def forward(self, length: int) -> Tensor:
        positions = torch.arange(length, device=self.inv_freq.device, dtype=torch.float32)
        angles = torch.outer(positions, self.inv_freq.float())
        return torch.cat((angles, angles), dim=-1)


def apply_rotary(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate the first ``angles.shape[-1]`` channels of ``x [..., T, head_dim]`` (half-split pairs)."""
    width = angles.shape[-1]
    rotated, rest = x[..., :width].float(), x[..., width:]
    first, second = rotated.chunk(2, dim=-1)
    turned = torch.cat((-second, first), dim=-1)
    rotated = rotated * angles.cos() + turned * angles.sin()
    return torch.cat((rotated.to(x.dtype), rest), dim=-1)


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class SigmoidGLU(nn.Module):
    """``[.., dim]`` -> ``[.., 4 dim]``: values * sigmoid(gate) from one 8x-wide projection."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = weight_norm(nn.Linear(dim, 8 * dim))

    def forward(self, x: Tensor) -> Tensor:
        values, gate = self.proj(x).chunk(2, dim=-1)
        return values * torch.sigmoid(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        # Identity slots keep the released index layout (ff.0 and ff.2 hold weights).
        self.ff = nn.Sequential(SigmoidGLU(dim), nn.Identity(), weight_norm(nn.Linear(4 * dim, dim)), nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        return self.ff(x)


class QueryAttention(nn.Module):
    def __init__(self, dim: int, head_dim: int):
        super().__init__()
        self.num_heads = dim // head_dim
        self.head_dim = head_dim
        self.to_qkv = weight_norm(nn.Linear(dim, 3 * dim, bias=False))
        self.to_out = weight_norm(nn.Linear(dim, dim, bias=False))
        self.q_norm = nn.LayerNorm(head_dim)
        self.k_norm = nn.LayerNorm(head_dim)

    def forward(self, x: Tensor, angles: Tensor) -> Tensor:
        batch, length, dim = x.shape
        q, k, v = (
            t.reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2) for t in self.to_qkv(x).chunk(3, -1)
        )
        q = apply_rotary(self.q_norm(q), angles)
        k = apply_rotary(self.k_norm(k), angles)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(batch, length, dim))


class QueryTransformerBlock(nn.Module):
    def __init__(self, dim: int, head_dim: int):
        super().__init__()
        self.self_attn = QueryAttention(dim, head_dim)
        self.self_attn_scale = LayerScale(dim)
        self.ff = FeedForward(dim)
        self.ff_scale = LayerScale(dim)
        self.rope = RotaryEmbedding(max(head_dim // 2, 32))

    def forward(self, x: Tensor) -> Tensor:
        angles = self.rope(x.shape[1])
        x = x + self.self_attn_scale(self.self_attn(x, angles))
        return x + self.ff_scale(self.ff(x))


class QueryEncoder(nn.Module):
    """Streams ``[B, F, width_s]`` (F even, 25 Hz) -> features ``[B, F // 2, dim]`` at 12.5 Hz.

    ``widths`` maps acoustic / semantic / whisper / wavlm to their stereo widths. The
    whisper stream enters the final projection unprojected, as released.
    """

    STREAMS = ("acoustic", "semantic", "whisper", "wavlm")

    def __init__(
        self, widths: dict[str, int], dim: int = 512, num_layers: int = 6, head_dim: int = 128, interval: int = 2
    ):
        super().__init__()
        self.widths = dict(widths)
        self.interval = interval
        self.cond_fusion_layer_semantic = nn.Linear(widths["semantic"], dim)
        self.cond_fusion_layer_acoustic = nn.Linear(widths["acoustic"], dim)
        self.cond_fusion_layer_phone = nn.Linear(widths["wavlm"], dim)
        self.feature_proj = nn.Linear(3 * dim + widths["whisper"], dim)
        self.cls_token = nn.Parameter(torch.randn(1, dim))
        self.encoder_transformers = nn.Sequential(*(QueryTransformerBlock(dim, head_dim) for _ in range(num_layers)))

    def check_streams(self, streams: tuple[Tensor, ...]) -> None:
        reference = streams[0].shape[:2]
        for name, stream in zip(self.STREAMS, streams):
            width = self.widths[name]
            if stream.dim() != 3 or stream.shape[-1] != width or stream.shape[:2] != reference:
                raise ValueError(
                    f"{name} stream must be [{reference[0]}, {reference[1]}, {width}], got {tuple(stream.shape)}"
                )
        if reference[1] == 0 or reference[1] % self.interval:
            raise ValueError(f"frame count must be a positive multiple of {self.interval}, got {reference[1]}")

    def forward(self, acoustic: Tensor, semantic: Tensor, whisper: Tensor, wavlm: Tensor) -> Tensor:
        self.check_streams((acoustic, semantic, whisper, wavlm))
        batch, frames, _ = acoustic.shape
        fused = self.feature_proj(
            torch.cat(
                (
                    self.cond_fusion_layer_acoustic(acoustic),
                    self.cond_fusion_layer_semantic(semantic),
                    whisper,
                    self.cond_fusion_layer_phone(wavlm),
                ),
                dim=-1,
            )
        )
        groups = fused.unflatten(1, (frames // self.interval, self.interval))  # [B, Q, 2, dim]
        queries = self.cls_token.expand(batch, frames // self.interval, 1, -1)
        sequence = torch.cat((groups, queries), dim=2).flatten(1, 2)
        # Weight norm recomputes each weight per call; cache them for the whole pass.
        with parametrize.cached():
            sequence = self.encoder_transformers(sequence)
        return sequence[:, self.interval :: self.interval + 1]
