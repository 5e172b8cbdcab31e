"""Distillation from the official encoder: match its features and its codes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import BatchLoss, Frozen, same_shape


class DistillFeatureLoss(BatchLoss):
    """Student ``features`` vs ``teacher_features``: MSE, or cosine distance (1 - cos) per frame."""

    name = "distill_feature"
    requires = ("features", "teacher_features")

    def __init__(self, weight: float = 1.0, mode: str = "mse", name: str | None = None):
        super().__init__(weight, name)
        if mode not in ("mse", "cosine"):
            raise ValueError(f"mode must be 'mse' or 'cosine', got {mode!r}")
        self.mode = mode

    def compute(self, batch):
        student, teacher = batch["features"].float(), batch["teacher_features"].float().detach()
        same_shape(self.name, student, teacher, "(features vs teacher_features)")
        if self.mode == "mse":
            return F.mse_loss(student, teacher)
        return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()


class DistillRVQInputLoss(BatchLoss):
    """MSE between student and teacher features as the RVQ sees them: after its ``project_in``.

    The codes are chosen in that ``codebook_dim``-sized space (8 for the embedded codec), so
    only those directions of the 512-d features decide the tokens; a plain feature MSE spends
    most of its effort elsewhere. ``quantizer``: the frozen ResidualVQ (or a codec).
    """

    name = "distill_rvq_input"
    requires = ("features", "teacher_features")

    def __init__(self, quantizer: nn.Module, weight: float = 1.0, name: str | None = None):
        super().__init__(weight, name)
        self._rvq = Frozen(getattr(quantizer, "quantizer", quantizer))

    def compute(self, batch):
        student, teacher = batch["features"].float(), batch["teacher_features"].float().detach()
        same_shape(self.name, student, teacher, "(features vs teacher_features)")
        project = self._rvq.module.project_in
        return F.mse_loss(project(student), project(teacher))


def _codebooks(quantizer: nn.Module) -> torch.Tensor:
    """``[Q, K, d]`` codebooks of a vector_quantize_pytorch ResidualVQ."""
    books = quantizer.codebooks
    if isinstance(books, (tuple, list)):
        books = torch.stack(list(books))
    return books


class DistillCodeLoss(BatchLoss):
    """Per-quantizer cross-entropy towards ``teacher_codes`` over negative squared distances.

    r_0 = project_in(features); for q = 0..Q-1: logits_q = -||r_q - e_{q,k}||^2 / tau over the
    codebook of layer q, CE against ``teacher_codes[:, q]``, then r_{q+1} = r_q - e_{q, teacher}
    (teacher forcing). The loss is the mean CE over quantizers; logs hold the accuracy of the
    nearest code per quantizer (``accuracy_q<i>``) and their mean (``accuracy``).

    ``quantizer``: the frozen ResidualVQ (or a codec with ``.quantizer``); kept out of the state_dict.
    """

    name = "distill_code"
    requires = ("features", "teacher_codes")

    def __init__(self, quantizer: nn.Module, weight: float = 1.0, tau: float = 1.0, name: str | None = None):
        super().__init__(weight, name)
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        self.tau = float(tau)
        self._rvq = Frozen(getattr(quantizer, "quantizer", quantizer))

    def compute(self, batch):
        rvq = self._rvq.module
        features, teacher = batch["features"], batch["teacher_codes"]
        books = _codebooks(rvq).float()  # [Q, K, d]
        b, t, _ = features.shape
        if teacher.shape != (b, books.shape[0], t):
            raise ValueError(f"loss {self.name!r}: teacher_codes must be [B, {books.shape[0]}, T] = "
                             f"{[b, books.shape[0], t]}, got {list(teacher.shape)}")
        residual = rvq.project_in(features.float())  # [B, T, d]
        ces, logs = [], {}
        for q in range(books.shape[0]):
            book, target = books[q], teacher[:, q].long()
            # same expansion of the squared distance as the library's nearest-code search
            dist = residual.pow(2).sum(-1, keepdim=True) - 2 * residual @ book.t() + book.pow(2).sum(-1)
            logits = -dist / self.tau
            ces.append(F.cross_entropy(logits.reshape(-1, book.shape[0]), target.reshape(-1)))
            logs[f"accuracy_q{q}"] = (logits.argmax(-1) == target).float().mean()
            residual = residual - book[target]
        logs["accuracy"] = torch.stack([logs[f"accuracy_q{q}"] for q in range(books.shape[0])]).mean()
        return torch.stack(ces).mean(), logs
