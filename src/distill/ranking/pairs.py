"""Pairs of items inside ragged groups, and the difference signals of a pair
(docs/formulas.md#pairs).

Input is flat: one row per item with a group id (a query, or a set of items recommended
together). Pairs are enumerated without a Python loop over groups, in O(number of pairs) memory:
items are stably sorted by group, and each group's upper-triangular pairs are laid out with
``repeat_interleave``/``cumsum`` arithmetic. Repeated batch layouts hit a small LRU cache.
A per-group bound samples pair numbers (:mod:`distill.ranking.pair_sampling`) instead of
listing pairs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal, NamedTuple

import torch

from distill._validation import (
    check_choice,
    check_float_tensor,
    check_positive_int,
    check_same_shape,
    check_tensor,
)
from distill.ranking.pair_sampling import sample_numbers

PairSet = Literal["all", "unequal"]
Signal = Literal["logit", "prob", "pair_prob", "squared"]
PAIR_SETS = ("all", "unequal")
SIGNALS = ("logit", "prob", "pair_prob", "squared")
_CACHE_SIZE = 4


class Pairs(NamedTuple):
    """Pair index tensors, all int64 ``(P,)``, in group order (row-major inside a group).

    ``i`` and ``j`` index the flat item rows; ``group`` is the position of the pair's group
    among the sorted unique group ids (``0 .. G-1``; groups without pairs keep their index).
    """

    i: torch.Tensor
    j: torch.Tensor
    group: torch.Tensor


class GroupLayout(NamedTuple):
    """Items sorted by group: ``order`` (N,) original rows, ``sizes`` and ``starts`` (G,).

    ``in_order`` is True when the input was already sorted (``order`` is the identity).
    """

    order: torch.Tensor
    sizes: torch.Tensor
    starts: torch.Tensor
    in_order: bool


def check_group_ids(group_ids: object) -> torch.Tensor:
    """Require a 1-D integer tensor of group ids (float ids are a silent-bug source)."""
    check_tensor("group_ids", group_ids)
    if group_ids.is_floating_point() or group_ids.is_complex() or group_ids.dtype == torch.bool:
        raise TypeError(f"`group_ids` must be an integer tensor, got dtype {group_ids.dtype}")
    if group_ids.ndim != 1:
        raise ValueError(f"`group_ids` must be 1-D (N,), got shape {tuple(group_ids.shape)}")
    return group_ids


def check_labels(labels: object, group_ids: torch.Tensor) -> torch.Tensor:
    """Labels (grades or clicks), one per item: a real tensor of ``group_ids``'s shape."""
    check_tensor("labels", labels)
    check_same_shape("labels", labels, "group_ids", group_ids)
    if labels.is_floating_point() and bool(torch.isnan(labels).any()):
        raise ValueError("`labels` must not contain NaN")
    return labels


def group_layout(group_ids: torch.Tensor) -> GroupLayout:
    """Stable sort by group id; per-group sizes via ``unique_consecutive``.

    Args:
        group_ids: ``(N,)`` integer ids, in any order, not necessarily contiguous.

    Returns:
        A :class:`GroupLayout`; ``group_ids[order]`` is sorted, groups keep their item order.
    """
    check_group_ids(group_ids)
    in_order = group_ids.numel() < 2 or bool((group_ids[1:] >= group_ids[:-1]).all())
    if in_order:
        order = torch.arange(group_ids.numel(), device=group_ids.device)
        ordered = group_ids
    else:
        ordered, order = torch.sort(group_ids, stable=True)
    sizes = torch.unique_consecutive(ordered, return_counts=True)[1]
    return GroupLayout(order, sizes, torch.cumsum(sizes, 0) - sizes, in_order)


