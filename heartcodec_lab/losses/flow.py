"""Decoder-consistent loss: conditional flow matching through the frozen FlowMatching estimator.

The projection is trained so that its quantized embedding is a good condition for the decoder
that will really be used. Conventions follow the released solver (``solve_euler``):

    mu  = cond_feature_emb(quantized), each 12.5 Hz frame repeated x2      [B, 2T, D]
    x1  = ScalarModel latents of the same audio, transposed                 [B, 2T, 256]
    x0  ~ N(0, 1);  t ~ U(0, 1) per batch row
    x_t = (1 - (1 - sigma) t) x0 + t x1,    target v = x1 - (1 - sigma) x0   (sigma = 1e-6)
    pred = estimator(cat([x_t, incontext_x, mu], -1), timestep=t)           [B, 2T, 256]
    loss = MSE(pred, v) over the frames that are not given as in-context prefix
"""

from __future__ import annotations

import torch
from torch import nn

from heartcodec_lab.codec.flow_matching import interpolate_path, target_velocity

from .base import BatchLoss, Frozen


class FlowMatchingLoss(BatchLoss):
    """Flow-matching MSE of the frozen estimator conditioned on ``quantized`` against ``latents``.

    ``flow_matching``: the codec's ``FlowMatching`` (or the codec). It stays in eval mode with
    no gradients and is not part of this module's state_dict; gradients flow into ``quantized``
    only. ``incontext_prob``: chance per row that a random prefix (up to
    ``max_incontext_fraction`` of the frames) of x1 is given as in-context latents, as the decoder
    does when it continues the previous window; those frames are left out of the loss.
    ``cond_drop_prob``: chance per row that the condition is replaced by zeros (the unconditional
    branch of classifier-free guidance). ``draws``: (t, noise) draws per row, averaged: the loss's
    gradient is an estimate over t and x0, and a few draws per clip cut its variance for the price of
    the estimator alone (the projection and the condition run once).
    """

    name = "flow"
    requires = ("quantized", "latents")

    def __init__(
        self,
        flow_matching: nn.Module,
        weight: float = 1.0,
        incontext_prob: float = 0.0,
        max_incontext_fraction: float = 0.5,
        cond_drop_prob: float = 0.0,
        draws: int = 1,
        name: str | None = None,
    ):
        super().__init__(weight, name)
        if int(draws) < 1:
            raise ValueError(f"draws must be at least 1, got {draws}")
        self.draws = int(draws)
        for key, p in (
            ("incontext_prob", incontext_prob),
            ("cond_drop_prob", cond_drop_prob),
            ("max_incontext_fraction", max_incontext_fraction),
        ):
            if not 0 <= p <= 1:
                raise ValueError(f"{key} must be in [0, 1], got {p}")
        if max_incontext_fraction >= 1:
            raise ValueError("max_incontext_fraction must leave at least one frame to predict")
        self.incontext_prob, self.max_incontext_fraction = incontext_prob, max_incontext_fraction
        self.cond_drop_prob = cond_drop_prob
        self._fm = Frozen(getattr(flow_matching, "flow_matching", flow_matching))

    def condition(self, quantized: torch.Tensor) -> torch.Tensor:
        """quantized ``[B, T, D]`` -> mu ``[B, 2T, D]`` (cond_feature_emb, nearest x2 in time)."""
        return self._fm.module.embedding_to_condition(quantized.float())

    def sample_incontext(self, x1: torch.Tensor) -> torch.Tensor:
        """``[B, T2]`` bool mask of in-context prefix frames (all False unless ``incontext_prob`` > 0)."""
        b, t2 = x1.shape[:2]
        mask = torch.zeros(b, t2, dtype=torch.bool, device=x1.device)
        if self.incontext_prob > 0:
            use = torch.rand(b, device=x1.device) < self.incontext_prob
            max_len = int(self.max_incontext_fraction * t2)
            lengths = torch.randint(0, max_len + 1, (b,), device=x1.device) * use
            mask = torch.arange(t2, device=x1.device)[None] < lengths[:, None]
        return mask

    def compute(self, batch):
        fm = self._fm.module
        if fm.training:
            fm.eval()  # someone switched the codec to train mode: never run it that way here
        quantized, latents = batch["quantized"], batch["latents"]
        b, t, _ = quantized.shape
        if latents.dim() != 3 or latents.shape[0] != b or latents.shape[-1] < 2 * t:
            raise ValueError(
                f"loss {self.name!r}: latents must be [B, C, >= 2T] = [{b}, C, {2 * t}], got {list(latents.shape)}"
            )
        # contiguous: randn_like follows strides, and the noise must not depend on how the caller laid out latents
        x1 = latents[..., : 2 * t].transpose(1, 2).float().detach().contiguous()  # [B, 2T, 256]
        mu = self.condition(quantized)
        if self.draws > 1:  # rows repeated: each copy gets its own t, noise and in-context prefix
            x1, mu = x1.repeat(self.draws, 1, 1), mu.repeat(self.draws, 1, 1)
            b = x1.shape[0]
        if self.cond_drop_prob > 0:
            keep = torch.rand(b, 1, 1, device=mu.device) >= self.cond_drop_prob
            mu = mu * keep
        x0 = torch.randn_like(x1)
        tt = torch.rand(b, device=x1.device)
        x_t = interpolate_path(x0, x1, tt[:, None, None])
        target = target_velocity(x0, x1)
        prefix = self.sample_incontext(x1)
        incontext_x = x1 * prefix[..., None]
        pred = fm.velocity(x_t, incontext_x, mu, tt)  # estimator(cat([x_t, incontext_x, mu], -1), t)
        weight = (~prefix)[..., None].float()
        err = (pred.float() - target).pow(2) * weight
        return err.sum() / (weight.sum() * target.shape[-1])
