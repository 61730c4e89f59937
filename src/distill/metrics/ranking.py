"""Ranking metrics over ragged, unsorted groups: NDCG@k, MRR and pair accuracy.

All three are vectorised (one sort, no Python loop over groups; see ``_groups``). Tie rule: rows
with equal scores are ordered worst case first, i.e. by (group ↑, score ↓, label ↑); a pair with
equal scores counts as mis-ordered. Groups where the metric is undefined (no relevant item,
IDCG = 0, no label-ordered pair) are excluded from the mean and counted in ``n_excluded``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from distill._validation import check_choice, check_positive_int
from distill.metrics._groups import (
    Ranked,
    check_group_inputs,
    rank_groups,
    run_ends,
    sort_values,
)

Gain = Literal["exp2", "linear"]
_MAX_PAIR_LEVELS = 256


@dataclass(frozen=True)
class GroupMetric:
    """A group metric: the mean over included groups plus the per-group values.

    Attributes:
        value: mean over included groups (NaN when every group is excluded).
        n_groups: number of included groups.
        n_excluded: number of groups where the metric is undefined (left out of ``value``).
        groups: ``(G,)`` all group ids, ascending.
        per_group: ``(G,)`` float64 values, NaN for excluded groups.
    """

    value: float
    n_groups: int
    n_excluded: int
    groups: torch.Tensor
    per_group: torch.Tensor

    @classmethod
    def from_values(cls, groups: torch.Tensor, values: torch.Tensor, included: torch.Tensor):
        per_group = torch.where(included, values, torch.nan)
        n_groups = int(included.sum())
        value = float(per_group[included].mean()) if n_groups else float("nan")
        return cls(value, n_groups, len(groups) - n_groups, groups, per_group)


def ndcg(scores, labels, groups, *, k: int | None = 10, gain: Gain = "exp2") -> float:
    """Mean NDCG@k over the groups with a relevant item; see :func:`ndcg_per_group`.

    Groups without a relevant item (every label 0) are skipped: their NDCG is 0/0. This is the
    mean of ``sklearn.metrics.ndcg_score`` over the other groups (with ``gain="linear"``).

    Raises:
        ValueError: no group has a relevant item (NDCG is undefined for all of them), besides
            the input errors of :func:`ndcg_per_group`.
    """
    result = ndcg_per_group(scores, labels, groups, k=k, gain=gain)
    if result.n_groups == 0:
        raise ValueError(
            f"ndcg is undefined: none of the {result.n_excluded} group(s) has a relevant item "
            "(every `labels` value is 0)"
        )
    return result.value


@torch.no_grad()
def ndcg_per_group(
    scores: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    *,
    k: int | None = 10,
    gain: Gain = "exp2",
) -> GroupMetric:
    """Normalised discounted cumulative gain at k, per group.

    ``DCG@k = Σ_{r=1..min(k, n)} g(y_(r)) / log2(r + 1)`` with rows ranked by score (ties worst
    case), ``g(y) = 2^y − 1`` (``"exp2"``, LETOR/LightGBM/allRank) or ``y`` (``"linear"``,
    scikit-learn/torchmetrics); ``NDCG@k = DCG@k / IDCG@k`` (IDCG: rows ranked by label).
    Groups with IDCG = 0 (no relevant item) are excluded and counted in ``n_excluded``; allRank
    counts such groups as 1 and TF-Ranking as 0, which shifts the mean.

    Args:
        scores: ``(N,)`` float model scores.
        labels: ``(N,)`` relevance grades ≥ 0 (int or float).
        groups: ``(N,)`` integer group (query) ids, in any order.
        k: cut-off (``None``: the whole group).
        gain: ``"exp2"`` or ``"linear"``.

    Returns:
        :class:`GroupMetric`.

    Raises:
        TypeError, ValueError: wrong dtypes/shapes, NaN/inf, negative labels, bad ``k``/``gain``.

    Reference: Järvelin & Kekäläinen 2002, "Cumulated gain-based evaluation of IR techniques";
    Burges et al. 2005 (exp2 gain).

    Example:
        >>> ndcg(torch.tensor([0.9, 0.1, 0.5]), torch.tensor([0, 1, 2]), torch.tensor([7, 7, 7]))
        0.6590...
    """
    labels, groups = check_group_inputs(scores, labels, groups)
    check_choice("gain", gain, ("exp2", "linear"))
    if k is not None:
        check_positive_int("k", k)
    if (lowest := float(labels.min())) < 0:
        raise ValueError(f"`labels` must be >= 0 for ndcg, got minimum {lowest:g}")
    ranked = rank_groups(scores, labels, groups)
    gains = torch.expm1(ranked.level_values * math.log(2.0))
    gains = gains if gain == "exp2" else ranked.level_values
    largest = int(ranked.size.max())
    positions = torch.arange(min(k or largest, largest), dtype=torch.float64, device=gains.device)
    discounts = 1.0 / torch.log2(positions + 2)
    rows, code, rank = ranked.top(len(discounts))
    dcg = gains.new_zeros(len(ranked.size))
    dcg.index_add_(0, code, gains[ranked.level(rows)] * discounts[rank])
    idcg = _ideal_dcg(ranked, gains, discounts)
    included = idcg > 0
    return _group_metric(ranked, dcg / torch.where(included, idcg, 1.0), included)


def _ideal_dcg(ranked: Ranked, gains: torch.Tensor, discounts: torch.Tensor) -> torch.Tensor:
    """IDCG@k per group from the count of each label level in the group (no second sort)."""
    if ranked.level_counts is None:
        return _ideal_dcg_by_sort(ranked, gains, discounts)
    counts = ranked.level_counts.flip(1)  # best level first
    end = torch.cumsum(counts, dim=1)
    start, end = (end - counts).clamp(max=len(discounts)), end.clamp(max=len(discounts))
    cumulative = torch.cat([discounts.new_zeros(1), torch.cumsum(discounts, 0)])
    return ((cumulative[end] - cumulative[start]) * gains.flip(0)).sum(dim=1)


def _ideal_dcg_by_sort(ranked: Ranked, gains: torch.Tensor, discounts: torch.Tensor):
    """IDCG@k per group for many label levels: sort by (group ↑, label ↓)."""
    top_level = len(gains) - 1
    level_bits = max(top_level, 1).bit_length()
    key = sort_values((ranked.code() << level_bits) | (top_level - ranked.level()))
    code, level = key >> level_bits, top_level - (key & ((1 << level_bits) - 1))
    rank = torch.arange(len(key), device=key.device) - (ranked.size.cumsum(0) - ranked.size)[code]
    top = (rank < len(discounts)).nonzero().squeeze(1)
    idcg = gains.new_zeros(len(ranked.size))
    return idcg.index_add_(0, code[top], gains[level[top]] * discounts[rank[top]])


def _group_metric(ranked: Ranked, values: torch.Tensor, included: torch.Tensor) -> GroupMetric:
    """Keep the group codes that occur, then summarise."""
    present = ranked.size > 0
    return GroupMetric.from_values(ranked.group_ids[present], values[present], included[present])


def mrr(scores, labels, groups) -> float:
    """Mean reciprocal rank over groups; see :func:`mrr_per_group`."""
    return mrr_per_group(scores, labels, groups).value


@torch.no_grad()
def mrr_per_group(scores: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> GroupMetric:
    """Reciprocal rank of the first relevant row (label > 0) per group.

    ``RR = 1 / rank of the first row with y > 0`` (1-based, ranked by score, ties worst case).
    Groups with no relevant row are excluded and counted in ``n_excluded`` (torchmetrics'
    ``empty_target_action="skip"``).

    Args:
        scores: ``(N,)`` float scores; labels: ``(N,)`` grades; groups: ``(N,)`` integer ids.

    Returns:
        :class:`GroupMetric`.

    Raises:
        TypeError, ValueError: wrong dtypes/shapes or NaN/inf.

    Reference: Voorhees 1999, "The TREC-8 Question Answering Track Report".

    Example:
        >>> mrr(torch.tensor([0.9, 0.1, 0.5]), torch.tensor([0, 1, 2]), torch.tensor([7, 7, 7]))
        0.5
    """
    labels, groups = check_group_inputs(scores, labels, groups)
    ranked = rank_groups(scores, labels, groups)
    first_relevant_level = int(torch.searchsorted(ranked.level_values, 0.0, right=True))
    relevant = (ranked.level() >= first_relevant_level).nonzero().squeeze(1)
    no_hit = torch.iinfo(torch.int64).max
    first = torch.full_like(ranked.size, no_hit)
    first.scatter_reduce_(0, ranked.code(relevant), ranked.rank(relevant), "amin")
    included = first < no_hit
    reciprocal = 1.0 / (torch.where(included, first, 0) + 1).to(torch.float64)
    return _group_metric(ranked, reciprocal, included)


@torch.no_grad()
def pair_accuracy(scores, labels, groups, *, average: Literal["group", "pair"] = "group") -> float:
    """Share of label-ordered pairs ordered correctly; see :func:`pair_accuracy_per_group`.

    ``average="group"``: mean of per-group shares; ``"pair"``: correct pairs / pairs overall.
    """
    check_choice("average", average, ("group", "pair"))
    if average == "group":
        return pair_accuracy_per_group(scores, labels, groups).value
    _, correct, total = _pair_counts(scores, labels, groups)
    return float(correct.sum() / total.sum()) if float(total.sum()) > 0 else float("nan")


@torch.no_grad()
def pair_accuracy_per_group(
    scores: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor
) -> GroupMetric:
    """Per group: the share of pairs with ``y_i > y_j`` that the model orders ``s_i > s_j``.

    ``acc_g = #{(i, j) in g : y_i > y_j, s_i > s_j} / #{(i, j) in g : y_i > y_j}``; equal scores
    count as wrong. Groups without a label-ordered pair are excluded (``n_excluded``). Cost is
    O(N · number of distinct labels); at most 256 distinct labels.

    Args:
        scores: ``(N,)`` float scores; labels: ``(N,)`` grades; groups: ``(N,)`` integer ids.

    Returns:
        :class:`GroupMetric`.

    Raises:
        TypeError, ValueError: wrong dtypes/shapes, NaN/inf, more than 256 distinct labels.

    Reference: the "pairwise accuracy" of Joachims 2002 (Kendall-tau based RankSVM evaluation).

    Example:
        >>> pair_accuracy(torch.tensor([0.9, 0.1, 0.5]), torch.tensor([0, 1, 2]),
        ...               torch.tensor([7, 7, 7]))
        0.3333...
    """
    ranked, correct, total = _pair_counts(scores, labels, groups)
    included = total > 0
    return _group_metric(ranked, correct / torch.where(included, total, 1.0), included)


def _pair_counts(scores, labels, groups) -> tuple[Ranked, torch.Tensor, torch.Tensor]:
    """The ranking, then correct and total label-ordered pairs per group code (float64)."""
    labels, groups = check_group_inputs(scores, labels, groups)
    ranked = rank_groups(scores, labels, groups)
    n_levels = len(ranked.level_values)
    if n_levels > _MAX_PAIR_LEVELS:
        raise ValueError(
            f"`labels` must have at most {_MAX_PAIR_LEVELS} distinct values for pair accuracy, "
            f"got {n_levels}"
        )
    code, level, score_code = ranked.code(), ranked.level(), ranked.score_code()
    group_start = ranked.rank() == 0
    score_start = group_start.clone()
    score_start[1:] |= score_code[1:] != score_code[:-1]
    group_end, score_end = run_ends(group_start), run_ends(score_start)
    correct_rows = torch.zeros_like(level)
    squares = ranked.level_values.new_zeros(len(ranked.size))
    for current in range(n_levels):
        is_level = level == current
        below = torch.cat([level.new_zeros(1), torch.cumsum(is_level, 0)])
        lower_after = below[group_end] - below[score_end]  # rows of this level ranked lower
        correct_rows += torch.where(level > current, lower_after, 0)
        squares += torch.bincount(code[is_level], minlength=len(squares)).double() ** 2
    correct = torch.bincount(code, weights=correct_rows.double(), minlength=len(squares))
    return ranked, correct, (ranked.size.double() ** 2 - squares) / 2
