"""Weighted sums of a per-pair term over ragged groups: one engine, three internal paths.

``pair_sum`` evaluates ``Σ_pairs w_p · term(first item, second item)`` for the pairs of
:func:`distill.ranking.pairs.make_pairs`. When the caller passes the term's closed form
(:mod:`distill.ranking.pair_sums`: squared, absolute, pinball, Huber, ... of ``u_i − u_j``),
``"auto"`` sums the pairs without listing them (``docs/pair-sums.md``). Otherwise the pairs are
listed, by one of two paths that give the same value:

- **dense**: groups are padded into a few size buckets (padding ≤ 25 % per side) and every
  bucket is one broadcast ``(G_b, M_b, M_b)`` block with a 0/1 pair mask (no gathers, and the
  backward pass is a sum instead of a scatter);
- **ragged**: explicit pair index tensors, ``index_select`` of both items, O(P) memory.

``"auto"`` picks per size bucket and device (:data:`DENSE_MIN_SIZE`): on CPU the ragged path
was as fast or faster in every shape measured (``benchmarks/pairwise_speed.py``: the dense block
does ~2.3x the elementwise work of the pairs, which costs more than the two gathers saved), so
CPU uses it throughout; on accelerators, where a scatter is the expensive part, buckets of
64+ items go dense. The plan for a batch layout is cached by content, so repeated layouts skip
the index arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch

from distill._reduce import reduce_loss
from distill._validation import check_choice
from distill.ranking.pair_sums import PairForm, closed_pair_sum
from distill.ranking.pairs import (
    PAIR_SETS,
    ContentCache,
    GroupLayout,
    Pairs,
    PairSet,
    check_labels,
    enumerate_pairs,
    group_layout,
)

PairTerm = Callable[[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]], torch.Tensor]
Normalize = Literal["pair", "group"]
Path = Literal["auto", "closed", "dense", "ragged"]
# "auto": smallest size bucket that takes the dense path, per device type (None: never).
DENSE_MIN_SIZE: dict[str, int | None] = {"cpu": None, "cuda": 64}
_PLAN_CACHE_SIZE = 4
_plans = ContentCache(_PLAN_CACHE_SIZE)


class DenseBlock(NamedTuple):
    """Groups padded to M items: ``take`` (G_b, M) rows (N marks padding), pair ``weight``."""

    take: torch.Tensor
    weight: torch.Tensor


class Plan(NamedTuple):
    """Dense blocks for big groups, explicit ``pairs`` (with optional weights) for the rest."""

    blocks: list[DenseBlock]
    pairs: Pairs
    pair_weight: torch.Tensor | None
    denominator: int


def bucket_size(sizes: torch.Tensor) -> torch.Tensor:
    """Size bucket per group: exact up to 8, then rounded up to a quarter of its octave."""
    exponent = torch.floor(torch.log2(sizes.clamp_min(1).double())).long()
    step = torch.pow(2, (exponent - 2).clamp_min(0))
    padded = (sizes + step - 1) // step * step
    return torch.where(sizes <= 8, sizes, padded)


def pair_counts(group_ids: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Pairs per group (G,): ``n(n−1)/2``, minus the tied pairs when ``labels`` are given."""
    return _pair_counts(group_layout(group_ids), labels)


