"""Losses on a teacher's insides: hidden states, attention, embeddings (TinyBERT), hints (FitNets).

The teacher is a constant: its tensors are detached. Each loss computes an unreduced value and
reduces it once with :func:`distill._reduce.reduce_loss`. Widths that differ need a learnable
map (``projection`` / ``regressor``), made by :func:`projection` or :func:`hint_regressor`; it
is trained with the student and is not part of the exported student. The prediction layer of
TinyBERT is :func:`distill.losses.kd_loss` with ``alpha=1``. Maths: ``docs/intermediate.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from distill._reduce import Reduction, reduce_loss
from distill._validation import check_choice, check_float_tensor, check_positive_int

AttentionKind = Literal["mse", "kl"]
Map = Callable[[torch.Tensor], torch.Tensor]


def _mapped(
    student: torch.Tensor, teacher: torch.Tensor, mapping: Map | None, names: tuple[str, str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mapping(student)`` (or ``student``) and the detached teacher, shapes checked equal."""
    student_name, map_name = names
    check_float_tensor(student_name, student)
    check_float_tensor("teacher", teacher)
    mapped = student if mapping is None else mapping(student)
    if mapped.shape != teacher.shape:
        hint = "" if mapping is not None else f"; pass `{map_name}` to map the student's width"
        what = f"`{student_name}`" + ("" if mapping is None else f" after `{map_name}`")
        raise ValueError(
            f"{what} has shape {tuple(mapped.shape)} but the teacher's is "
            f"{tuple(teacher.shape)}{hint}"
        )
    return mapped, teacher.detach().to(mapped.dtype)


