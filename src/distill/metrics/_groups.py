"""Ragged groups in one sort: rows ordered by (group ↑, score ↓, label ↑), then segment maths.

The three parts are packed into one int64 key and sorted once (a radix sort in torch); the sorted
key is decoded instead of gathering rows. Only when the parts need more than 63 bits does it fall
back to two stable sorts. Ties in scores therefore put lower labels first: the worst case.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from distill._validation import check_finite, check_float_tensor

_SMALL_LEVELS = 64  # integral labels in [0, 64) are their own level index, without a sort


class Ranked(NamedTuple):
    """Rows in ranking order; every (N,) tensor is indexed by sorted position."""

    segment: torch.Tensor  # (N,) int64 group index 0..G-1 (groups in ascending id order)
    rank: torch.Tensor  # (N,) int64 0-based position inside the group
    level: torch.Tensor  # (N,) int64 index into level_values
    level_values: torch.Tensor  # (L,) float64 distinct label values, ascending
    score_start: torch.Tensor  # (N,) bool: first row of a run of equal (group, score)
    group_ids: torch.Tensor  # (G,) group ids, ascending
    group_size: torch.Tensor  # (G,) int64


def check_group_inputs(scores, labels, groups) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate 1-D scores, labels, groups of one length; return labels float64, groups int64."""
    check_float_tensor("scores", scores)
    if scores.ndim != 1 or scores.numel() == 0:
        raise ValueError(
            f"`scores` must be a non-empty 1-D tensor, got shape {tuple(scores.shape)}"
        )
    check_finite("scores", scores)
    for name, value in (("labels", labels), ("groups", groups)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
        if value.shape != scores.shape:
            raise ValueError(
                f"`{name}` shape {tuple(value.shape)} does not match `scores` shape "
                f"{tuple(scores.shape)}"
            )
    if groups.is_floating_point() or groups.dtype == torch.bool:
        raise TypeError(f"`groups` must be an integer tensor, got dtype {groups.dtype}")
    labels = labels.to(torch.float64)
    check_finite("labels", labels)
    return labels, groups.to(torch.int64)


def rank_groups(scores: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> Ranked:
    """Sort rows by (group ↑, score ↓, label ↑) and describe groups and tie runs."""
    group_code, group_bits, group_lookup = _dense_codes(groups)
    score_code, score_bits = _descending_score_codes(scores)
    level, level_values = _label_levels(labels)
    level_bits = max(len(level_values) - 1, 1).bit_length()
    group_code, score_code, level = _sort_parts(
        (group_code, group_bits), (score_code, score_bits), (level, level_bits)
    )
    segment, rank, start = segments(group_code)
    score_start = start.clone()
    score_start[1:] |= score_code[1:] != score_code[:-1]
    group_size = torch.bincount(segment)
    return Ranked(
        segment, rank, level, level_values, score_start, group_lookup(group_code[start]), group_size
    )


def segments(sorted_codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For sorted codes: (segment index, 0-based rank inside the segment, segment-start flags)."""
    start = torch.ones_like(sorted_codes, dtype=torch.bool)
    start[1:] = sorted_codes[1:] != sorted_codes[:-1]
    positions = torch.arange(len(sorted_codes), device=sorted_codes.device)
    first = torch.cummax(torch.where(start, positions, 0), dim=0).values
    return torch.cumsum(start, dim=0) - 1, positions - first, start


def run_ends(start: torch.Tensor) -> torch.Tensor:
    """Exclusive end position of the run (flagged by ``start``) that each row belongs to."""
    n = len(start)
    positions = torch.arange(n, device=start.device)
    next_start = torch.full_like(positions, n)
    next_start[:-1] = torch.where(start[1:], positions[1:], n)
    return torch.flip(torch.cummin(torch.flip(next_start, (0,)), dim=0).values, (0,))


def _label_levels(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Level index per row and the ascending distinct label values (float64)."""
    low, high = float(labels.min()), float(labels.max())
    if low >= 0 and high < _SMALL_LEVELS and bool((labels == labels.round()).all()):
        values = torch.arange(int(high) + 1, dtype=torch.float64, device=labels.device)
        return labels.to(torch.int64), values
    values, level = torch.unique(labels, return_inverse=True)
    return level, values


def _dense_codes(groups: torch.Tensor):
    """Order-preserving non-negative codes for group ids, their bit width and a decoder."""
    low, high = int(groups.min()), int(groups.max())
    span_bits = (high - low).bit_length()
    if span_bits <= max(len(groups) - 1, 1).bit_length() + 1:
        return groups - low, span_bits, lambda codes: codes + low
    ids, codes = torch.unique(groups, return_inverse=True)
    return codes, max(len(ids) - 1, 1).bit_length(), lambda codes: ids[codes]


def _descending_score_codes(scores: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Non-negative int64 codes, larger score → smaller code; equal scores → equal codes."""
    as_float32 = scores.to(torch.float32)
    if scores.dtype == torch.float64 and not bool((as_float32.double() == scores).all()):
        values, inverse = torch.unique(scores, return_inverse=True)
        return len(values) - 1 - inverse, max(len(values) - 1, 1).bit_length()
    bits = (as_float32 + 0.0).view(torch.int32).to(torch.int64)  # + 0.0 maps -0.0 to +0.0
    monotone = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # float order as signed int order
    return 0x7FFFFFFF - monotone, 32


def _sort_parts(*parts: tuple[torch.Tensor, int]) -> tuple[torch.Tensor, ...]:
    """Sort rows by the (code, bits) parts, most significant first; return the sorted codes."""
    if sum(bits for _, bits in parts) <= 63:
        key = torch.zeros_like(parts[0][0])
        for code, bits in parts:
            key = (key << bits) | code
        key = torch.sort(key).values
        decoded = []
        for _, bits in reversed(parts):
            decoded.append(key & ((1 << bits) - 1))
            key = key >> bits
        return tuple(reversed(decoded))
    order = torch.arange(len(parts[0][0]), device=parts[0][0].device)
    for code, _ in reversed(parts):
        order = order[torch.sort(code[order], stable=True).indices]
    return tuple(code[order] for code, _ in parts)
