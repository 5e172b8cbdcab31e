"""What the codec's own decoder thinks of a token sequence: the objectives a teacher-free recipe can use.

Two measurements on held-out audio, each read against the reference encoder's tokens on the same draws:

* :func:`decoder_objective`: the frozen FlowMatching estimator's flow-matching loss (the ``flow`` recipe's
  term, the loss the codec's decoder was trained with) of an encoder's quantized features;
* :func:`reconstruction_objective`: the card's reconstruction losses (multi-resolution STFT, mel,
  high-frequency) on audio decoded through the codec's own path (:mod:`heartcodec_lab.training.decode_through`)
  from those tokens, with fixed crops, noise and Euler steps.

A student whose tokens score as low as the reference's has satisfied everything these objectives can ask;
where it still disagrees with the reference's codes, no teacher-free recipe built on them can tell the two
apart (docs/training.md, "What the decoder can and cannot say").
"""

from __future__ import annotations

import torch


@torch.no_grad()
def decoder_objective(codec, features: torch.Tensor, latents: torch.Tensor, draws: int = 32, seed: int = 0) -> float:
    """Flow-matching MSE of features ``[B, T, 512]`` (quantized by the RVQ) against the latents ``[B, 256, >= 2T]``
    of the same audio, no in-context prefix, averaged over ``draws`` seeded draws of t and noise: two
    encoders' tokens are scored on the same draws."""
    from heartcodec_lab.codec.flow_matching import interpolate_path, target_velocity

    fm = codec.flow_matching
    quantized, _ = codec.quantize(features.float())
    mu = fm.embedding_to_condition(quantized)
    x1 = latents[..., : mu.shape[1]].transpose(1, 2).float().contiguous()
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(draws):
        x0 = torch.randn(x1.shape, generator=gen)
        t = torch.rand(x1.shape[0], generator=gen)
        pred = fm.velocity(interpolate_path(x0, x1, t[:, None, None]), torch.zeros_like(x1), mu, t)
        total += float((pred.float() - target_velocity(x0, x1)).pow(2).mean())
    return total / draws


@torch.no_grad()
def reconstruction_objective(
    module, projection, audio: torch.Tensor, latents: torch.Tensor, crops: int = 32, frames: int = 16, seed: int = 0
) -> dict[str, float]:
    """The loss terms of ``module`` (a :class:`~heartcodec_lab.training.module.ProjectionTrainingModule` of a
    decode-through recipe) with ``projection`` in place of its own, averaged over ``crops`` seeded random
    crops (batch 2 x ``frames`` latent frames) of ``audio [N, 2, S]`` / ``latents [N, 256, S / 1920]``.

    Returns ``{"loss/stft": ..., "loss/mel": ..., ...}`` as the training logs name them. The module's own
    projection is put back afterwards.
    """
    from heartcodec_lab.study.ranking import _crops

    own = module.projection
    module.projection = projection
    gen = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    try:
        for i in range(crops):
            clip_audio, clip_latents = _crops(audio, latents, 2, frames, gen)
            torch.manual_seed(seed * 1_000_003 + i)  # the decoded span and channel: the same for every projection
            _, logs = module.losses(module.forward_batch(clip_audio, clip_latents))
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + float(value) / crops
    finally:
        module.projection = own
    return sums
