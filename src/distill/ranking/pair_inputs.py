"""Input checks and pair residuals shared by the pairwise and quantile ranking losses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from distill._validation import check_choice, check_finite, check_float_tensor
from distill.ranking.pairs import (
    SIGNALS,
    Signal,
    check_group_ids,
    check_labels,
    item_signal,
    pair_signal,
)

Residual = Callable[[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]], torch.Tensor]


def check_scores(name: str, scores: Any, ndim: int) -> torch.Tensor:
    """A finite float tensor of ``ndim`` dimensions (``(N,)`` scores or ``(N, K)`` heads)."""
    check_float_tensor(name, scores)
    if scores.ndim != ndim:
        expected = "(N,)" if ndim == 1 else "(N, K)"
        raise ValueError(f"`{name}` must have shape {expected}, got {tuple(scores.shape)}")
    return check_finite(name, scores)


def check_score_groups(group_ids: Any, scores: torch.Tensor, name: str) -> None:
    """Valid group ids, one per row of the scores ``name``."""
    check_group_ids(group_ids)
    if group_ids.shape[0] != scores.shape[0]:
        raise ValueError(
            f"`group_ids` length {group_ids.shape[0]} does not match `{name}` length "
            f"{scores.shape[0]}"
        )


def residual_items(
    student: torch.Tensor, teacher: torch.Tensor, signal: Signal, absolute: bool
) -> tuple[tuple[torch.Tensor, ...], Residual]:
    """Per-item tensors and the pair residual ``r = Δ_teacher − Δ_student`` built from them.

    For ``logit``, ``prob`` and ``squared`` without ``absolute`` the residual is a difference
    of one per-item value ``u = h(t) − h(s)``, so pairs only need ``u``.
    """
    check_choice("signal", signal, SIGNALS)
    student, teacher = item_signal(student, signal), item_signal(teacher.detach(), signal)
    if student.ndim > teacher.ndim:
        teacher = teacher.unsqueeze(-1)
    if signal != "pair_prob" and not absolute:
        return (teacher - student,), lambda first, second: first[0] - second[0]

    def residual(first, second):
        teacher_delta = pair_signal(first[1], second[1], signal, absolute)
        return teacher_delta - pair_signal(first[0], second[0], signal, absolute)

    return (student, teacher), residual


def labels_for(pairs: Any, labels: Any, group_ids: torch.Tensor) -> torch.Tensor | None:
    """The checked labels (required for ``pairs="unequal"``), else None."""
    if pairs == "unequal" and labels is None:
        raise ValueError("`labels` are required when `pairs` is 'unequal'")
    return None if labels is None else check_labels(labels, group_ids)
