"""Command-line overrides of the training entry points.

Hydra appends ``+group=NAME`` after every entry of the primary config's defaults list, so an
appended experiment would be merged after ``debug`` and keep its own sizes. ``train.yaml`` therefore
lists ``experiment: null`` before ``debug: null`` (the merge order the configs need), and the entry
points read the card's spelling ``+experiment=NAME`` as the selection ``experiment=NAME``.
"""

from __future__ import annotations

import torch

_APPEND = "+experiment="


def select_experiment(overrides: list[str]) -> list[str]:
    """``+experiment=NAME`` -> ``experiment=NAME`` (everything else unchanged)."""
    return [arg[1:] if arg.startswith(_APPEND) else arg for arg in overrides]


def codec_device(setting: str | None, trainer_device: torch.device) -> torch.device:
    """Where the frozen codec loads: ``auto`` (or null) -> the trainer's device; an explicit one must match it.

    The codec runs inside the training step on the trainer's device, so another device cannot be honoured.
    """
    if setting in (None, "", "auto"):
        return torch.device(trainer_device)
    wanted = torch.device(str(setting))
    if wanted.type != torch.device(trainer_device).type:
        raise ValueError(
            f"codec.device={setting} but the trainer runs on {trainer_device}: the frozen codec runs "
            f"in the training step; set codec.device=auto or choose the trainer (trainer=cpu|gpu)"
        )
    return torch.device(trainer_device)
