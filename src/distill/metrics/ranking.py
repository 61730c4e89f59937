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
    check_group_inputs,
    rank_groups,
    run_ends,
    segments,
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
    """Mean NDCG@k over groups; see :func:`ndcg_per_group` for the definition."""
    return ndcg_per_group(scores, labels, groups, k=k, gain=gain).value


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
    if float(labels.min()) < 0:
        raise ValueError(f"`labels` must be >= 0 for ndcg, got minimum {float(labels.min())}")
    ranked = rank_groups(scores, labels, groups)
    gains = torch.expm1(ranked.level_values * math.log(2.0))
    gains = gains if gain == "exp2" else ranked.level_values
    cut = int(ranked.group_size.max()) if k is None else min(k, int(ranked.group_size.max()))
    discounts = 1.0 / torch.log2(torch.arange(cut, dtype=torch.float64) + 2.0)
    row_discount = torch.where(ranked.rank < cut, discounts[ranked.rank.clamp(max=cut - 1)], 0.0)
    dcg = torch.zeros(len(ranked.group_ids), dtype=torch.float64)
    dcg.index_add_(0, ranked.segment, gains[ranked.level] * row_discount)
    idcg = _ideal_dcg(ranked, gains, discounts)
    included = idcg > 0
    return GroupMetric.from_values(
        ranked.group_ids, dcg / torch.where(included, idcg, 1.0), included
    )


def _ideal_dcg(ranked, gains: torch.Tensor, discounts: torch.Tensor) -> torch.Tensor:
    """IDCG@k per group from the count of each label level in the group (no second sort)."""
    n_groups, n_levels = len(ranked.group_ids), len(ranked.level_values)
    if n_groups * n_levels > 4 * len(ranked.level) + 4096:
        return _ideal_dcg_by_sort(ranked, gains, discounts)
    counts = torch.bincount(ranked.segment * n_levels + ranked.level, minlength=n_groups * n_levels)
    counts = counts.view(n_groups, n_levels).flip(1)  # best level first
    end = torch.cumsum(counts, dim=1)
    start, end = (end - counts).clamp(max=len(discounts)), end.clamp(max=len(discounts))
    cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(discounts, 0)])
    return ((cumulative[end] - cumulative[start]) * gains.flip(0)).sum(dim=1)


def _ideal_dcg_by_sort(ranked, gains: torch.Tensor, discounts: torch.Tensor) -> torch.Tensor:
    """IDCG@k per group for many label levels: sort by (group ↑, label ↓)."""
    level_bits = max(len(gains) - 1, 1).bit_length()
    key = (ranked.segment << level_bits) | (len(gains) - 1 - ranked.level)
    key = torch.sort(key).values
    segment, rank, _ = segments(key >> level_bits)
    level = len(gains) - 1 - (key & ((1 << level_bits) - 1))
    row_discount = torch.where(
        rank < len(discounts), discounts[rank.clamp(max=len(discounts) - 1)], 0.0
    )
    idcg = torch.zeros(len(ranked.group_ids), dtype=torch.float64)
    return idcg.index_add_(0, segment, gains[level] * row_discount)


def mrr(scores, labels, groups) -> float:
    """Mean reciprocal rank over groups; see :func:`mrr_per_group`."""
    return mrr_per_group(scores, labels, groups).value


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
    relevant = ranked.level_values[ranked.level] > 0
    no_hit = torch.iinfo(torch.int64).max
    first = torch.full((len(ranked.group_ids),), no_hit, dtype=torch.int64)
    first.scatter_reduce_(0, ranked.segment, torch.where(relevant, ranked.rank, no_hit), "amin")
    included = first < no_hit
    reciprocal = 1.0 / (torch.where(included, first, 0) + 1).to(torch.float64)
    return GroupMetric.from_values(ranked.group_ids, reciprocal, included)


def pair_accuracy(scores, labels, groups, *, average: Literal["group", "pair"] = "group") -> float:
    """Share of label-ordered pairs ordered correctly; see :func:`pair_accuracy_per_group`.

    ``average="group"``: mean of per-group shares; ``"pair"``: correct pairs / pairs overall.
    """
    check_choice("average", average, ("group", "pair"))
    if average == "group":
        return pair_accuracy_per_group(scores, labels, groups).value
    _, correct, total = _pair_counts(scores, labels, groups)
    return float(correct.sum() / total.sum()) if float(total.sum()) > 0 else float("nan")


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
    group_ids, correct, total = _pair_counts(scores, labels, groups)
    included = total > 0
    share = correct / torch.where(included, total, 1.0)
    return GroupMetric.from_values(group_ids, share, included)


def _pair_counts(scores, labels, groups):
    """Group ids, then correct and total label-ordered pairs per group (float64)."""
    labels, groups = check_group_inputs(scores, labels, groups)
    ranked = rank_groups(scores, labels, groups)
    if len(ranked.level_values) > _MAX_PAIR_LEVELS:
        raise ValueError(
            f"`labels` must have at most {_MAX_PAIR_LEVELS} distinct values for pair accuracy, "
            f"got {len(ranked.level_values)}"
        )
    group_end = run_ends(ranked.rank == 0)
    score_end = run_ends(ranked.score_start)
    correct_rows = torch.zeros(len(ranked.level), dtype=torch.int64)
    squares = torch.zeros(len(ranked.group_ids), dtype=torch.float64)
    for level in range(len(ranked.level_values)):
        is_level = ranked.level == level
        below = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(is_level, 0)])
        lower_after = below[group_end] - below[score_end]  # rows of this level ranked lower
        correct_rows += torch.where(ranked.level > level, lower_after, 0)
        count = torch.zeros_like(squares).index_add_(0, ranked.segment, is_level.double())
        squares += count**2
    correct = torch.zeros_like(squares).index_add_(0, ranked.segment, correct_rows.double())
    total = (ranked.group_size.double() ** 2 - squares) / 2
    return ranked.group_ids, correct, total
