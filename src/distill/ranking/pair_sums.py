"""Exact sums of a penalty over the pairs of each group, without listing the pairs.

When a pair residual is a difference of one per-item value, ``r_ij = u_i − u_j`` (the
``logit``, ``prob`` and ``squared`` signals without ``absolute``), the sum over a group's pairs
of a penalty that is piecewise polynomial in ``r`` has a closed form over the items
(``docs/pair-sums.md``):

- ``r²``: ``n·Σ(u − ū)²`` per group, O(n);
- ``|r|``: ``Σ_k (2k − n + 1)·u_(k)`` over the group's sorted values (k from 0), O(n log n);
- ``r`` over oriented pairs: ``Σ_i (#below i − #above i)·u_i`` in the orientation order;
- ``huber_β(r) = |r| − β/2 + (β − |r|)₊²/(2β)``: the last term is a sum over the window of
  partners within β of each sorted item (``searchsorted`` + prefix sums of u and u²).

Pinball, SmeLU and the SmeLU-smoothed pinball are combinations of these (:func:`penalty_form`).
``unequal`` pairs are all pairs of a group minus the pairs inside each label level, oriented by
label. Subgradients at tied residuals are those of the enumerated penalty (0 for ``|r|`` and
pinball), so values and gradients equal :func:`distill.ranking.pair_engine.pair_sum`'s.
Everything is vectorised over ragged groups, accumulated in float64, O(items) memory; the plan
of a batch layout is cached by content.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from distill.penalties import Penalty
from distill.ranking.pairs import ContentCache, GroupLayout, group_layout

_PLAN_CACHE_SIZE = 4
_plans = ContentCache(_PLAN_CACHE_SIZE)


class PairForm(NamedTuple):
    """``ρ(r) = square·r² + absolute·|r| + linear[k]·r + huber·huber_β(r) + constant``.

    ``linear`` has one entry per score column (quantile heads), or one shared by all.
    """

    square: float = 0.0
    absolute: float = 0.0
    linear: tuple[float, ...] = (0.0,)
    huber: float = 0.0
    beta: float = 1.0
    constant: float = 0.0


def _mean_tau(tau: float | list[float]) -> float:
    return float(np.mean(tau))


def penalty_form(penalty: Penalty) -> PairForm | None:
    """The :class:`PairForm` of a penalty, or ``None`` when it has no closed pair sum.

    ``pinball(τ) = |r|/2 + (τ − ½)·r``; several τ average to their mean τ;
    ``smelu(β) = (r + huber_β(r) + β/2)/2``; the SmeLU-smoothed pinball is
    ``(τ − ½)·r + huber_β(r)/2 + β/4``. Log-cosh, G-SmeLU and the other smoothers return None.
    """
    name, params = penalty.name, penalty.params
    if name == "squared":
        return PairForm(square=1.0)
    if name == "absolute":
        return PairForm(absolute=1.0)
    if name == "pinball":
        return PairForm(absolute=0.5, linear=(_mean_tau(params["tau"]) - 0.5,))
    if name == "huber":
        return PairForm(huber=1.0, beta=float(params["beta"]))
    if name == "smelu":
        beta = float(params["beta"])
        return PairForm(linear=(0.5,), huber=0.5, beta=beta, constant=beta / 4)
    if name == "smoothed_pinball" and params["smoother"] == "smelu":
        beta = float(params["beta"])
        linear = (_mean_tau(params["tau"]) - 0.5,)
        return PairForm(linear=linear, huber=0.5, beta=beta, constant=beta / 4)
    return None


def quantile_form(taus: list[float]) -> PairForm:
    """Column k trained with ``pinball(τ_k)``: ``|r|/2 + (τ_k − ½)·r`` per column."""
    return PairForm(absolute=0.5, linear=tuple(tau - 0.5 for tau in taus))


class Partition(NamedTuple):
    """Items cut into blocks (groups, or a group's label levels) whose pairs are summed.

    Item tensors follow the flattened items (column-major); sorted-order tensors follow the
    items sorted by (block, value), which is the same block sequence for any values.
    """

    block: torch.Tensor  # (M,) long, block of each item
    offset: torch.Tensor  # (M,) float64, block index for the sort key
    square_scale: torch.Tensor  # (M,) float64, sign·weight·block size
    num_blocks: int
    sizes: torch.Tensor  # (B,) float64 block sizes (at least 1)
    abs_scale: torch.Tensor  # (M,) float64, sign·weight·(2k − n + 1), sorted order
    weight: torch.Tensor  # (M,) float64, sign·weight, sorted order
    start: torch.Tensor  # (M,) long, first sorted position of the block, sorted order
    size: torch.Tensor  # (M,) float64, block size, sorted order
    same: torch.Tensor  # (M − 1,) bool, neighbours in sorted order share a block


class SumPlan(NamedTuple):
    """Everything about a batch layout that does not depend on the scores."""

    key: torch.Tensor  # (M,) float64 orientation key (label, or minus the row)
    column: torch.Tensor  # (M,) long score column
    weight: torch.Tensor  # (M,) float64 group weight
    orient: torch.Tensor  # (M,) float64 weight·(#items below − #items above in the group)
    parts: list[tuple[int, Partition]]  # (sign, partition): groups +1, label levels −1
    pair_weight: float  # Σ_g weight_g · pairs_g (for the constant term)
    denominator: int


def _runs(new_run: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last position of each element's run; ``new_run`` (M − 1,) marks run starts."""
    starts = torch.cat([new_run.new_ones(1), new_run])
    run = torch.cumsum(starts, 0) - 1
    firsts = torch.nonzero(starts).squeeze(1)
    lasts = torch.cat([firsts[1:], firsts.new_tensor([len(starts)])]) - 1
    return firsts[run], lasts[run]


def _lexsort(*keys: torch.Tensor) -> torch.Tensor:
    """Stable order by the last key, then the one before, ... (like ``numpy.lexsort``)."""
    order = torch.arange(len(keys[0]), device=keys[0].device)
    for key in keys:
        order = order[torch.sort(key[order], stable=True).indices]
    return order


def _argsort(key: torch.Tensor) -> torch.Tensor:
    """Unstable ascending order (NumPy's vectorised sort on the CPU, several times torch's)."""
    if key.device.type == "cpu":
        return torch.from_numpy(np.argsort(key.numpy()))
    return torch.argsort(key)


def _window_ends(ordered: torch.Tensor, width: float) -> torch.Tensor:
    """For each element of the ascending ``ordered``, the index of the first one ``> it + width``.

    On the CPU one stable NumPy sort of the two sorted runs (a linear merge) replaces a binary
    search per element.
    """
    if ordered.device.type != "cpu":
        return torch.searchsorted(ordered, ordered + width, side="right")
    keys = ordered.numpy()
    merged = np.argsort(np.concatenate([keys, keys + width]), kind="stable")
    # the shifted copies keep their order; each one is preceded by the keys up to it
    return torch.from_numpy(np.flatnonzero(merged >= len(keys)) - np.arange(len(keys)))


def _columns(values: torch.Tensor, columns: int, step: int) -> torch.Tensor:
    """``values`` repeated for each column, column c shifted by ``c·step`` (column-major)."""
    shift = torch.arange(columns, device=values.device)[:, None] * step
    return (values[None, :] + shift).reshape(-1)


def _partition(block, num_blocks, item_weight, columns, sign) -> Partition:
    """The item and sorted-order tensors of one partition, repeated over ``columns``."""
    sizes = torch.bincount(block, minlength=num_blocks)
    block_weight = torch.zeros(num_blocks, dtype=torch.float64, device=block.device)
    block_weight[block] = item_weight
    block = _columns(block, columns, num_blocks)
    sizes, block_weight = sizes.repeat(columns), sign * block_weight.repeat(columns)
    sorted_block = torch.sort(block).values
    starts = torch.cumsum(sizes, 0) - sizes
    start, size = starts[sorted_block], sizes[sorted_block].double()
    position = torch.arange(len(block), device=block.device) - start
    weight = block_weight[sorted_block]
    return Partition(
        block=block,
        offset=block.double(),
        square_scale=block_weight[block] * sizes[block],
        num_blocks=num_blocks * columns,
        sizes=sizes.clamp_min(1).double(),
        abs_scale=weight * (2 * position - size + 1),
        weight=weight,
        start=start,
        size=size,
        same=sorted_block[1:] == sorted_block[:-1],
    )


def _levels(layout: GroupLayout, group: torch.Tensor, key: torch.Tensor):
    """Label levels of each group: level id per row, level sizes, and per row
    ``#below − #above`` (orientation key) within its group, and tied pairs per group."""
    by_key = _lexsort(key, group)  # rows by group, then orientation key
    in_group, in_key = group[by_key], key[by_key]
    level_start = torch.ones_like(group, dtype=torch.bool)
    level_start[1:] = (in_group[1:] != in_group[:-1]) | (in_key[1:] != in_key[:-1])
    level = torch.empty_like(group)
    level[by_key] = torch.cumsum(level_start, 0) - 1
    level_first, level_last = _runs(level_start[1:])
    group_first = layout.starts[in_group]
    group_last = group_first + layout.sizes[in_group] - 1
    orient = torch.empty(len(group), dtype=torch.float64, device=group.device)
    orient[by_key] = ((level_first - group_first) - (group_last - level_last)).double()
    level_sizes = torch.bincount(level)
    tied = torch.zeros_like(layout.sizes)
    tied.index_add_(0, in_group[level_start], level_sizes * (level_sizes - 1) // 2)
    return level, level_sizes, orient, tied


def _build_plan(group_ids, labels, normalize, columns) -> SumPlan:
    layout = group_layout(group_ids)
    device, rows = group_ids.device, len(group_ids)
    num_groups = len(layout.sizes)
    group = torch.empty(rows, dtype=torch.long, device=device)
    group[layout.order] = torch.repeat_interleave(
        torch.arange(num_groups, device=device), layout.sizes
    )
    key = -torch.arange(rows, device=device).double() if labels is None else labels.double()
    level, level_sizes, orient, tied = _levels(layout, group, key)
    counts = layout.sizes * (layout.sizes - 1) // 2 - tied
    has_pairs = counts > 0
    group_weight = has_pairs.double() / (1.0 if normalize == "pair" else counts.clamp_min(1))
    item_weight = group_weight[group]
    parts = [(1, _partition(group, num_groups, item_weight, columns, 1.0))]
    if labels is not None and len(level_sizes) < rows:
        parts.append((-1, _partition(level, len(level_sizes), item_weight, columns, -1.0)))
    return SumPlan(
        key=key.repeat(columns),
        column=torch.arange(rows * columns, device=device) // max(rows, 1),
        weight=item_weight.repeat(columns),
        orient=(orient * item_weight).repeat(columns),
        parts=parts,
        pair_weight=float((group_weight * counts).sum()) * columns,
        denominator=int(counts.sum()) if normalize == "pair" else int(has_pairs.sum()),
    )


def _plan(group_ids, labels, normalize, columns) -> SumPlan:
    options = ("closed", normalize, columns)
    plan = _plans.get(options, group_ids, labels)
    if plan is None:
        plan = _plans.put(
            options, (group_ids, labels), _build_plan(group_ids, labels, normalize, columns)
        )
    return plan


def _squared(x: torch.Tensor, part: Partition) -> torch.Tensor:
    """``Σ_blocks sign·w·n·Σ(x − x̄)²`` = the weighted sum of ``(x_i − x_j)²`` over pairs."""
    totals = torch.zeros(part.num_blocks, dtype=x.dtype, device=x.device)
    totals = totals.index_add(0, part.block, x)
    centred = x - (totals / part.sizes).index_select(0, part.block)
    return torch.dot(part.square_scale, centred * centred)


class Sorted(NamedTuple):
    order: torch.Tensor  # (M,) items in (block, value) order
    values: torch.Tensor  # (M,) x in that order (with gradient)
    keys: torch.Tensor  # (M,) the sort keys in that order
    ties: torch.Tensor | None  # (M − 1,) equal neighbours in one block; None: none or not sought


def _sort(x: torch.Tensor, part: Partition, gap: float, find_ties: bool) -> Sorted:
    """Sort by (block, value) with one key ``block·W + x``; blocks stay ``> gap`` apart."""
    plain = x.detach()
    low, high = torch.aminmax(plain)
    key = torch.addcmul(plain - low, part.offset, high - low + (gap + 1.0))
    order = _argsort(key)
    values = x.index_select(0, order)
    keys = key.index_select(0, order)
    if not find_ties or not _equal_neighbours(keys):  # equal values have equal keys
        return Sorted(order, values, keys, None)
    plain = values.detach()
    ties = part.same & (plain[1:] == plain[:-1])
    return Sorted(order, values, keys, ties if bool(ties.any()) else None)


def _equal_neighbours(ordered: torch.Tensor) -> bool:
    if ordered.device.type == "cpu":
        keys = ordered.numpy()
        return bool(np.any(keys[1:] == keys[:-1]))
    return bool((ordered[1:] == ordered[:-1]).any())


def _absolute(ordered: Sorted, part: Partition) -> torch.Tensor:
    """Weighted ``Σ |x_i − x_j|``; tied items share the mean coefficient (subgradient 0)."""
    if ordered.ties is None:
        return torch.dot(part.abs_scale, ordered.values)
    first, last = _runs(~ordered.ties)
    scale = part.weight * (first + last - 2 * part.start - part.size + 1)
    return torch.dot(scale, ordered.values)


def _huber_window(ordered: Sorted, part: Partition, beta: float) -> torch.Tensor:
    """Weighted ``Σ (β − |x_i − x_j|)₊²`` over the pairs closer than β (sorted windows)."""
    values = ordered.values
    after = torch.arange(1, len(values) + 1, device=values.device)
    ends = torch.maximum(_window_ends(ordered.keys, beta), after)
    prefix = F.pad(torch.cumsum(torch.stack([values, values * values]), 1), (1, 0))
    within = prefix.index_select(1, ends) - prefix.index_select(1, after)  # Σv, Σv² after each
    reach = values + beta
    window = reach * ((ends - after) * reach - 2 * within[0]) + within[1]
    return torch.dot(part.weight, window)


def _tie_correction(ordered: Sorted, plan: SumPlan) -> torch.Tensor:
    """Per item: ``#below − #above`` (orientation key) among the partners with an equal value.

    Those pairs have ``r = 0``, where pinball's subgradient is 0, not the linear part's slope.
    Only the tied items are re-sorted (by run, then orientation key).
    """
    new_run = torch.cat([ordered.ties.new_ones(1), ~ordered.ties])
    run = torch.cumsum(new_run, 0)
    tied = torch.nonzero(
        torch.cat([ordered.ties, ordered.ties.new_zeros(1)])
        | torch.cat([ordered.ties.new_zeros(1), ordered.ties])
    ).squeeze(1)
    items = ordered.order[tied]
    by = _lexsort(plan.key[items], run[tied])
    items, runs, keys = items[by], run[tied][by], plan.key[items[by]]
    run_first, run_last = _runs(runs[1:] != runs[:-1])
    sub_first, sub_last = _runs((runs[1:] != runs[:-1]) | (keys[1:] != keys[:-1]))
    correction = ((sub_first - run_first) - (run_last - sub_last)).double()
    return torch.zeros_like(plan.weight).index_copy(0, items, correction)


def _linear(x, plan: SumPlan, form: PairForm, ordered: Sorted | None) -> torch.Tensor:
    """Weighted ``Σ (x_i − x_j)`` over oriented pairs, column c scaled by ``linear[c]``.

    With ``ordered`` (the groups sorted, with ties) the pairs of equal values are left out.
    """
    coefficient = plan.orient
    if ordered is not None and ordered.ties is not None:
        coefficient = coefficient - plan.weight * _tie_correction(ordered, plan)
    slopes = torch.as_tensor(form.linear, dtype=x.dtype, device=x.device)
    if len(form.linear) > 1:
        coefficient = coefficient * slopes[plan.column]
        return torch.dot(coefficient, x)
    return slopes[0] * torch.dot(coefficient, x)


def closed_pair_sum(
    u: torch.Tensor,
    group_ids: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    form: PairForm,
    normalize: str,
) -> tuple[torch.Tensor, int]:
    """Weighted sum of ``ρ(u_i − u_j)`` over the pairs, and the ``"mean"`` denominator.

    Args:
        u: ``(N,)`` or ``(N, K)`` per-item values; column k is summed with ``form.linear[k]``.
        group_ids: ``(N,)`` integer group ids.
        labels: ``(N,)`` labels for ``unequal`` pairs (``labels[i] > labels[j]``), else None
            for all pairs (i before j in the group).
        form: the penalty as a :class:`PairForm`.
        normalize: ``"pair"`` (weight 1) or ``"group"`` (weight 1 / pairs of the group).

    Returns:
        ``(total, denominator)`` as :func:`~distill.ranking.pair_engine.pair_sum` reduces them:
        the total in ``u``'s dtype, the pair count (``"pair"``) or groups with pairs.
    """
    columns = 1 if u.ndim == 1 else u.shape[1]
    plan = _plan(group_ids, labels, normalize, columns)
    x = u.double().t().reshape(-1)
    if len(x) == 0:
        return (x.sum() * 0).to(u.dtype), plan.denominator
    terms, kinked = [], None  # kinked: the groups sorted, when ties matter for the linear part
    for sign, part in plan.parts:
        if form.square:
            terms.append(form.square * _squared(x, part))
        if not (form.absolute or form.huber):
            continue
        ordered = _sort(x, part, form.beta if form.huber else 0.0, bool(form.absolute))
        if form.absolute:
            terms.append(form.absolute * _absolute(ordered, part))
            kinked = ordered if sign > 0 else kinked
        if form.huber:
            abs_raw = torch.dot(part.abs_scale, ordered.values)
            window = _huber_window(ordered, part, form.beta)
            terms.append(form.huber * (abs_raw + window / (2 * form.beta)))
    if any(form.linear):
        terms.append(_linear(x, plan, form, kinked))
    total = terms[0] if terms else x.sum() * 0
    for term in terms[1:]:
        total = total + term
    constant = (form.constant - form.huber * form.beta / 2) * plan.pair_weight
    return (total + constant if constant else total).to(u.dtype), plan.denominator
