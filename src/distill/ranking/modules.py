"""``nn.Module`` forms of the ranking losses (also exposed as ``distill.nn``): they validate
and store the options at construction, show them in ``repr`` and call the functional loss."""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
from torch import nn

from distill import penalties
from distill._reduce import Reduction
from distill._validation import REDUCTIONS, check_choice, check_number
from distill.ranking.listwise import listwise_distillation_loss
from distill.ranking.losses import PairwiseSignal as PairSignal
from distill.ranking.losses import pairwise_distillation_loss, pairwise_logistic_loss
from distill.ranking.pair_engine import Normalize
from distill.ranking.pairs import PairSet


class PairwiseDistillationLoss(nn.Module):
    """Module form of :func:`distill.ranking.pairwise_distillation_loss`.

    ``mean over pairs (i, j) in a group of ρ(Δ_teacher − Δ_student)`` (docs/formulas.md#pairs).

    Args:
        penalty: anything :func:`distill.penalties.get` accepts (parsed at construction).
        signal, absolute, pairs, normalize, reduction, temperature: as in
            :func:`~distill.ranking.pairwise_distillation_loss` (``temperature``: of the
            soft ranks of ``signal="rank"``).

    Raises:
        TypeError, ValueError: bad penalty spec or option (at construction).

    Reference: US 2023/0252281 Eqs. 3, 5–8.

    Example:
        >>> loss_fn = PairwiseDistillationLoss(penalty="absolute")
        >>> loss_fn(torch.zeros(3), torch.tensor([0.0, 1.0, 3.0]), torch.tensor([7, 7, 7]))
        tensor(2.)
    """

    def __init__(
        self,
        *,
        penalty: penalties.Penalty | str | dict[str, Any] = "squared",
        signal: PairSignal = "logit",
        absolute: bool = False,
        pairs: PairSet = "all",
        normalize: Normalize = "pair",
        reduction: Reduction = "mean",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.penalty = penalties.get(penalty)
        self.temperature = check_number("temperature", temperature, low=0.0, low_open=True)
        self.signal = check_choice("signal", signal, get_args(PairSignal))
        self.pairs = check_choice("pairs", pairs, get_args(PairSet))
        self.normalize = check_choice("normalize", normalize, get_args(Normalize))
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.absolute = absolute

    def forward(
        self,
        student_scores: torch.Tensor,
        teacher_scores: torch.Tensor,
        group_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return pairwise_distillation_loss(
            student_scores, teacher_scores, group_ids, labels, penalty=self.penalty,
            signal=self.signal, absolute=self.absolute, pairs=self.pairs,
            normalize=self.normalize, reduction=self.reduction, temperature=self.temperature,
        )  # fmt: skip

    def extra_repr(self) -> str:
        rank = f", temperature={self.temperature}" if self.signal == "rank" else ""
        return (
            f"penalty={self.penalty!r}, signal={self.signal!r}, absolute={self.absolute}, "
            f"pairs={self.pairs!r}, normalize={self.normalize!r}, reduction={self.reduction!r}"
            f"{rank}"
        )


class ListwiseDistillationLoss(nn.Module):
    """Module form of :func:`distill.ranking.listwise_distillation_loss` (ListNet per group).

    Args:
        temperature, reduction: as in :func:`~distill.ranking.listwise_distillation_loss`.

    Raises:
        ValueError: bad ``temperature`` or ``reduction`` (at construction).

    Reference: Cao et al. (2007), ListNet.

    Example:
        >>> ListwiseDistillationLoss()(torch.zeros(2), torch.zeros(2), torch.tensor([1, 1]))
        tensor(0.6931)
    """

    def __init__(self, *, temperature: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.temperature = check_number("temperature", temperature, low=0.0, low_open=True)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def forward(
        self, student_scores: torch.Tensor, teacher_scores: torch.Tensor, group_ids: torch.Tensor
    ) -> torch.Tensor:
        return listwise_distillation_loss(
            student_scores,
            teacher_scores,
            group_ids,
            temperature=self.temperature,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class PairwiseLogisticLoss(nn.Module):
    """Module form of :func:`distill.ranking.pairwise_logistic_loss` (RankNet, labels only).

    ``BCE(σ(s_i − s_j), P(i ≻ j))`` over the pairs of each group (docs/formulas.md#pairs).

    Args:
        ties, normalize, reduction: as in :func:`~distill.ranking.pairwise_logistic_loss`.

    Raises:
        ValueError: bad option (at construction).

    Reference: Burges et al. (2005), RankNet.

    Example:
        >>> loss_fn = PairwiseLogisticLoss()
        >>> loss_fn(torch.zeros(2), torch.tensor([0, 0]), torch.tensor([1.0, 0.0]))
        tensor(0.6931)
    """

    def __init__(
        self,
        *,
        ties: Literal["drop", "half"] = "drop",
        normalize: Normalize = "pair",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.ties = check_choice("ties", ties, ("drop", "half"))
        self.normalize = check_choice("normalize", normalize, get_args(Normalize))
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def forward(
        self, scores: torch.Tensor, group_ids: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        return pairwise_logistic_loss(
            scores, group_ids, labels, ties=self.ties, normalize=self.normalize,
            reduction=self.reduction,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"ties={self.ties!r}, normalize={self.normalize!r}, reduction={self.reduction!r}"