def _all_pairs(layout: GroupLayout) -> Pairs:
    """Every pair ``a < b`` inside each group, in sorted-item positions."""
    sizes, starts = layout.sizes, layout.starts
    device = sizes.device
    if len(sizes) and bool((sizes == sizes[0]).all()):
        return _uniform_pairs(starts, int(sizes[0]))
    num_items = int(sizes.sum())
    rows = torch.arange(num_items, device=device)
    group_of = torch.repeat_interleave(torch.arange(len(sizes), device=device), sizes)
    partners = sizes[group_of] - 1 - (rows - starts[group_of])
    num_pairs = int(partners.sum())
    first = torch.repeat_interleave(rows, partners, output_size=num_pairs)
    shift = torch.cumsum(partners, 0) - partners - rows - 1
    second = torch.arange(num_pairs, device=device) - torch.repeat_interleave(
        shift, partners, output_size=num_pairs
    )
    group = torch.repeat_interleave(group_of, partners, output_size=num_pairs)
    return Pairs(first, second, group)


def _uniform_pairs(starts: torch.Tensor, size: int) -> Pairs:
    """All groups have ``size`` items: one ``triu_indices`` pattern broadcast over the groups."""
    first, second = torch.triu_indices(size, size, 1, device=starts.device)
    group = torch.arange(len(starts), device=starts.device)
    return Pairs(
        (starts[:, None] + first).reshape(-1),
        (starts[:, None] + second).reshape(-1),
        group[:, None].expand(-1, len(first)).reshape(-1),
    )


def _orient_unequal(pairs: Pairs, labels: torch.Tensor) -> Pairs:
    """Keep pairs with different labels, swapped so that ``labels[i] > labels[j]``."""
    first, second = labels[pairs.i], labels[pairs.j]
    keep = first != second
    swap = first < second
    i = torch.where(swap, pairs.j, pairs.i)[keep]
    j = torch.where(swap, pairs.i, pairs.j)[keep]
    return Pairs(i, j, pairs.group[keep])


def _sample_pairs(
    layout: GroupLayout,
    labels: torch.Tensor | None,
    limit: int,
    generator: torch.Generator | None = None,
) -> Pairs:
    """At most ``limit`` pairs per group, uniform without replacement, in O(N + G·limit).

    Items are laid out so that each item's partners are one run up to its group's end (the
    later items for ``all``; the lower-labelled items for ``unequal``, labels sorted
    descending), which numbers a group's pairs ``0 .. P_g − 1`` without listing them.
    :func:`~distill.ranking.pair_sampling.sample_numbers` picks the numbers; a binary search on the
    cumulative partner counts maps each back to its two items. The pairs come out as a
    subsequence of :func:`enumerate_pairs`'s (same orientation and order).
    """
    within, partner_start, group_of = _partner_runs(layout, labels)
    counts = (layout.starts + layout.sizes)[group_of] - partner_start
    cumulative = torch.cumsum(counts, 0)
    before = cumulative - counts
    ends = layout.starts + layout.sizes - 1
    totals = cumulative[ends] - before[layout.starts]
    group, number = sample_numbers(totals, limit, generator)
    number = torch.sort(number + before[layout.starts][group]).values
    first = torch.searchsorted(cumulative, number, right=True)
    second = partner_start[first] + number - before[first]
    a, b = within[first], within[second]
    if labels is not None:  # back to enumeration order: by the pair's positions in `layout`
        order = torch.argsort(torch.minimum(a, b) * len(within) + torch.maximum(a, b))
        a, b, first = a[order], b[order], first[order]
    return Pairs(layout.order[a], layout.order[b], group_of[first])