def hidden_distillation_loss(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    *,
    projection: Map | None = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """TinyBERT's hidden-state loss: mean squared error between ``H_S·W_h`` and ``H_T``.

    Formula: ``L_hidn = MSE(H_S·W_h, H_T) = mean over (batch, tokens, width) of
    (H_S·W_h − H_T)²``; ``W_h`` (``projection``) maps the student's width d' to the
    teacher's d and is learned with the student (e.g. :func:`projection`).

    Args:
        student_hidden: ``(..., d')`` the student layer's output (e.g. ``(B, L, d')``).
        teacher_hidden: ``(..., d)`` the mapped teacher layer's output (a constant).
        projection: a callable (usually an ``nn.Linear(d', d)``) applied to the student; None
            when the widths already match.
        reduction: ``"mean"`` (over every element), ``"sum"`` or ``"none"`` (elementwise,
            the teacher's shape).

    Returns:
        A scalar, or the elementwise squared errors with ``reduction="none"``.

    Raises:
        TypeError: non-float tensors.
        ValueError: shapes that differ (after the projection), naming both shapes; a bad
            ``reduction``.

    Reference: Jiao et al. 2019, "TinyBERT", Eq. 8; ``docs/intermediate.md``.

    Example:
        >>> w = projection(64, 128)
        >>> hidden_distillation_loss(torch.randn(2, 8, 64), torch.randn(2, 8, 128), projection=w)
        tensor(..., grad_fn=...)
    """
    return _projected_mse(student_hidden, teacher_hidden, projection, "student_hidden", reduction)


def embedding_distillation_loss(
    student_embedding: torch.Tensor,
    teacher_embedding: torch.Tensor,
    *,
    projection: Map | None = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """TinyBERT's embedding-layer loss: ``L_embd = MSE(E_S·W_e, E_T)``.

    The same projected mean squared error as :func:`hidden_distillation_loss`, on the
    embedding layer's outputs ``(B, L, d')`` and ``(B, L, d)`` with its own map ``W_e``.

    Args:
        student_embedding: ``(..., d')``.
        teacher_embedding: ``(..., d)`` (a constant).
        projection: ``W_e`` (e.g. :func:`projection`), or None for equal widths.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A scalar (or elementwise squared errors).

    Raises:
        TypeError, ValueError: as :func:`hidden_distillation_loss`.

    Reference: Jiao et al. 2019, "TinyBERT", Eq. 9; ``docs/intermediate.md``.

    Example:
        >>> embedding_distillation_loss(torch.zeros(2, 8, 16), torch.ones(2, 8, 16))
        tensor(1.)
    """
    return _projected_mse(
        student_embedding, teacher_embedding, projection, "student_embedding", reduction
    )


def _projected_mse(student, teacher, projection: Map | None, name: str, reduction: Reduction):
    mapped, target = _mapped(student, teacher, projection, (name, "projection"))
    return reduce_loss((mapped - target).square(), reduction)


def attention_distillation_loss(
    student_attn: torch.Tensor,
    teacher_attn: torch.Tensor,
    *,
    kind: AttentionKind = "mse",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """TinyBERT's attention loss: per-head MSE of attention scores, or row-wise KL.

    Formulas (``h`` heads, ``A_i`` the ``(queries, keys)`` matrix of head i):

    - ``"mse"``: ``L_attn = (1/h)·Σ_i MSE(A_i^S, A_i^T)``, i.e. the mean of ``(A_S − A_T)²``
      over (batch, heads, queries, keys), on the *unnormalised* scores ``Q·Kᵀ/√d_k``
      (TinyBERT's choice: they converge faster than the softmax outputs).
    - ``"kl"``: ``KL(A_T ‖ A_S) = Σ_k A_T[k]·(log A_T[k] − log A_S[k])`` per (batch, head,
      query) row of attention *probabilities*, averaged over the rows.

    Args:
        student_attn: ``(B, h, Q, K)`` the student's scores (``"mse"``) or probabilities
            (``"kl"``).
        teacher_attn: ``(B, h, Q, K)`` the teacher's, same shape (same number of heads).
        kind: ``"mse"`` or ``"kl"``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``"mse"``: ``(B, h, Q, K)``;
            ``"kl"``: ``(B, h, Q)``, one value per row).

    Returns:
        A scalar (or the unreduced values).

    Raises:
        TypeError: non-float tensors.
        ValueError: tensors that are not 4-D or differ in shape; for ``"kl"``, rows that are
            not probabilities (negative, or not summing to 1).

    Reference: Jiao et al. 2019, "TinyBERT", Eq. 7; Wang et al. 2020, "MiniLM" (the KL form);
    ``docs/intermediate.md``.

    Example:
        >>> scores = torch.randn(2, 4, 8, 8)
        >>> attention_distillation_loss(scores, scores)
        tensor(0.)
    """
    check_choice("kind", kind, ("mse", "kl"))
    check_float_tensor("student_attn", student_attn)
    check_float_tensor("teacher_attn", teacher_attn)
    if student_attn.ndim != 4 or student_attn.shape != teacher_attn.shape:
        raise ValueError(
            "`student_attn` and `teacher_attn` must both be (batch, heads, queries, keys) with "
            f"equal shapes, got {tuple(student_attn.shape)} and {tuple(teacher_attn.shape)}"
        )
    teacher = teacher_attn.detach().to(student_attn.dtype)
    if kind == "mse":
        return reduce_loss((student_attn - teacher).square(), reduction)
    _check_rows("student_attn", student_attn)
    _check_rows("teacher_attn", teacher)
    tiny = torch.finfo(student_attn.dtype).tiny
    rows = torch.xlogy(teacher, teacher) - teacher * student_attn.clamp_min(tiny).log()
    return reduce_loss(rows.sum(dim=-1), reduction)


def _check_rows(name: str, probs: torch.Tensor) -> None:
    """Attention probabilities: non-negative rows summing to 1."""
    tolerance = 1e-2 if probs.element_size() <= 2 else 1e-4
    if probs.numel() == 0:
        return
    worst = (probs.detach().sum(dim=-1) - 1).abs().max().item()
    if bool((probs < 0).any()) or worst > tolerance:
        raise ValueError(
            f"`{name}` must hold attention probabilities for kind='kl' (non-negative rows "
            f"summing to 1 within {tolerance:g}), got a row off by {worst:.4g} or a negative "
            "entry; use kind='mse' for unnormalised scores"
        )


def hint_loss(
    student_guided: torch.Tensor,
    teacher_hint: torch.Tensor,
    *,
    regressor: Map | None = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """FitNets hint loss: ``½·‖u_h(x) − r(v_g(x))‖²`` per example.

    ``u_h`` is the teacher's hint layer, ``v_g`` the student's guided layer and ``r`` the
    regressor (:func:`hint_regressor`) mapping the guided layer to the hint's shape.

    Args:
        student_guided: ``(B, ...)`` the guided layer's output, e.g. ``(B, C', H', W')`` or
            ``(B, D')``.
        teacher_hint: ``(B, ...)`` the hint layer's output (a constant).
        regressor: ``r``; None when the shapes already match.
        reduction: ``"mean"`` (over examples), ``"sum"`` or ``"none"`` (``(B,)``).

    Returns:
        A scalar, or one value per example.

    Raises:
        TypeError, ValueError: non-float tensors; shapes that differ after the regressor.

    Reference: Romero et al. 2015, "FitNets: Hints for Thin Deep Nets", Eq. 3;
    ``docs/intermediate.md``.

    Example:
        >>> r = hint_regressor((16, 8, 8), (32, 4, 4))
        >>> hint_loss(torch.randn(2, 16, 8, 8), torch.randn(2, 32, 4, 4), regressor=r).shape
        torch.Size([])
    """
    mapped, target = _mapped(
        student_guided, teacher_hint, regressor, ("student_guided", "regressor")
    )
    per_example = 0.5 * (mapped - target).square().flatten(1).sum(dim=1)
    return reduce_loss(per_example, reduction)


def projection(student_width: int, teacher_width: int, *, bias: bool = True) -> nn.Linear:
    """The learnable width map ``W`` of the hidden/embedding losses: ``nn.Linear(d', d)``.

    Example:
        >>> projection(64, 128)
        Linear(in_features=64, out_features=128, bias=True)
    """
    check_positive_int("student_width", student_width)
    check_positive_int("teacher_width", teacher_width)
    return nn.Linear(student_width, teacher_width, bias=bias)


def hint_regressor(student_shape: Sequence[int], teacher_shape: Sequence[int]) -> nn.Module:
    """FitNets' regressor from a guided layer's per-example shape to the hint's.

    ``(D',)`` → ``(D,)``: an ``nn.Linear(D', D)`` (MLP features). ``(C', H', W')`` →
    ``(C, H, W)``: an ``nn.Conv2d(C', C, kernel=(H'−H+1, W'−W+1))`` (convolutional features;
    FitNets' fully convolutional regressor, which needs ``H' ≥ H`` and ``W' ≥ W``).

    Raises:
        ValueError: shapes of other ranks, different ranks, or a hint larger than the guided
            layer spatially.

    Reference: Romero et al. 2015, "FitNets", Sec. 2.2.

    Example:
        >>> hint_regressor((16, 8, 8), (32, 6, 6))
        Conv2d(16, 32, kernel_size=(3, 3), stride=(1, 1))
    """
    student_shape, teacher_shape = tuple(student_shape), tuple(teacher_shape)
    for name, shape in (("student_shape", student_shape), ("teacher_shape", teacher_shape)):
        if len(shape) not in (1, 3):
            raise ValueError(f"`{name}` must be (D,) or (C, H, W) per example, got {shape}")
        for size in shape:
            check_positive_int(name, size)
    if len(student_shape) != len(teacher_shape):
        raise ValueError(
            f"`student_shape` {student_shape} and `teacher_shape` {teacher_shape} must have "
            "the same rank (both MLP or both convolutional features)"
        )
    if len(student_shape) == 1:
        return nn.Linear(student_shape[0], teacher_shape[0])
    kernel = (student_shape[1] - teacher_shape[1] + 1, student_shape[2] - teacher_shape[2] + 1)
    if min(kernel) < 1:
        raise ValueError(
            f"the hint {teacher_shape} is larger than the guided layer {student_shape}; "
            "a convolutional regressor needs H' >= H and W' >= W"
        )
    return nn.Conv2d(student_shape[0], teacher_shape[0], kernel_size=kernel)