def _pair_counts(layout: GroupLayout, labels: torch.Tensor | None) -> torch.Tensor:
    counts = layout.sizes * (layout.sizes - 1) // 2
    if labels is None:
        return counts
    group_of = torch.repeat_interleave(
        torch.arange(len(counts), device=counts.device), layout.sizes
    )
    rank = torch.unique(labels[layout.order], return_inverse=True)[1]
    levels = int(rank.max()) + 1 if rank.numel() else 1
    blocks, block_sizes = torch.unique(group_of * levels + rank, return_counts=True)
    tied = block_sizes * (block_sizes - 1) // 2
    return counts - torch.zeros_like(counts).index_add_(0, blocks // levels, tied)


def _dense_block(
    layout: GroupLayout, groups: torch.Tensor, labels: torch.Tensor | None, weight: torch.Tensor
) -> DenseBlock:
    """One bucket: gather index padded to its largest group, and the weighted pair mask."""
    num_items = len(layout.order)
    sizes = layout.sizes[groups, None]
    slot = torch.arange(int(sizes.max()), device=groups.device)
    valid = slot < sizes
    rows = torch.where(valid, layout.starts[groups, None] + slot, 0)
    take = torch.where(valid, layout.order[rows], num_items)
    mask = valid[:, None, :] & valid[:, :, None]
    if labels is None:
        mask &= slot[:, None] < slot[None, :]
    else:
        padded_labels = torch.cat([labels, labels[:1]])[take]
        mask &= padded_labels[:, :, None] > padded_labels[:, None, :]
    return DenseBlock(take, mask.to(weight.dtype) * weight[groups, None, None])


def _dense_threshold(path: Path, device: torch.device) -> float:
    """Smallest bucket size that goes dense: everything for "dense", nothing for "ragged"."""
    if path != "auto":
        return 2 if path == "dense" else math.inf
    threshold = DENSE_MIN_SIZE.get(device.type, DENSE_MIN_SIZE["cuda"])
    return math.inf if threshold is None else threshold


def _build_plan(group_ids, labels, normalize: Normalize, dtype, path: Path) -> Plan:
    """Split the groups between dense buckets and explicit pairs, with their weights."""
    layout = group_layout(group_ids)
    counts = _pair_counts(layout, labels)
    if normalize == "pair":
        weight, denominator = torch.ones(len(counts), dtype=dtype), int(counts.sum())
    else:
        weight, denominator = 1.0 / counts.clamp_min(1).to(dtype), int((counts > 0).sum())
    weight = weight.to(group_ids.device)
    buckets = bucket_size(layout.sizes)
    dense = (counts > 0) & (buckets >= _dense_threshold(path, group_ids.device))
    blocks = [
        _dense_block(layout, torch.nonzero(dense & (buckets == size)).squeeze(1), labels, weight)
        for size in torch.unique(buckets[dense]).tolist()
    ]
    rest = _pairs_outside(layout, labels, dense, counts)
    pair_weight = None if normalize == "pair" else weight[rest.group]
    return Plan(blocks, rest, pair_weight, denominator)


def _pairs_outside(
    layout: GroupLayout, labels: torch.Tensor | None, dense: torch.Tensor, counts: torch.Tensor
) -> Pairs:
    """The explicit pairs of the groups that are not ``dense`` (filtered only when needed)."""
    if not bool(dense.any()):
        return enumerate_pairs(layout, labels)
    if bool((dense | (counts == 0)).all()):
        empty = torch.zeros(0, dtype=torch.long, device=dense.device)
        return Pairs(empty, empty, empty)
    found = enumerate_pairs(layout, labels)
    keep = ~dense[found.group]
    return Pairs(found.i[keep], found.j[keep], found.group[keep])


def _plan(group_ids, labels, pairs: PairSet, normalize: Normalize, dtype, path: Path) -> Plan:
    """The cached plan for this layout (keyed on the content of ids and labels)."""
    labels = labels if pairs == "unequal" else None
    options = (path, normalize, dtype, _dense_threshold(path, group_ids.device))
    plan = _plans.get(options, group_ids, labels)
    if plan is None:
        plan = _plans.put(
            options, (group_ids, labels), _build_plan(group_ids, labels, normalize, dtype, path)
        )
    return plan


def _explicit_plan(pairs: Pairs, normalize: Normalize, dtype) -> Plan:
    """Caller-given pairs (e.g. sampled); ``"group"`` weighs each by 1 / pairs of its group."""
    if normalize == "pair":
        return Plan([], pairs, None, len(pairs.i))
    counts = torch.bincount(pairs.group)
    weight = (1.0 / counts.clamp_min(1).to(dtype))[pairs.group]
    return Plan([], pairs, weight, int((counts > 0).sum()))


def _dense_sum(items: tuple[torch.Tensor, ...], blocks: list[DenseBlock], term: PairTerm):
    total = items[0].sum() * 0
    for block in blocks:
        index = block.take.reshape(-1)
        padded = [
            torch.cat([x, x[:1] * 0]).index_select(0, index).view(*block.take.shape, *x.shape[1:])
            for x in items
        ]
        values = term(tuple(x.unsqueeze(2) for x in padded), tuple(x.unsqueeze(1) for x in padded))
        total = total + torch.dot(values.reshape(-1), block.weight.reshape(-1))
    return total


def _ragged_terms(items: tuple[torch.Tensor, ...], plan: Plan, term: PairTerm) -> torch.Tensor:
    firsts = tuple(x.index_select(0, plan.pairs.i) for x in items)
    seconds = tuple(x.index_select(0, plan.pairs.j) for x in items)
    values = term(firsts, seconds)
    return values if plan.pair_weight is None else values * plan.pair_weight


def pair_sum(
    items: tuple[torch.Tensor, ...],
    group_ids: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    term: PairTerm,
    pairs: PairSet | Pairs = "all",
    normalize: Normalize = "pair",
    reduction: Literal["none", "mean", "sum"] = "mean",
    path: Path = "auto",
    form: PairForm | None = None,
) -> torch.Tensor:
    """Reduce ``term(firsts, seconds)`` over the pairs of each group.

    With a ``form`` (the term is ``ρ(u_first − u_second)`` of the single item tensor ``u``
    and ρ has a :class:`~distill.ranking.pair_sums.PairForm`), ``"mean"`` and ``"sum"`` over
    ``"all"`` or ``"unequal"`` pairs are computed exactly without listing the pairs
    (:mod:`distill.ranking.pair_sums`, ``docs/pair-sums.md``).

    Args:
        items: tensors ``(N,)`` or ``(N, K)`` holding per-item values; ``term`` receives them
            gathered (or broadcast) at the first and at the second item of every pair and returns
            one value per pair (K summed away).
        group_ids: ``(N,)`` integer group ids; labels ``(N,)`` for ``pairs="unequal"``.
        term: elementwise, broadcasting function of the two tuples.
        pairs: ``"all"``, ``"unequal"`` or an explicit :class:`~distill.ranking.pairs.Pairs`.
        normalize: ``"pair"`` (mean over all pairs) or ``"group"`` (mean of per-group means
            over the groups that have pairs).
        reduction: ``"none"`` returns the weighted per-pair values in
            :func:`~distill.ranking.pairs.make_pairs` order; ``"sum"`` their sum; ``"mean"`` the sum
            over the number of pairs (``"pair"``) or of groups with pairs (``"group"``).
        path: ``"auto"`` (the closed form when ``form`` applies, else per size bucket and
            device), ``"closed"`` (the closed form, required to apply), ``"dense"`` or
            ``"ragged"`` (enumerate the pairs).
        form: the closed form of ``term``, or None.

    Returns:
        scalar, or ``(P,)`` for ``"none"``; 0 with finite gradients when there are no pairs.

    Raises:
        ValueError: an unknown option; ``path="closed"`` where the closed form does not apply.
    """
    check_choice("normalize", normalize, ("pair", "group"))
    check_choice("reduction", reduction, ("none", "mean", "sum"))
    check_choice("path", path, ("auto", "closed", "dense", "ragged"))
    dtype = items[0].dtype
    if not isinstance(pairs, Pairs):
        check_choice("pairs", pairs, PAIR_SETS)
        if pairs == "unequal":
            check_labels(labels, group_ids)
    closed = _closed_applies(items, pairs, reduction, form)
    if path == "closed" and not closed:
        raise ValueError(
            "`path` 'closed' needs a `form`, one item tensor, `pairs` 'all' or 'unequal' and "
            f"`reduction` 'mean' or 'sum'; got pairs={_describe(pairs)}, reduction={reduction!r}"
        )
    if closed and path in ("auto", "closed"):
        total, denominator = closed_pair_sum(
            items[0],
            group_ids,
            labels if pairs == "unequal" else None,
            form=form,
            normalize=normalize,
        )
        return reduce_loss(total, reduction, count=denominator)
    if isinstance(pairs, Pairs):
        plan = _explicit_plan(pairs, normalize, dtype)
    else:
        plan = _plan(
            group_ids, labels, pairs, normalize, dtype, "ragged" if reduction == "none" else path
        )
    ragged = _ragged_terms(items, plan, term)
    if reduction == "none":
        return ragged
    total = _dense_sum(items, plan.blocks, term) + ragged.sum()
    return reduce_loss(total, reduction, count=plan.denominator)


def _closed_applies(items, pairs, reduction: str, form: PairForm | None) -> bool:
    """The closed form covers one per-item tensor, all/unequal pairs, a reduced result."""
    return (
        form is not None
        and len(items) == 1
        and not isinstance(pairs, Pairs)
        and reduction != "none"
    )


def _describe(pairs) -> str:
    return "Pairs(...)" if isinstance(pairs, Pairs) else repr(pairs)
