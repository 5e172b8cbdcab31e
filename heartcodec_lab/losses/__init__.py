"""Training losses for the encoder projection: small modules with a ``weight``, combined by LossSet.

Each loss is an ``nn.Module`` with ``name``, ``weight``, ``requires`` (the batch keys it reads)
and ``forward(batch) -> scalar``. See :mod:`heartcodec_lab.losses.base` for the batch keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from .base import BatchLoss, Frozen, LossSet
from .consistency import ConsistencyLoss
from .distill import DistillCodeLoss, DistillFeatureLoss, DistillRVQInputLoss
from .flow import FlowMatchingLoss
from .latent import CommitmentLoss, FeatureL2Loss
from .spectral import HighFrequencyLoss, MelLoss, MultiScaleSTFTLoss

LOSSES: dict[str, type[BatchLoss]] = {
    "stft": MultiScaleSTFTLoss,
    "mel": MelLoss,
    "high_freq": HighFrequencyLoss,
    "commitment": CommitmentLoss,
    "feature_l2": FeatureL2Loss,
    "flow": FlowMatchingLoss,
    "distill_feature": DistillFeatureLoss,
    "distill_rvq_input": DistillRVQInputLoss,
    "distill_code": DistillCodeLoss,
    "consistency": ConsistencyLoss,
}
# losses built from a part of the frozen codec: constructor argument -> codec attribute
CODEC_PARTS = {
    FlowMatchingLoss: ("flow_matching", "flow_matching"),
    DistillCodeLoss: ("quantizer", "quantizer"),
    DistillRVQInputLoss: ("quantizer", "quantizer"),
    ConsistencyLoss: ("quantizer", "quantizer"),
}


def build_loss(kind: str, codec: nn.Module | None = None, **kwargs) -> BatchLoss:
    """One loss by registry name (``LOSSES``); losses that need the codec take it from ``codec``."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss type {kind!r}; choose one of {sorted(LOSSES)}")
    cls = LOSSES[kind]
    if cls in CODEC_PARTS:
        arg, attr = CODEC_PARTS[cls]
        if codec is None:
            raise ValueError(f"loss {kind!r} needs the codec (its {attr})")
        kwargs[arg] = getattr(codec, attr)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for loss {kind!r}: {err}") from None


def build_losses(spec: Mapping[str, Mapping], codec: nn.Module | None = None) -> LossSet:
    """``{name: {weight: w, type: <registry name, default = name>, **kwargs}}`` -> :class:`LossSet`.

    Made for Hydra/OmegaConf configs, e.g. ``{"stft": {"weight": 1}, "flow": {"weight": 0}}``.
    """
    losses = {}
    for name, options in spec.items():
        options = dict(options or {})
        kind = options.pop("type", name)
        losses[name] = build_loss(kind, codec=codec, **options)
    return LossSet(losses)


__all__ = [
    "LOSSES",
    "BatchLoss",
    "CommitmentLoss",
    "ConsistencyLoss",
    "DistillCodeLoss",
    "DistillFeatureLoss",
    "DistillRVQInputLoss",
    "FeatureL2Loss",
    "FlowMatchingLoss",
    "Frozen",
    "HighFrequencyLoss",
    "LossSet",
    "MelLoss",
    "MultiScaleSTFTLoss",
    "build_loss",
    "build_losses",
]
