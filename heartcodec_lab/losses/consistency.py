"""Stability as a training objective: the same features for audio changed in ways nobody hears.

:class:`ConsistencyLoss` draws, per training clip, a random sub-frame delay, a small gain change and
a little white noise (:func:`perturb`); the training step runs the frozen ScalarModel encoder and the
projection on the changed audio too (batch key ``perturbed_features``), and the loss penalises the
difference of the two feature sets in the RVQ's input space (after ``project_in``, where codes are
chosen), relative to the clean features' own power there::

    L = mean_frames ||P(f_perturbed) - P(f_clean)||^2 / mean_frames ||P(f_clean)||^2   (denominator detached)

The first and last frame of each clip are left out (the delay pads zeros in front and drops as many
samples at the end). A teacher's features jump by ~12 % under a one-sample delay; this term lets a
projection be more stable than its teacher (``+experiment=stable``: distillation plus this term).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import BatchLoss, Frozen, same_shape
from .distill import _codebooks


def perturb(
    audio: torch.Tensor,
    max_delay: int = 480,
    gain_db: float = 0.1,
    noise_db: tuple[float, float] = (-80.0, -60.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """audio ``[B, C, S]`` -> the same shape, each clip changed in ways nobody hears.

    * a delay of ``d`` samples, log-uniform in ``[1, max_delay]`` (so one-sample shifts are as likely
      as 8-16 sample ones), zeros in front and ``d`` samples dropped at the end (0: no delay);
    * a gain uniform in ``[-gain_db, +gain_db]`` dB;
    * white noise at a level uniform in ``noise_db`` dB below the clip's RMS (``None``: no noise).

    Draws from ``generator`` (default: torch's global generator, which the training step seeds per step).
    """
    b, c, s = audio.shape
    device = audio.device
    rand = lambda *shape: torch.rand(*shape, generator=generator).to(device)
    out = audio
    if max_delay > 0:
        delays = (
            torch.exp(torch.rand(b, generator=generator) * math.log(max_delay + 1)).floor().long().clamp(1, max_delay)
        )
        idx = torch.arange(s, device=device)[None, :] - delays.to(device)[:, None]  # [B, S]
        shifted = torch.gather(out, 2, idx.clamp_min(0)[:, None, :].expand(b, c, s))
        out = torch.where((idx >= 0)[:, None, :], shifted, torch.zeros((), device=device, dtype=out.dtype))
    if gain_db:
        out = out * (10 ** ((2 * rand(b) - 1) * gain_db / 20))[:, None, None]
    if noise_db is not None:
        lo, hi = noise_db
        level = 10 ** ((lo + (hi - lo) * rand(b)) / 20)
        rms = audio.float().pow(2).mean(dim=(1, 2)).sqrt()
        noise = torch.randn(audio.shape, generator=generator).to(device)
        out = out + noise * (rms * level)[:, None, None]
    return out


class ConsistencyLoss(BatchLoss):
    """Relative squared difference of clean and perturbed features in the RVQ's input space.

    Args:
        quantizer: the frozen ResidualVQ (or a codec with ``.quantizer``); kept out of the state_dict.
        max_delay / gain_db / noise_db: the changes :func:`perturb` draws (48 kHz samples, dB, dB re RMS).
        detach_clean: the clean features are the target (no gradient through them), so the term can
            only move the perturbed branch towards what the other losses ask of the clean one.
        edge_frames: frames left out at each end of a clip.

    Logs ``same_q0``: the share of frames whose first-level code is the same for both (over the first 256
    frames of the batch).
    """

    name = "consistency"
    requires = ("features", "perturbed_features")

    def __init__(
        self,
        quantizer: nn.Module,
        weight: float = 1.0,
        max_delay: int = 480,
        gain_db: float = 0.1,
        noise_db: tuple[float, float] | None = (-80.0, -60.0),
        detach_clean: bool = True,
        edge_frames: int = 1,
        name: str | None = None,
    ):
        super().__init__(weight, name)
        if max_delay < 0 or edge_frames < 0:
            raise ValueError(f"max_delay and edge_frames must be >= 0, got {max_delay}, {edge_frames}")
        self._rvq = Frozen(getattr(quantizer, "quantizer", quantizer))
        self.max_delay, self.gain_db = int(max_delay), float(gain_db)
        self.noise_db = tuple(float(v) for v in noise_db) if noise_db is not None else None
        self.detach_clean, self.edge_frames = bool(detach_clean), int(edge_frames)

    def perturb(self, audio: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """audio ``[B, 2, S]`` -> the changed audio the step encodes for ``perturbed_features``."""
        return perturb(audio, self.max_delay, self.gain_db, self.noise_db, generator)

    def compute(self, batch):
        clean, changed = batch["features"].float(), batch["perturbed_features"].float()
        same_shape(self.name, clean, changed, "(features vs perturbed_features)")
        e = self.edge_frames
        if clean.shape[1] > 2 * e:
            clean, changed = clean[:, e : clean.shape[1] - e], changed[:, e : changed.shape[1] - e]
        rvq = self._rvq.module
        target = rvq.project_in(clean.detach() if self.detach_clean else clean)
        moved = rvq.project_in(changed)
        loss = (moved - target).pow(2).sum(-1).mean() / target.detach().pow(2).sum(-1).mean().clamp_min(1e-12)
        with torch.no_grad():  # first-level codes of (at most) 256 frames: a cheap log, not a full RVQ pass
            book = _codebooks(rvq)[0].float()
            first = lambda r: torch.cdist(r.reshape(-1, r.shape[-1])[:256], book).argmin(-1)
            same = (first(target) == first(moved)).float().mean()
        return loss, {"same_q0": same}


def perturbed_features(losses: nn.Module, audio: torch.Tensor, encode) -> torch.Tensor:
    """For the training step: features of ``audio`` changed by the first loss of ``losses`` (a LossSet) that
    has ``perturb``; ``encode(audio [B, 2, S]) -> features [B, T, 512]`` (with gradients to the projection)."""
    for loss in getattr(losses, "losses", {}).values():
        if hasattr(loss, "perturb"):
            return encode(loss.perturb(audio)).float()
    raise ValueError("a loss needs perturbed_features but no loss defines perturb() (add loss.consistency)")
