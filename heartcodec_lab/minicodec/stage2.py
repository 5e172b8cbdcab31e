"""Stage 2: true encoder + RVQ + flow-matching decoder, on frozen stage-1 latents.

Everything runs at the latent rate (25 Hz), so it is cheap. Shapes:

    latents   x  [B, 256, 2T]   stereo ScalarModel latents (left 128 | right 128), rounded to ninths
    encoder      [B, 256, 2T] -> features [B, T, 512]          (frame pairs -> 12.5 Hz)
    RVQ          features -> quantized [B, T, 512], codes [B, T, 8]   (EMA codebooks, straight-through)
    flow loss    estimator(cat(x_t, in-context x, mu)) vs the path velocity, mu = cond_feature_emb(quantized) x2
    latent head  quantized -> [B, 2T, 256] (a throw-away linear readout that makes the codes carry
                 the latents from the first steps; not shipped)

Quantizer dropout (``level_dropout``, as residual codecs train): that share of the rows is conditioned on
the sum of only its first k code vectors, k uniform in 1..8 (what ``detokenize(num_quantizers=k)``
decodes), so that the decoder learns to read every level and each added level refines the output.

Classifier-free guidance is trained by zeroing ``mu`` for a fraction of rows (the unconditional
branch of ``guided_velocity``); window continuation by giving a random prefix of x as in-context
latents (as ``detokenize`` does for every window after the first).
"""

from __future__ import annotations

import torch
from torch import nn

from heartcodec_lab.codec.flow_matching import FlowMatching, interpolate_path, target_velocity
from heartcodec_lab.encoders.projection.modules import Conv1dProjection

#: Size of the miniature's true encoder (a conv1d network over frame pairs).
ENCODER_KWARGS = dict(latent_dim=128, num_channels=2, hidden_dim=128, num_layers=3, kernel_size=3, out_dim=512)


def build_true_encoder() -> Conv1dProjection:
    return Conv1dProjection(**ENCODER_KWARGS)


class Stage2Loss(nn.Module):
    """Flow matching + commitment + latent readout; the RVQ is trained by its own EMA updates."""

    def __init__(
        self,
        fm: FlowMatching,
        encoder: nn.Module,
        w_flow: float = 1.0,
        w_commit: float = 0.25,
        w_readout: float = 1.0,
        cond_drop: float = 0.1,
        incontext_prob: float = 0.5,
        level_dropout: float = 0.0,
    ):
        super().__init__()
        self.fm, self.encoder = fm, encoder
        self.readout = nn.Linear(fm.cond_feature_emb.in_features, 2 * fm.latent_dim)
        self.w = {"flow": w_flow, "commit": w_commit, "readout": w_readout}
        self.cond_drop, self.incontext_prob, self.level_dropout = cond_drop, incontext_prob, level_dropout

    def first_levels(self, feats: torch.Tensor, quantized: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Quantizer dropout: ``quantized [B, T, 512]`` with a share of the rows replaced by the output of
        their first k levels (k uniform in 1..8), straight-through to ``feats`` in the codebook space.
        ``codes [B, T, 8]``."""
        rvq = self.fm.vq_embed
        b = feats.shape[0]
        levels = len(rvq.layers)
        drop = torch.rand(b) < self.level_dropout
        k = torch.where(drop, torch.randint(1, levels + 1, (b,)), torch.full((b,), levels))
        if not bool((k < levels).any()):
            return quantized
        partial = rvq.get_codes_from_indices(codes).cumsum(0)[k - 1, torch.arange(b)]  # [B, T, codebook_dim]
        x = rvq.project_in(feats)
        out = rvq.project_out(x + (partial - x).detach())
        return torch.where((k < levels)[:, None, None], out, quantized)

    def forward(self, x: torch.Tensor):
        fm = self.fm
        b, c, t2 = x.shape
        t = t2 // 2
        x = x[..., : 2 * t]
        feats = self.encoder(x)  # [B, T, 512]
        fm.vq_embed.train()  # EMA codebook learning (FlowMatching.train() keeps it in eval otherwise)
        quantized, codes, commit = fm.vq_embed(feats)
        if self.level_dropout:
            quantized = self.first_levels(feats, quantized, codes)
        x1 = x.transpose(1, 2)  # [B, 2T, 256]
        readout = self.readout(quantized).reshape(b, 2 * t, c)
        mu = fm.embedding_to_condition(quantized)
        keep = (torch.rand(b, 1, 1) >= self.cond_drop).to(mu.dtype)
        mu = mu * keep
        noise = torch.randn_like(x1)
        tt = torch.rand(b)
        x_t = interpolate_path(noise, x1, tt[:, None, None])
        use = torch.rand(b) < self.incontext_prob
        lengths = torch.randint(0, t + 1, (b,)) * use  # up to half the frames as prompt
        ctx = torch.arange(2 * t)[None] < lengths[:, None]
        incontext_x = x1 * ctx[..., None]
        pred = fm.velocity(x_t, incontext_x, mu, tt)
        err = (pred - target_velocity(noise, x1)) ** 2
        free = (~ctx)[..., None].to(err.dtype)
        parts = {
            "flow": (err * free).sum() / (free.sum() * err.shape[-1]),
            "commit": commit.sum(),
            "readout": ((readout - x1) ** 2).mean(),
        }
        total = sum(self.w[k] * v for k, v in parts.items())
        return total, parts