def _partner_runs(
    layout: GroupLayout, labels: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(within, partner_start, group_of)`` per item of the partner layout (all (N,)).

    ``within`` gives each item's position in ``layout``; item p pairs with the items from
    ``partner_start[p]`` to its group's end.
    """
    device = layout.sizes.device
    group_of = torch.repeat_interleave(torch.arange(len(layout.sizes), device=device), layout.sizes)
    positions = torch.arange(len(layout.order), device=device)
    if labels is None:
        return positions, positions + 1, group_of
    by_label = torch.sort(labels[layout.order], descending=True, stable=True).indices
    within = by_label[torch.sort(group_of[by_label], stable=True).indices]
    ordered = labels[layout.order[within]]
    new_run = torch.ones_like(positions, dtype=torch.bool)
    new_run[1:] = (ordered[1:] != ordered[:-1]) | (group_of[1:] != group_of[:-1])
    run = torch.cumsum(new_run, 0) - 1
    return within, torch.cumsum(torch.bincount(run), 0)[run], group_of


class ContentCache:
    """A small LRU cache keyed on tensor *contents*, for batch layouts that repeat.

    A cheap digest (options, dtypes, shapes, devices, sums) selects an entry and ``torch.equal``
    against stored copies confirms it, so a hit never rests on a hash being collision-free.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple, tuple[tuple, Any]] = OrderedDict()

    @staticmethod
    def _digest(options: tuple, tensors: tuple[torch.Tensor | None, ...]) -> tuple:
        described = tuple(
            None if t is None else (t.dtype, tuple(t.shape), t.device, float(t.sum()))
            for t in tensors
        )
        return (options, described)

    def get(self, options: tuple, *tensors: torch.Tensor | None) -> Any:
        """The cached value for these contents, or ``None``."""
        key = self._digest(options, tensors)
        entry = self.entries.get(key)
        if entry is None or not all(map(_same, entry[0], tensors)):
            return None
        self.entries.move_to_end(key)
        return entry[1]

    def put(self, options: tuple, tensors: tuple[torch.Tensor | None, ...], value: Any) -> Any:
        """Store ``value`` for these contents (evicting the least recently used); return it."""
        copies = tuple(None if t is None else t.detach().clone() for t in tensors)
        key = self._digest(options, tensors)
        self.entries[key] = (copies, value)
        self.entries.move_to_end(key)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self.entries.clear()


def _same(stored: torch.Tensor | None, given: torch.Tensor | None) -> bool:
    return stored is given or (
        stored is not None and given is not None and torch.equal(stored, given)
    )


def make_pairs(
    group_ids: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    pairs: PairSet = "all",
    max_pairs_per_group: int | None = None,
    generator: torch.Generator | None = None,
) -> Pairs:
    """Enumerate item pairs inside each group (docs/formulas.md#pairs).

    ``all``: every unordered pair ``(i, j)`` with i before j in the group (input order).
    ``unequal``: only pairs whose labels differ, ordered so that ``labels[i] > labels[j]``.

    Args:
        group_ids: ``(N,)`` integer group ids, any order, any values (not necessarily
            sorted or contiguous). Groups may have 1 to thousands of items.
        labels: ``(N,)`` labels; required for ``pairs="unequal"``.
        pairs: ``"all"`` or ``"unequal"``.
        max_pairs_per_group: keep at most this many pairs per group, sampled uniformly without
            replacement (reproducible with ``generator``) in O(N + G·bound) time and memory,
            without listing a bigger group's pairs; groups with at most this many pairs keep
            all of them. ``None`` keeps all.
        generator: random generator for the sampling.

    Returns:
        :class:`Pairs` ``(i, j, group)`` of int64 ``(P,)`` tensors, O(P) memory; sampled pairs
        are a subsequence of the unsampled ones. Results without sampling are cached by
        content (LRU of 4 layouts); do not modify them in place.

    Raises:
        TypeError: ``group_ids`` not an integer tensor; ``labels`` not a tensor.
        ValueError: shapes differ, NaN labels, ``labels`` missing for ``"unequal"``, or a bad
            option.

    Reference: docs/formulas.md#pairs (pairs inside a query or a set of items recommended together).

    Example:
        >>> make_pairs(torch.tensor([7, 7, 3, 7])).i
        tensor([0, 0, 1])
    """
    check_group_ids(group_ids)
    check_choice("pairs", pairs, PAIR_SETS)
    if pairs == "unequal" and labels is None:
        raise ValueError("`labels` are required when `pairs` is 'unequal'")
    if labels is not None:
        check_labels(labels, group_ids)
    if max_pairs_per_group is not None:
        check_positive_int("max_pairs_per_group", max_pairs_per_group)
        layout = group_layout(group_ids)
        largest = int(layout.sizes.max()) if len(layout.sizes) else 0
        if largest * (largest - 1) // 2 > max_pairs_per_group:
            chosen = labels if pairs == "unequal" else None
            return _sample_pairs(layout, chosen, max_pairs_per_group, generator)
    labels = labels if pairs == "unequal" else None
    found = _cache.get((pairs,), group_ids, labels)
    if found is None:
        found = _cache.put(
            (pairs,), (group_ids, labels), enumerate_pairs(group_layout(group_ids), labels)
        )
    return found


