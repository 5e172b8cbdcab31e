"""Learning-rate schedule: linear warmup, then cosine decay to ``min_lr_ratio`` of the peak."""

from __future__ import annotations

import math


class WarmupCosine:
    """Multiplier for ``torch.optim.lr_scheduler.LambdaLR`` (a plain object, so its state is plain floats).

    step < warmup: (step + 1) / warmup; then cosine from 1 to ``min_lr_ratio`` at ``total_steps``;
    constant ``min_lr_ratio`` afterwards.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.warmup_steps = max(0, int(warmup_steps))
        self.total_steps = int(total_steps)
        self.min_lr_ratio = float(min_lr_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
