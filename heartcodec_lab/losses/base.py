"""Loss modules that read a training batch dict, and LossSet that weighs and logs them.

Batch keys (filled by the training step; a loss lists the ones it reads in ``requires``):

==================  ===============  =================================================
``audio``           ``[B, 2, S]``    target audio at 48 kHz
``recon``           ``[B, 2, S]``    reconstruction of ``audio``
``features``        ``[B, T, 512]``  projection output before quantization
``quantized``       ``[B, T, 512]``  straight-through quantized ``features`` (in the codebook space)
``codes``           ``[B, 8, T]``    RVQ codes of ``features``
``latents``         ``[B, 256, 2T]`` ScalarModel latents of ``audio`` (cat(left, right))
``teacher_features``  ``[B, T, 512]``  official encoder features
``teacher_codes``   ``[B, 8, T]``    official encoder codes
==================  ===============  =================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from heartcodec_lab.codec.runtime import freeze


class BatchLoss(nn.Module):
    """Base: ``forward(batch) -> scalar``; ``weight`` scales it in a :class:`LossSet`.

    Subclasses implement ``compute(batch)`` returning a scalar tensor, or ``(scalar, logs)``
    where ``logs`` maps short names to extra scalars (e.g. accuracies) for logging.
    """

    name: str = "loss"
    requires: tuple[str, ...] = ()

    def __init__(self, weight: float = 1.0, name: str | None = None):
        super().__init__()
        self.weight = float(weight)
        if name is not None:
            self.name = name
        self.last_logs: dict[str, torch.Tensor] = {}

    def compute(self, batch: Mapping[str, torch.Tensor]):
        raise NotImplementedError

    def check_batch(self, batch: Mapping[str, torch.Tensor]) -> None:
        missing = [k for k in self.requires if k not in batch]
        if missing:
            raise KeyError(f"loss {self.name!r} needs batch keys {missing} (has {sorted(batch)})")

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self.check_batch(batch)
        out = self.compute(batch)
        value, logs = out if isinstance(out, tuple) else (out, {})
        self.last_logs = {k: v.detach() if torch.is_tensor(v) else torch.tensor(float(v)) for k, v in logs.items()}
        return value

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weight={self.weight}"


class Frozen:
    """Holds a frozen module without registering it as a submodule.

    Losses that use parts of the codec keep them here, so the codec's (large) weights are not
    part of the loss's state_dict or parameters, and moving / training the loss leaves it alone.
    """

    def __init__(self, module: nn.Module):
        self.module = freeze(module)


def same_shape(name: str, a: torch.Tensor, b: torch.Tensor, what: str = "") -> None:
    if a.shape != b.shape:
        raise ValueError(f"loss {name!r}: shapes differ {tuple(a.shape)} vs {tuple(b.shape)} {what}".rstrip())


class LossSet(nn.Module):
    """A weighted sum of :class:`BatchLoss` modules.

    ``forward(batch) -> (total, logs)``; ``logs`` holds ``loss/<name>`` (unweighted, detached)
    for every loss, ``loss/<name>/<key>`` for their extra logs, and ``loss/total``. A loss with
    weight 0 is computed under ``no_grad`` and logged but not added to the total.
    """

    def __init__(self, losses: Sequence[BatchLoss] | Mapping[str, BatchLoss]):
        super().__init__()
        if isinstance(losses, Mapping):
            items = list(losses.items())
            for key, loss in items:
                loss.name = key
        else:
            items = [(loss.name, loss) for loss in losses]
        names = [k for k, _ in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate loss names {dupes}; give each loss a distinct name")
        if not items:
            raise ValueError("LossSet needs at least one loss")
        self.losses = nn.ModuleDict(items)

    @property
    def requires(self) -> set[str]:
        """Batch keys some loss reads (the training step can skip work nobody needs)."""
        return {k for loss in self.losses.values() for k in loss.requires}

    def __getitem__(self, name: str) -> BatchLoss:
        return self.losses[name]

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total = None
        logs: dict[str, torch.Tensor] = {}
        for name, loss in self.losses.items():
            if loss.weight == 0:
                with torch.no_grad():
                    value = loss(batch)
            else:
                value = loss(batch)
                term = loss.weight * value
                total = term if total is None else total + term
            logs[f"loss/{name}"] = value.detach()
            logs.update({f"loss/{name}/{k}": v for k, v in loss.last_logs.items()})
        if total is None:
            # every weight is 0: nothing to optimize, but keep a tensor the caller can log
            total = torch.zeros((), device=value.device)
        logs["loss/total"] = total.detach()
        return total, logs