_cache = ContentCache(_CACHE_SIZE)


def enumerate_pairs(layout: GroupLayout, labels: torch.Tensor | None) -> Pairs:
    """All pairs mapped back to input rows; oriented and filtered when labels are given."""
    found = _all_pairs(layout)
    if not layout.in_order:
        found = Pairs(layout.order[found.i], layout.order[found.j], found.group)
    return found if labels is None else _orient_unequal(found, labels)


def item_signal(scores: torch.Tensor, signal: Signal) -> torch.Tensor:
    """The per-item part of a signal: ``σ(s)`` for ``prob``, ``s²`` for ``squared``, else ``s``."""
    if signal == "prob":
        return torch.sigmoid(scores)
    if signal == "squared":
        return scores * scores
    return scores


def pair_signal(
    first: torch.Tensor, second: torch.Tensor, signal: Signal, absolute: bool
) -> torch.Tensor:
    """Difference of item signals (already through :func:`item_signal`); broadcasts."""
    delta = first - second
    if signal == "pair_prob":
        delta = torch.sigmoid(delta)
    return delta.abs() if absolute else delta


def difference(
    scores: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    *,
    signal: Signal = "logit",
    absolute: bool = False,
) -> torch.Tensor:
    """Difference signal of each pair ``(i, j)`` (docs/formulas.md#pairs).

    ``logit``: ``s_i − s_j``; ``prob``: ``σ(s_i) − σ(s_j)``; ``pair_prob``: ``σ(s_i − s_j)``
    (= ``p_i(1−p_j) / (p_i(1−p_j) + p_j(1−p_i))``, the probability that i is better);
    ``squared``: ``s_i² − s_j²``; ``absolute=True`` takes ``|Δ|``.

    Args:
        scores: ``(N,)`` logits (or ``(N, K)``: K scores per item, e.g. quantile heads).
        i, j: ``(P,)`` integer row indices, e.g. from :func:`make_pairs`.
        signal: one of ``"logit"``, ``"prob"``, ``"pair_prob"``, ``"squared"``.
        absolute: return the absolute difference.

    Returns:
        ``(P,)`` (or ``(P, K)``) differences.

    Raises:
        TypeError: ``scores`` not floating point; ``i`` or ``j`` not an integer tensor.
        ValueError: unknown ``signal``; ``i`` and ``j`` of different shapes.

    Reference: US 2023/0252281 Eqs. 3, 5–8 (logit, probability and pair-probability differences).

    Example:
        >>> difference(torch.tensor([0.0, 2.0]), torch.tensor([1]), torch.tensor([0]))
        tensor([2.])
    """
    check_float_tensor("scores", scores)
    check_choice("signal", signal, SIGNALS)
    for name, index in (("i", i), ("j", j)):
        if not isinstance(index, torch.Tensor) or index.is_floating_point():
            raise TypeError(f"`{name}` must be an integer index tensor, got {_describe(index)}")
    if i.shape != j.shape:
        raise ValueError(f"`j` shape {tuple(j.shape)} does not match `i` shape {tuple(i.shape)}")
    values = item_signal(scores, signal)
    return pair_signal(values[i], values[j], signal, absolute)


def _describe(value: object) -> str:
    return f"dtype {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
