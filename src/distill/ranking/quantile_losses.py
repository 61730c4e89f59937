"""Quantile-head ranking losses: each head k learns the τ_k-quantile of the teacher's pair
differences (pairwise) or scores (pointwise) by a pinball penalty (docs/formulas.md#quantile-heads,
US 2023/0252281 FIG. 4 / FIG. 5, Eqs. 5–7).

Public through :mod:`distill.ranking`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from distill import penalties
from distill._reduce import Reduction, reduce_loss
from distill._validation import check_choice, check_number, check_pair
from distill.ranking.pair_engine import Normalize, pair_sum
from distill.ranking.pair_inputs import (
    check_score_groups,
    check_scores,
    labels_for,
    residual_items,
)
from distill.ranking.pair_sums import quantile_form
from distill.ranking.pairs import Pairs, PairSet, Signal, item_signal


def _check_taus(taus: Sequence[float], quantile_scores: torch.Tensor) -> list[float]:
    if len(taus) == 0:
        raise ValueError(f"`taus` must hold at least one quantile, got {list(taus)}")
    taus = [check_number("taus", tau, low=0.0, high=1.0) for tau in taus]
    if len(taus) != quantile_scores.shape[1]:
        raise ValueError(
            f"`taus` has {len(taus)} quantiles but `quantile_scores` has "
            f"{quantile_scores.shape[1]} heads"
        )
    return taus


def _summed_pinball(residual: torch.Tensor, taus: list[float]) -> torch.Tensor:
    """``Σ_k pinball_{τ_k}(r[..., k])``: head k is trained for quantile τ_k."""
    return sum(penalties.pinball(residual[..., k], tau) for k, tau in enumerate(taus))


def quantile_ranking_loss(
    quantile_scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    group_ids: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    taus: Sequence[float],
    signal: Signal = "logit",
    pairs: PairSet | Pairs = "all",
    normalize: Normalize = "pair",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Pairwise quantile-head loss: ``Σ_k pinball_{τ_k}(Δ_teacher − Δ_{q_k})``
    (docs/formulas.md#quantile-heads).

    Head k's pair difference is trained toward the τ_k-quantile of the teacher's pair
    difference; the heads are summed, then averaged over pairs. A single τ = 0.5 is L1.

    Args:
        quantile_scores: ``(N, K)`` head outputs (e.g. from
            :func:`distill.ranking.heads.with_quantile_heads`).
        teacher_scores: ``(N,)`` teacher logits, same dtype and device.
        group_ids, labels, signal, pairs, normalize, reduction: as in
            :func:`~distill.ranking.pairwise_distillation_loss`.
        taus: K quantiles in ``[0, 1]``, one per head.

    Returns:
        A scalar (``(P,)`` for ``"none"``).

    Raises:
        TypeError / ValueError: as in :func:`~distill.ranking.pairwise_distillation_loss`;
            ``taus`` not matching the number of heads or outside ``[0, 1]``.

    Reference: US 2023/0252281 FIG. 4 / FIG. 5 (quantile heads), Eqs. 5–7;
    docs/formulas.md#quantile-heads.

    Example:
        >>> q = torch.tensor([[0.0], [2.0]])
        >>> quantile_ranking_loss(q, torch.tensor([0.0, 1.0]), torch.tensor([0, 0]), taus=[0.5])
        tensor(0.5000)
    """
    check_scores("quantile_scores", quantile_scores, 2)
    taus = _check_taus(taus, quantile_scores)
    check_scores("teacher_scores", teacher_scores, 1)
    check_pair("teacher_scores", teacher_scores, "quantile_scores", quantile_scores[:, 0])
    check_score_groups(group_ids, quantile_scores, "quantile_scores")
    items, residual = residual_items(quantile_scores, teacher_scores, signal, False)
    return pair_sum(
        items,
        group_ids,
        labels_for(pairs, labels, group_ids),
        term=lambda first, second: _summed_pinball(residual(first, second), taus),
        pairs=pairs,
        normalize=normalize,
        reduction=reduction,
        form=quantile_form(taus),
    )


def quantile_distillation_loss(
    quantile_scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    *,
    taus: Sequence[float],
    signal: Literal["logit", "prob"] = "logit",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Pointwise quantile-head loss: ``Σ_k pinball_{τ_k}(h(t) − h(q_k))`` per item.

    ``h`` is the identity (``"logit"``) or the sigmoid (``"prob"``); the heads are summed,
    then averaged over items.

    Args:
        quantile_scores: ``(N, K)`` head outputs.
        teacher_scores: ``(N,)`` teacher logits (detached).
        taus: K quantiles in ``[0, 1]``, one per head.
        signal: ``"logit"`` or ``"prob"``.
        reduction: ``"mean"`` (over items), ``"sum"`` or ``"none"`` (``(N,)``).

    Returns:
        A scalar, or ``(N,)`` for ``"none"``.

    Raises:
        TypeError / ValueError: non-float or non-finite scores, shape mismatch, bad ``taus``.

    Reference: US 2023/0252281 FIG. 4 / FIG. 5 with pointwise targets;
    docs/formulas.md#quantile-heads.

    Example:
        >>> quantile_distillation_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([1.0]),
        ...                            taus=[0.1, 0.9])
        tensor(1.)
    """
    check_scores("quantile_scores", quantile_scores, 2)
    check_scores("teacher_scores", teacher_scores, 1)
    check_pair("teacher_scores", teacher_scores, "quantile_scores", quantile_scores[:, 0])
    check_choice("signal", signal, ("logit", "prob"))
    taus = _check_taus(taus, quantile_scores)
    teacher = item_signal(teacher_scores.detach(), signal).unsqueeze(-1)
    residual = teacher - item_signal(quantile_scores, signal)
    return reduce_loss(_summed_pinball(residual, taus), reduction)
