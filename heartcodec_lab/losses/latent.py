"""Losses on the projection's features."""

from __future__ import annotations

import torch

from .base import BatchLoss, same_shape


class CommitmentLoss(BatchLoss):
    """MSE between ``features`` and the (detached) quantized features: pulls features to their codes."""

    name = "commitment"
    requires = ("features", "quantized")

    def compute(self, batch):
        features, quantized = batch["features"], batch["quantized"]
        same_shape(self.name, features, quantized, "(features vs quantized)")
        return torch.nn.functional.mse_loss(features.float(), quantized.detach().float())


class FeatureL2Loss(BatchLoss):
    """Mean square of ``features``: a small pull towards zero that keeps the scale in check."""

    name = "feature_l2"
    requires = ("features",)

    def compute(self, batch):
        return batch["features"].float().pow(2).mean()
