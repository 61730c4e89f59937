"""``nn.Module`` wrappers around :mod:`distill.losses`, :mod:`distill.intermediate` and
:mod:`distill.ranking`: validate and store hyperparameters (and learnable width maps) at
construction, show them in ``repr``, call the functional loss. The ranking ones are defined
in :mod:`distill.ranking.modules` and exposed here too."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill import penalties
from distill._reduce import Reduction
from distill._validation import REDUCTIONS, check_choice
from distill.intermediate import hidden_distillation_loss, hint_loss, hint_regressor, projection
from distill.losses import (
    Signal,
    _check_binary_options,
    _check_kd_options,
    binary_kd_loss,
    kd_loss,
    logit_matching_loss,
    pointwise_distillation_loss,
)
from distill.ranking.modules import (
    ListwiseDistillationLoss,
    PairwiseDistillationLoss,
    PairwiseLogisticLoss,
)


class KDLoss(nn.Module):
    """Module form of :func:`distill.losses.kd_loss` (Hinton KD,
    docs/formulas.md#classification-kd).

    ``α · T² · KL(softmax_T(v) ‖ softmax_T(z)) + (1 − α) · CE(y, softmax(z))``, batchmean.

    Args:
        temperature, alpha, scale_t2, ignore_index, reduction: as in :func:`kd_loss`.

    Raises:
        ValueError: bad hyperparameters (at construction).

    Reference: Hinton, Vinyals & Dean (2015).

    Example:
        >>> loss_fn = KDLoss(temperature=2.0, alpha=0.5)
        >>> loss_fn(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
        tensor(0.5493)
    """

    def __init__(
        self,
        *,
        temperature: float = 4.0,
        alpha: float = 0.9,
        scale_t2: bool = True,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.temperature, self.alpha = _check_kd_options(temperature, alpha, reduction)
        self.scale_t2, self.ignore_index, self.reduction = scale_t2, ignore_index, reduction

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        *,
        teacher_probs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return kd_loss(
            student_logits,
            teacher_logits,
            target,
            teacher_probs=teacher_probs,
            temperature=self.temperature,
            alpha=self.alpha,
            scale_t2=self.scale_t2,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, alpha={self.alpha}, scale_t2={self.scale_t2}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
        )


class BinaryKDLoss(nn.Module):
    """Module form of :func:`distill.losses.binary_kd_loss` (joint model's E(x | T), §3).

    ``W · H(σ(v/T), σ(z)) + (1 − W) · H(y, σ(z))``.

    Args:
        temperature, soft_weight, temper_student, reduction: as in :func:`binary_kd_loss`.

    Raises:
        ValueError: bad hyperparameters (at construction).

    Reference: docs/formulas.md#binary-kd.

    Example:
        >>> BinaryKDLoss(temperature=2.0)(torch.zeros(3), torch.zeros(3), torch.ones(3))
        tensor(0.6931)
    """

    def __init__(
        self,
        *,
        temperature: float = 1.0,
        soft_weight: float = 0.5,
        temper_student: bool = False,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.temperature, self.soft_weight = _check_binary_options(
            temperature, soft_weight, temper_student, reduction
        )
        self.temper_student, self.reduction = temper_student, reduction

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        target: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return binary_kd_loss(
            student_logits,
            teacher_logits,
            target,
            temperature=self.temperature,
            soft_weight=self.soft_weight,
            temper_student=self.temper_student,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, soft_weight={self.soft_weight}, "
            f"temper_student={self.temper_student}, reduction={self.reduction!r}"
        )


class LogitMatchingLoss(nn.Module):
    """Module form of :func:`distill.losses.logit_matching_loss`: ``mean((z − v)²)``.

    Args:
        center, reduction: as in :func:`logit_matching_loss`.

    Raises:
        ValueError: bad ``reduction`` (at construction).

    Reference: Ba & Caruana (2014).

    Example:
        >>> LogitMatchingLoss(center=True)(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]]))
        tensor(1.)
    """

    def __init__(self, *, center: bool = False, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.center, self.reduction = center, check_choice("reduction", reduction, REDUCTIONS)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        return logit_matching_loss(
            student_logits, teacher_logits, center=self.center, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"center={self.center}, reduction={self.reduction!r}"


class PointwiseDistillationLoss(nn.Module):
    """Module form of :func:`distill.losses.pointwise_distillation_loss`: ``ρ(t − s)``.

    Args:
        penalty: anything :func:`distill.penalties.get` accepts (parsed at construction).
        signal, reduction: as in :func:`pointwise_distillation_loss`.

    Raises:
        TypeError, ValueError: bad penalty spec, ``signal`` or ``reduction`` (at construction).

    Reference: US 2023/0252281 ¶0052, ¶0103.

    Example:
        >>> loss_fn = PointwiseDistillationLoss(penalty={"name": "huber", "beta": 0.5})
        >>> loss_fn(torch.tensor([0.0, 0.0]), torch.tensor([0.25, 2.0]))
        tensor(0.9062)
    """

    def __init__(
        self,
        *,
        penalty: penalties.Penalty | str | dict[str, Any],
        signal: Signal = "logit",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.penalty = penalties.get(penalty)
        self.signal = check_choice("signal", signal, ("logit", "prob"))
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return pointwise_distillation_loss(
            student, teacher, penalty=self.penalty, signal=self.signal, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"penalty={self.penalty!r}, signal={self.signal!r}, reduction={self.reduction!r}"


class HiddenDistillationLoss(nn.Module):
    """Module form of :func:`distill.intermediate.hidden_distillation_loss` that owns ``W_h``.

    ``MSE(H_S·W_h, H_T)``; ``W_h = nn.Linear(d', d)`` when the widths differ, else none. Train
    its parameters with the student's (``[*student.parameters(), *loss_fn.parameters()]``);
    they are not part of the student. Also the embedding loss (``W_e``).

    Reference: Jiao et al. 2019, "TinyBERT", Eq. 8–9; ``docs/intermediate.md``.

    Example:
        >>> loss_fn = HiddenDistillationLoss(64, 128)
        >>> loss_fn(torch.zeros(2, 8, 64), torch.zeros(2, 8, 128)).shape
        torch.Size([])
    """

    def __init__(
        self, student_width: int, teacher_width: int, *, reduction: Reduction = "mean"
    ) -> None:
        super().__init__()
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.projection = (
            projection(student_width, teacher_width) if student_width != teacher_width else None
        )

    def forward(self, student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
        return hidden_distillation_loss(
            student_hidden, teacher_hidden, projection=self.projection, reduction=self.reduction
        )


class HintLoss(nn.Module):
    """Module form of :func:`distill.intermediate.hint_loss` that owns the FitNets regressor.

    ``½·‖u_h(x) − r(v_g(x))‖²`` per example; ``r`` from
    :func:`distill.intermediate.hint_regressor` (per-example shapes ``(D,)`` or ``(C, H, W)``).

    Reference: Romero et al. 2015, "FitNets"; ``docs/intermediate.md``.

    Example:
        >>> loss_fn = HintLoss((16, 8, 8), (32, 4, 4))
        >>> loss_fn(torch.zeros(2, 16, 8, 8), torch.zeros(2, 32, 4, 4)).shape
        torch.Size([])
    """

    def __init__(
        self,
        student_shape: tuple[int, ...],
        teacher_shape: tuple[int, ...],
        *,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.regressor = hint_regressor(student_shape, teacher_shape)

    def forward(self, student_guided: torch.Tensor, teacher_hint: torch.Tensor) -> torch.Tensor:
        return hint_loss(
            student_guided, teacher_hint, regressor=self.regressor, reduction=self.reduction
        )


__all__ = [
    "BinaryKDLoss",
    "HiddenDistillationLoss",
    "HintLoss",
    "KDLoss",
    "ListwiseDistillationLoss",
    "LogitMatchingLoss",
    "PairwiseDistillationLoss",
    "PairwiseLogisticLoss",
    "PointwiseDistillationLoss",
]
