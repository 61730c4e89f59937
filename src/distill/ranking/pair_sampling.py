"""Uniform samples without replacement of numbers ``0 .. P_g − 1`` in every group at once.

:func:`distill.ranking.pairs.make_pairs` numbers the pairs of group g ``0 .. P_g − 1``
without listing them; :func:`sample_numbers` picks ``min(limit, P_g)`` distinct numbers per
group, uniformly, with no Python loop over groups and O(groups · limit) work (never O(P_g)):

- ``P_g ≤ limit``: every number;
- ``limit < P_g ≤ 2·limit``: every number gets a random key and the ``limit`` lowest keys win;
- ``P_g > 2·limit``: numbers are drawn with replacement, 1.25× the expected number of draws
  per round, and the first ``limit`` distinct ones are kept. The first k distinct values of
  an i.i.d. uniform sequence are a uniform k-subset; a group left short after a round (rare)
  continues its sequence in the next one, so the result stays exact.

Random integers are 62-bit; reducing them modulo ``P_g`` biases a number by at most
``P_g / 2^62`` (negligible).
"""

from __future__ import annotations

import torch


def sample_numbers(
    totals: torch.Tensor, limit: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``min(limit, totals[g])`` distinct numbers in ``[0, totals[g])`` for every group g.

    Args:
        totals: ``(G,)`` int64 number of items (pairs) per group, ``>= 0``.
        limit: how many to keep per group, ``>= 1`` (validated by the caller).
        generator: random generator (on ``totals``'s device or the CPU).

    Returns:
        ``(group, number)``, int64 ``(M,)`` each, in no particular order.

    Raises:
        Nothing of its own: :func:`distill.ranking.pairs.make_pairs` validates the bound.

    Reference: docs/formulas.md#pairs (pairs inside a group); uniform k-subsets as the first k
    distinct values of an i.i.d. sequence (sequential sampling without replacement).

    Example:
        >>> group, number = sample_numbers(torch.tensor([3, 1000]), 2)
        >>> torch.bincount(group).tolist()
        [2, 2]
    """
    small, big = totals <= limit, totals > 2 * limit
    parts = [_every_number(torch.where(small, totals, 0))]
    middle = torch.where(small | big, 0, totals)
    if bool(middle.any()):
        group, number = _every_number(middle)
        keys = _random_integers(len(group), generator, totals.device)
        keep = _lowest_per_group(group, keys, limit)
        parts.append((group[keep], number[keep]))
    if bool(big.any()):
        groups = torch.nonzero(big).squeeze(1)
        parts.append(_distinct_draws(groups, totals[groups], limit, generator))
    return torch.cat([part[0] for part in parts]), torch.cat([part[1] for part in parts])


def _every_number(totals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``(group, number)`` with ``number < totals[group]``."""
    device = totals.device
    group = torch.repeat_interleave(torch.arange(len(totals), device=device), totals)
    first = torch.cumsum(totals, 0) - totals
    return group, torch.arange(len(group), device=device) - first[group]


def _random_integers(
    count: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``count`` uniform integers in ``[0, 2^62)``."""
    source = generator.device if generator is not None else device
    values = torch.randint(0, 2**62, (count,), generator=generator, device=source)
    return values.to(device)


def _lowest_per_group(group: torch.Tensor, priority: torch.Tensor, limit: int) -> torch.Tensor:
    """Indices of the ``limit`` entries of lowest ``priority`` in each group (all if fewer)."""
    by_priority = torch.argsort(priority)
    by_group = by_priority[torch.argsort(group[by_priority], stable=True)]
    counts = torch.bincount(group)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(group), device=group.device) - start[group[by_group]]
    return by_group[rank < limit]


def _distinct_draws(
    groups: torch.Tensor, totals: torch.Tensor, limit: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per group, the first ``limit`` distinct values of i.i.d. uniform draws below its total.

    The draws are kept slot-major (one slot per group), in draw order inside a slot.
    """
    device = totals.device
    offsets = torch.cumsum(totals, 0) - totals
    slot = number = torch.zeros(0, dtype=torch.long, device=device)
    pending = torch.arange(len(groups), device=device)
    per_round = _draws_per_round(totals, limit)
    while len(pending):
        new_slot = pending.repeat_interleave(per_round[pending])
        drawn = _random_integers(len(new_slot), generator, device) % totals[new_slot]
        slot, number = torch.cat([slot, new_slot]), torch.cat([number, drawn])
        if len(slot) > len(new_slot):  # a later round: back to slot-major order
            order = torch.sort(slot, stable=True).indices
            slot, number = slot[order], number[order]
        rank = _distinct_rank(slot, offsets[slot] + number)
        distinct = torch.bincount(slot[rank >= 0], minlength=len(groups))
        pending = torch.nonzero(distinct < limit).squeeze(1)
    keep = (rank >= 0) & (rank < limit)
    return groups[slot[keep]], number[keep]


def _draws_per_round(totals: torch.Tensor, limit: int) -> torch.Tensor:
    """1.25× the expected draws to see ``limit`` distinct values, ``P·ln(P / (P − limit))``."""
    expected = -totals.double() * torch.log1p(-limit / totals.double())
    return (1.25 * expected).ceil().long() + 16


def _distinct_rank(slot: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Per entry, how many distinct keys its slot saw before it; −1 for a repeated key."""
    ordered, order = torch.sort(keys, stable=True)
    first_sorted = torch.ones_like(ordered, dtype=torch.bool)
    first_sorted[1:] = ordered[1:] != ordered[:-1]
    is_first = torch.empty_like(first_sorted)
    is_first[order] = first_sorted
    seen = torch.cumsum(is_first, 0) - is_first.long()
    counts = torch.bincount(slot)
    rank = seen - seen[torch.cumsum(counts, 0) - counts][slot]
    return torch.where(is_first, rank, -1)
