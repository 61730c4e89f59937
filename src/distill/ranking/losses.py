"""Pairwise ranking losses over query groups (docs/formulas.md#pairs, US 2023/0252281 Eq. 3;
the quantile-head losses are :mod:`distill.ranking.quantile_losses`).

Public through :mod:`distill.ranking`.

The student matches the teacher's score *differences* of item pairs inside each group:
``loss = mean over pairs of ρ(Δ_teacher − Δ_student)``, with any penalty ρ of
:mod:`distill.penalties`. Pairs are evaluated by :func:`distill.ranking.pair_engine.pair_sum`
(vectorised over ragged groups, O(pairs) memory); for squared, absolute, pinball, Huber, SmeLU
and the SmeLU-smoothed pinball on one per-item residual it sums all pairs exactly without
listing them (:mod:`distill.ranking.pair_sums`, ``docs/pair-sums.md``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from distill import penalties
from distill._reduce import Reduction
from distill._validation import (
    check_choice,
    check_finite,
    check_number,
    check_pair,
)
from distill.ranking.pair_engine import Normalize, pair_sum
from distill.ranking.pair_inputs import (
    check_score_groups,
    check_scores,
    labels_for,
    residual_items,
)
from distill.ranking.pair_sums import penalty_form
from distill.ranking.pairs import (
    SIGNALS,
    Pairs,
    PairSet,
    Signal,
    check_labels,
)
from distill.ranking.ranks import hard_ranks, soft_ranks

PairwiseSignal = Literal["logit", "prob", "pair_prob", "squared", "rank"]
PAIRWISE_SIGNALS = (*SIGNALS, "rank")
PenaltySpec = penalties.Penalty | str | dict[str, Any]


def pairwise_distillation_loss(
    student_scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    group_ids: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    penalty: PenaltySpec = "squared",
    signal: PairwiseSignal = "logit",
    absolute: bool = False,
    pairs: PairSet | Pairs = "all",
    normalize: Normalize = "pair",
    reduction: Reduction = "mean",
    temperature: float = 1.0,
) -> torch.Tensor:
    """Pairwise distillation: ``mean over pairs of ρ(Δ_teacher − Δ_student)``
    (docs/formulas.md#pairs).

    ``Δ`` is the pair's difference signal (see :func:`distill.ranking.pairs.difference`): ``logit``
    ``s_i − s_j``, ``prob`` ``σ(s_i) − σ(s_j)``, ``pair_prob`` ``σ(s_i − s_j)``, ``squared``
    ``s_i² − s_j²``, optionally ``|Δ|``; ``rank`` ``rank_i − rank_j``: the teacher's hard ranks
    within the group against the student's soft ranks ``½ + Σ_{k≠i} σ((s_k − s_i)/T)``
    (:func:`~distill.ranking.ranks.soft_ranks`; "the difference in rankings" of
    US 2023/0252281 ¶0050; its ranks sum over every pair of a group, whatever ``pairs``
    selects). Squared = Eq. 3, pinball on logit/prob/pair_prob = Eqs. 5/6/7, absolute = Eq. 8;
    Huber, log-cosh, G-SmeLU, smoothed pinball also work. The teacher is detached. ``pinball``
    with τ = 0.5 is half of ``absolute``, so their weights differ by a factor 2. For
    ``logit``/``prob``/``squared`` (and ``rank``, whose ranks are per-item values) without
    ``absolute``, with squared, absolute, pinball, Huber, SmeLU or the SmeLU-smoothed pinball
    over ``"all"`` or ``"unequal"`` pairs and a reduced result, the pairs are summed in closed
    form in O(n log n) per group (same value and gradient; ``docs/pair-sums.md``).

    Args:
        student_scores: ``(N,)`` student logits, one per item.
        teacher_scores: ``(N,)`` teacher logits, same dtype and device.
        group_ids: ``(N,)`` integer group ids (any order; pairs only inside a group).
        labels: ``(N,)`` labels, required for ``pairs="unequal"``.
        penalty: anything :func:`distill.penalties.get` accepts.
        signal: ``"logit"``, ``"prob"``, ``"pair_prob"``, ``"squared"`` or ``"rank"``.
        absolute: use ``|Δ|`` for both teacher and student.
        pairs: ``"all"``, ``"unequal"`` (``labels[i] > labels[j]``) or explicit
            :class:`~distill.ranking.pairs.Pairs` (e.g. sampled with ``max_pairs_per_group``).
        normalize: ``"pair"`` (mean over the batch's pairs) or ``"group"`` (mean of per-group
            means over the groups that have pairs).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per pair, in
            :func:`~distill.ranking.pairs.make_pairs` order; with ``"group"`` each divided by its
            group's pair count).
        temperature: ``T > 0`` of the student's soft ranks (``signal="rank"`` only).

    Returns:
        A scalar (``(P,)`` for ``"none"``); 0 with finite gradients when there are no pairs.

    Raises:
        TypeError: non-float scores, non-integer ``group_ids``, bad ``penalty`` type.
        ValueError: shape/length mismatch, NaN/inf scores, ``labels`` missing for
            ``"unequal"``, unknown option or penalty, ``temperature <= 0``.

    Reference: US 2023/0252281 Eqs. 3, 5–8 (pairwise L2, quantile and L1 distillation);
    docs/formulas.md#pairs.

    Example:
        >>> s, t = torch.tensor([0.0, 3.0, 1.0]), torch.tensor([0.0, 1.0, 1.0])
        >>> pairwise_distillation_loss(s, t, torch.tensor([0, 0, 0]), penalty="absolute")
        tensor(1.3333)
    """
    check_scores("student_scores", student_scores, 1)
    check_pair("teacher_scores", teacher_scores, "student_scores", student_scores)
    check_finite("teacher_scores", teacher_scores)
    check_score_groups(group_ids, student_scores, "student_scores")
    rho = penalties.get(penalty)
    check_number("temperature", temperature, low=0.0, low_open=True)
    if check_choice("signal", signal, PAIRWISE_SIGNALS) == "rank":
        student_scores = soft_ranks(student_scores, group_ids, temperature=temperature)
        teacher_scores, signal = hard_ranks(teacher_scores, group_ids), "logit"
    items, residual = residual_items(student_scores, teacher_scores, signal, absolute)
    return pair_sum(
        items,
        group_ids,
        labels_for(pairs, labels, group_ids),
        term=lambda first, second: rho(residual(first, second)),
        pairs=pairs,
        normalize=normalize,
        reduction=reduction,
        form=penalty_form(rho),
    )


def pairwise_logistic_loss(
    scores: torch.Tensor,
    group_ids: torch.Tensor,
    labels: torch.Tensor,
    *,
    ties: Literal["drop", "half"] = "drop",
    normalize: Normalize = "pair",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """RankNet: ``BCE(σ(s_i − s_j), P(i ≻ j))`` over the pairs of each group
    (docs/formulas.md#pairs).

    ``P(i ≻ j)`` is 1, 0.5 or 0 from the labels. ``ties="drop"`` uses only pairs with
    different labels (``"unequal"``, target 1: ``softplus(s_j − s_i)``); ``"half"`` uses all
    pairs, ties with target 0.5.

    Args:
        scores: ``(N,)`` student logits.
        group_ids: ``(N,)`` integer group ids.
        labels: ``(N,)`` relevance labels (grades or clicks).
        ties: ``"drop"`` or ``"half"``.
        normalize, reduction: as in :func:`pairwise_distillation_loss`.

    Returns:
        A scalar (``(P,)`` for ``"none"``); 0 with finite gradients when there are no pairs.

    Raises:
        TypeError / ValueError: as in :func:`pairwise_distillation_loss`.

    Reference: Burges et al. (2005), RankNet; the label-only baseline of docs/formulas.md#pairs.

    Example:
        >>> pairwise_logistic_loss(torch.tensor([0.0, 0.0]), torch.tensor([1, 1]),
        ...                        torch.tensor([1.0, 0.0]))
        tensor(0.6931)
    """
    check_scores("scores", scores, 1)
    check_score_groups(group_ids, scores, "scores")
    check_labels(labels, group_ids)
    check_choice("ties", ties, ("drop", "half"))

    if ties == "drop":  # unequal pairs oriented so that i is better: target 1
        return pair_sum(
            (scores,),
            group_ids,
            labels,
            term=lambda first, second: F.softplus(second[0] - first[0]),
            pairs="unequal",
            normalize=normalize,
            reduction=reduction,
        )

    def logistic(first, second):
        logit = first[0] - second[0]
        target = (torch.sign(first[1] - second[1]) + 1) / 2
        return F.binary_cross_entropy_with_logits(logit, target.expand_as(logit), reduction="none")

    return pair_sum(
        (scores, labels.to(scores.dtype)),
        group_ids,
        term=logistic,
        normalize=normalize,
        reduction=reduction,
    )


@torch.no_grad()
def pair_agreement(
    student_scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    group_ids: torch.Tensor,
    threshold: float,
    *,
    signal: Signal = "logit",
    labels: torch.Tensor | None = None,
    pairs: PairSet = "all",
) -> float:
    """Share of pairs whose difference is within ``threshold`` of the teacher's.

    ``mean over pairs of [|Δ_teacher − Δ_student| ≤ threshold]`` — the stopping check of
    US 2023/0252281 claim 1 (train until enough pairs agree). 1.0 when there are no pairs.

    Args:
        student_scores, teacher_scores: ``(N,)`` logits.
        group_ids: ``(N,)`` integer group ids.
        threshold: tolerance ``>= 0`` on the pair-difference residual.
        signal, labels, pairs: as in :func:`pairwise_distillation_loss`.

    Returns:
        A Python float in ``[0, 1]``.

    Raises:
        TypeError / ValueError: as in :func:`pairwise_distillation_loss`; negative threshold.

    Reference: US 2023/0252281 claim 1 (pairwise agreement threshold).

    Example:
        >>> pair_agreement(torch.tensor([0.0, 1.0, 5.0]), torch.tensor([0.0, 1.0, 2.0]),
        ...                torch.tensor([0, 0, 0]), 0.5)
        0.3333333333333333
    """
    check_scores("student_scores", student_scores, 1)
    check_pair("teacher_scores", teacher_scores, "student_scores", student_scores)
    check_finite("teacher_scores", teacher_scores)
    check_score_groups(group_ids, student_scores, "student_scores")
    threshold = check_number("threshold", threshold, low=0.0)
    items, residual = residual_items(student_scores, teacher_scores, signal, False)
    within = pair_sum(
        items,
        group_ids,
        labels_for(pairs, labels, group_ids),
        term=lambda first, second: residual(first, second).abs() <= threshold,
        pairs=pairs,
        reduction="none",
    )
    return int(within.sum()) / within.numel() if within.numel() else 1.0
