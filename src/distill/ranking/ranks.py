"""Ranks within each group: the teacher's hard ranks and the student's differentiable soft ranks
(the rank-difference signal of the pairwise loss; ``docs/methods.md``)."""

from __future__ import annotations

from typing import Any

import torch

from distill._validation import check_float_tensor, check_number, check_same_shape
from distill.ranking.pairs import check_group_ids, make_pairs


def _ranks(scores: torch.Tensor, group_ids: torch.Tensor, above: Any) -> torch.Tensor:
    """``½ + Σ_{j≠i} above(s_j − s_i)`` per item, summed over the ``all`` pairs of its group.

    ``above(d)`` is how much an item ``d`` above counts; ``above(−d) = 1 − above(d)``.
    """
    pairs = make_pairs(group_ids)
    higher = above(scores[pairs.j] - scores[pairs.i])  # j above i
    ranks = torch.full_like(scores, 0.5)
    return ranks.index_add(0, pairs.i, higher).index_add(0, pairs.j, 1 - higher)


def soft_ranks(
    scores: torch.Tensor, group_ids: torch.Tensor, *, temperature: float = 1.0
) -> torch.Tensor:
    """Differentiable ranks within each group: ``rank_i = ½ + Σ_{j≠i} σ((s_j − s_i)/T)``.

    Rank ½ is the top (add ½ for 1-based ranks); as ``T → 0`` this tends to
    :func:`hard_ranks`. Summed over every pair of a group: O(Σ n_g²) time and memory, no loop
    over groups. The rank-difference signal of US 2023/0252281 ¶0050 ("the difference in
    rankings between the training examples") compares these with the teacher's hard ranks.

    Args:
        scores: ``(N,)`` float scores.
        group_ids: ``(N,)`` integer group ids (any order).
        temperature: ``T > 0``; smaller is closer to the hard ranks.

    Returns:
        ``(N,)`` ranks, differentiable in ``scores``.

    Raises:
        TypeError: ``scores`` not floating point, ``group_ids`` not integer.
        ValueError: shapes differ or ``temperature <= 0``.

    Reference: Qin, Liu & Li (2010), "A general approximation framework for direct
    optimization of information retrieval measures" (the sigmoid soft rank); ``docs/methods.md``.

    Example:
        >>> soft_ranks(torch.tensor([0.0, 10.0, -10.0]), torch.tensor([0, 0, 0]), temperature=0.1)
        tensor([1.5000, 0.5000, 2.5000])
    """
    check_float_tensor("scores", scores)
    check_same_shape("scores", scores, "group_ids", check_group_ids(group_ids))
    temperature = check_number("temperature", temperature, low=0.0, low_open=True)
    return _ranks(scores, group_ids, lambda gap: torch.sigmoid(gap / temperature))


def hard_ranks(scores: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Ranks within each group, ties shared: ``½ + #{j: s_j > s_i} + ½·#{j ≠ i: s_j = s_i}``.

    The ``T → 0`` limit of :func:`soft_ranks` (rank ½ is the top); not differentiable.

    Args:
        scores: ``(N,)`` float scores.
        group_ids: ``(N,)`` integer group ids.

    Returns:
        ``(N,)`` ranks of ``scores``'s dtype.

    Raises:
        TypeError / ValueError: as in :func:`soft_ranks`.

    Example:
        >>> hard_ranks(torch.tensor([1.0, 3.0, 1.0]), torch.tensor([0, 0, 0]))
        tensor([2.0000, 0.5000, 2.0000])
    """
    check_float_tensor("scores", scores)
    check_same_shape("scores", scores, "group_ids", check_group_ids(group_ids))
    return _ranks(scores.detach(), group_ids, lambda gap: (torch.sign(gap) + 1) / 2)
