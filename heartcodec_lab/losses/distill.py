"""Distillation from the official encoder: match its features and its codes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import BatchLoss, Frozen, same_shape


def relative_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``sum (s - t)^2 / sum t^2`` over the batch: the squared error relative to the teacher's own energy.

    Scale-free, so it weighs the same whatever the teacher's feature scale (the miniature's true
    encoder and vqv12 differ by orders of magnitude) and keeps pulling when the error is already small.
    """
    return (student - teacher).pow(2).sum() / teacher.pow(2).sum().clamp_min(1e-12)


class DistillFeatureLoss(BatchLoss):
    """Student ``features`` vs ``teacher_features``: MSE, relative MSE (``relative_mse``), or cosine distance."""

    name = "distill_feature"
    requires = ("features", "teacher_features")

    def __init__(self, weight: float = 1.0, mode: str = "mse", name: str | None = None):
        super().__init__(weight, name)
        if mode not in ("mse", "relative", "cosine"):
            raise ValueError(f"mode must be 'mse', 'relative' or 'cosine', got {mode!r}")
        self.mode = mode

    def compute(self, batch):
        student, teacher = batch["features"].float(), batch["teacher_features"].float().detach()
        same_shape(self.name, student, teacher, "(features vs teacher_features)")
        if self.mode == "mse":
            return F.mse_loss(student, teacher)
        if self.mode == "relative":
            return relative_mse(student, teacher)
        return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()


class DistillRVQInputLoss(BatchLoss):
    """MSE between student and teacher features as the RVQ sees them: after its ``project_in``.

    The codes are chosen in that ``codebook_dim``-sized space (8 for the embedded codec), so
    only those directions of the 512-d features decide the tokens; a plain feature MSE spends
    most of its effort elsewhere. ``quantizer``: the frozen ResidualVQ (or a codec).

    ``normalize=True`` divides by the teacher's own energy in that space (:func:`relative_mse`):
    the value is the relative feature error squared (0.01 = 10 %), independent of the codec's scale.
    ``per_level=True`` averages, over levels q, the per-frame error relative to the energy of the
    teacher's residual at level q in that frame (what is left after its first q codes, floored at a
    tenth of the batch mean): deep levels choose between codes that are far closer together, so an
    error that is negligible for q0 flips q5; this weighs each frame's error by what it costs there.
    The logs hold ``relative_error`` (sqrt of the relative MSE, a fraction).
    """

    name = "distill_rvq_input"
    requires = ("features", "teacher_features")

    def __init__(
        self,
        quantizer: nn.Module,
        weight: float = 1.0,
        normalize: bool = False,
        per_level: bool = False,
        name: str | None = None,
    ):
        super().__init__(weight, name)
        self._rvq = Frozen(getattr(quantizer, "quantizer", quantizer))
        self.normalize, self.per_level = bool(normalize), bool(per_level)

    def compute(self, batch):
        student, teacher = batch["features"].float(), batch["teacher_features"].float().detach()
        same_shape(self.name, student, teacher, "(features vs teacher_features)")
        rvq = self._rvq.module
        s, t = rvq.project_in(student), rvq.project_in(teacher)
        rel = relative_mse(s, t)
        logs = {"relative_error": rel.detach().sqrt()}
        if not (self.normalize or self.per_level):
            return F.mse_loss(s, t), logs
        if not self.per_level:
            return rel, logs
        err = (s - t).pow(2).sum(-1)  # [B, T]
        books = _codebooks(rvq).float()
        residual, terms = t, []
        with torch.no_grad():
            codes = batch.get("teacher_codes")
            if codes is None:
                codes = _nearest_residual_codes(books, t)
        for q in range(books.shape[0]):
            energy = residual.pow(2).sum(-1)  # [B, T]: this level's residual, per frame
            floor = 0.1 * energy.mean()  # frames whose residual is ~0 must not dominate
            terms.append((err / (energy + floor).clamp_min(1e-12)).mean())
            residual = residual - books[q][codes[:, q]]
        return torch.stack(terms).mean(), logs


@torch.no_grad()
def _nearest_residual_codes(books: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Greedy residual codes ``[B, Q, T]`` of ``r [B, T, d]`` in the codebooks ``[Q, K, d]``."""
    codes = []
    for book in books:
        dist = r.pow(2).sum(-1, keepdim=True) - 2 * r @ book.t() + book.pow(2).sum(-1)
        c = dist.argmin(-1)
        codes.append(c)
        r = r - book[c]
    return torch.stack(codes, 1)


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

    ``mode="ce"`` (the above) has its optimum *not* at the teacher's features: it keeps pulling each
    residual towards the centre of the teacher's code and away from its neighbours, at every level
    at once (with teacher forcing all levels see the same feature error), so it fights a feature
    regression and stalled distillation at ~58 % q0 on the miniature. ``mode="hinge"`` is zero
    wherever the student already picks the teacher's code: per level, ``relu(d_teacher - d_best_other)``
    divided by the mean energy of the teacher-forced residual at that level, so it only moves frames
    that are wrong and leaves the teacher's own features a minimum.

    ``quantizer``: the frozen ResidualVQ (or a codec with ``.quantizer``); kept out of the state_dict.
    """

    name = "distill_code"
    requires = ("features", "teacher_codes")

    def __init__(
        self, quantizer: nn.Module, weight: float = 1.0, tau: float = 1.0, mode: str = "ce", name: str | None = None
    ):
        super().__init__(weight, name)
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        if mode not in ("ce", "hinge"):
            raise ValueError(f"mode must be 'ce' or 'hinge', got {mode!r}")
        self.tau, self.mode = float(tau), mode
        self._rvq = Frozen(getattr(quantizer, "quantizer", quantizer))

    def compute(self, batch):
        rvq = self._rvq.module
        features, teacher = batch["features"], batch["teacher_codes"]
        books = _codebooks(rvq).float()  # [Q, K, d]
        b, t, _ = features.shape
        if teacher.shape != (b, books.shape[0], t):
            raise ValueError(
                f"loss {self.name!r}: teacher_codes must be [B, {books.shape[0]}, T] = "
                f"{[b, books.shape[0], t]}, got {list(teacher.shape)}"
            )
        residual = rvq.project_in(features.float())  # [B, T, d]
        ces, logs = [], {}
        for q in range(books.shape[0]):
            book, target = books[q], teacher[:, q].long()
            # same expansion of the squared distance as the library's nearest-code search
            dist = residual.pow(2).sum(-1, keepdim=True) - 2 * residual @ book.t() + book.pow(2).sum(-1)
            logits = -dist / self.tau
            if self.mode == "ce":
                ces.append(F.cross_entropy(logits.reshape(-1, book.shape[0]), target.reshape(-1)))
            else:
                d_target = dist.gather(-1, target[..., None])[..., 0]
                d_other = dist.scatter(-1, target[..., None], float("inf")).amin(-1)
                scale = residual.detach().pow(2).sum(-1).mean().clamp_min(1e-12)
                ces.append(F.relu(d_target - d_other).mean() / scale)
            logs[f"accuracy_q{q}"] = (logits.argmax(-1) == target).float().mean()
            residual = residual - book[target]
        logs["accuracy"] = torch.stack([logs[f"accuracy_q{q}"] for q in range(books.shape[0])]).mean()
        return torch.stack(ces).mean(), logs
