"""Classification and CTR metrics: accuracy, NLL (log loss), expected calibration error, AUC.

Multiclass inputs are ``(N, C)`` logits with int64 class labels ``(N,)``; binary inputs are
``(N,)`` logits (or probabilities for :func:`ece`) with 0/1 labels ``(N,)``. All return floats.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from distill._validation import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive_int,
    check_tensor,
)
from distill.metrics._groups import descending_score_codes, sort_values


@torch.no_grad()
def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose prediction equals the label.

    ``mean(argmax_c z_c == y)`` for ``(N, C)`` logits; ``mean((z > 0) == y)`` for ``(N,)``
    binary logits (a logit of exactly 0 predicts class 0).

    Args:
        logits: ``(N, C)`` or ``(N,)`` float logits.
        labels: ``(N,)`` class indices in [0, C), or 0/1 for binary.

    Returns:
        Accuracy in [0, 1].

    Raises:
        TypeError, ValueError: wrong dtypes, shapes or label values.

    Reference: standard top-1 accuracy (Hinton et al. 2015 report test errors).

    Example:
        >>> accuracy(torch.tensor([[2.0, 0.1], [0.3, 0.9]]), torch.tensor([0, 0]))
        0.5
    """
    labels = _check_labels(logits, labels)
    predicted = logits.argmax(dim=1) if logits.ndim == 2 else (logits > 0).to(torch.int64)
    return float((predicted == labels).double().mean())


@torch.no_grad()
def nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood (log loss / cross-entropy), computed from logits.

    ``mean(−log softmax(z)_y)`` for ``(N, C)``; ``mean(softplus(z) − y·z)`` (binary log loss)
    for ``(N,)`` logits. Computed in float64.

    Args:
        logits: ``(N, C)`` or ``(N,)`` float logits.
        labels: ``(N,)`` class indices, or 0/1 for binary.

    Returns:
        The mean NLL in nats.

    Raises:
        TypeError, ValueError: wrong dtypes, shapes or label values.

    Reference: scikit-learn ``log_loss``; the CTR log loss of McMahan et al. 2013.

    Example:
        >>> round(nll(torch.tensor([0.0, 0.0]), torch.tensor([1, 0])), 4)  # log 2
        0.6931
    """
    labels = _check_labels(logits, labels)
    if logits.ndim == 2:
        return float(F.cross_entropy(logits.double(), labels))
    return float(F.binary_cross_entropy_with_logits(logits.double(), labels.double()))


@torch.no_grad()
def ece(
    probs_or_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_bins: int = 15,
    kind: Literal["probs", "logits"] | None = None,
) -> float:
    """Expected calibration error with equal-width confidence bins.

    ``ECE = Σ_b (n_b / N) · |acc_b − conf_b|`` over bins ``[b/B, (b+1)/B)`` (the last one closed).
    Multiclass: conf = top-1 probability, acc = top-1 correct. Binary: conf = P(y = 1) and
    acc = y, i.e. calibration of the predicted click rate (torchmetrics' binary convention).

    Args:
        probs_or_logits: ``(N, C)`` or ``(N,)`` probabilities or logits.
        labels: ``(N,)`` class indices, or 0/1 for binary.
        n_bins: number of bins B.
        kind: ``"probs"``, ``"logits"``, or ``None``: probabilities when every value lies in
            [0, 1], else logits (torchmetrics' rule; say it explicitly for binary logits).

    Returns:
        ECE in [0, 1].

    Raises:
        TypeError, ValueError: wrong dtypes, shapes, label values, ``n_bins`` or ``kind``.

    Reference: Naeini et al. 2015; Guo et al. 2017, "On Calibration of Modern Neural Networks",
    Eq. 3.

    Example:
        >>> probs = torch.tensor([0.9, 0.9, 0.2, 0.2], dtype=torch.float64)
        >>> round(ece(probs, torch.tensor([1, 0, 0, 0]), n_bins=5), 6)  # (2·0.4 + 2·0.2) / 4
        0.3
    """
    labels = _check_labels(probs_or_logits, labels)
    check_positive_int("n_bins", n_bins)
    if kind is not None:
        check_choice("kind", kind, ("probs", "logits"))
    probs = _as_probabilities(probs_or_logits.double(), kind)
    if probs.ndim == 2:
        confidence, predicted = probs.max(dim=1)
        correct = (predicted == labels).double()
    else:
        confidence, correct = probs, labels.double()
    bins = (confidence * n_bins).to(torch.int64).clamp(max=n_bins - 1)
    gap = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, confidence - correct)
    return float(gap.abs().sum() / len(labels))


@torch.no_grad()
def auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve: the probability that a positive outranks a negative.

    Mann–Whitney form ``AUC = (R₊ − n₊(n₊ + 1)/2) / (n₊ · n₋)`` with ``R₊`` the sum of the
    positives' ranks; tied scores get their average rank (half credit, as scikit-learn's
    ``roc_auc_score``). One sort of a packed (score, label) int64 key.

    Args:
        scores: ``(N,)`` float scores (logits or probabilities).
        labels: ``(N,)`` 0/1 labels (int, float or bool).

    Returns:
        AUC in [0, 1].

    Raises:
        TypeError, ValueError: wrong dtypes/shapes, NaN scores, labels not 0/1, only one class.

    Reference: Hanley & McNeil 1982, "The meaning and use of the area under a ROC curve".

    Example:
        >>> auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
        0.75
    """
    labels = _check_labels(scores, labels, binary_only=True)
    n_positive = float(labels.sum())
    n_negative = len(labels) - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError("`labels` must contain both classes 0 and 1 for auc, got only one")
    code, _ = descending_score_codes(scores)
    key = sort_values((code << 1) | labels.to(torch.int64))  # one sort; ties share a code
    code, positive = key >> 1, (key & 1).double()
    new_run = torch.ones_like(code, dtype=torch.bool)
    new_run[1:] = code[1:] != code[:-1]
    run = torch.cumsum(new_run, dim=0) - 1
    run_length = torch.bincount(run).double()
    average_rank = torch.cumsum(run_length, dim=0) - (run_length - 1) / 2  # 1-based, descending
    descending_sum = float((average_rank * torch.bincount(run, weights=positive)).sum())
    rank_sum = n_positive * (len(labels) + 1) - descending_sum  # ranks in ascending order
    return (rank_sum - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)


def _as_probabilities(values: torch.Tensor, kind: str | None) -> torch.Tensor:
    if kind is None:
        kind = "probs" if bool(((values >= 0) & (values <= 1)).all()) else "logits"
    if kind == "logits":
        return torch.softmax(values, dim=1) if values.ndim == 2 else torch.sigmoid(values)
    if not bool(((values >= 0) & (values <= 1)).all()):
        raise ValueError("`probs_or_logits` must lie in [0, 1] when kind='probs'")
    return values


def _check_labels(
    logits: torch.Tensor, labels: torch.Tensor, *, binary_only: bool = False
) -> torch.Tensor:
    """Validate (N, C) or (N,) float inputs with (N,) labels; return labels as int64."""
    name = "scores" if binary_only else "logits"
    check_float_tensor(name, logits)
    check_finite(name, logits)
    if logits.ndim not in ((1,) if binary_only else (1, 2)) or len(logits) == 0:
        raise ValueError(
            f"`{name}` must be non-empty with shape (N,){'' if binary_only else ' or (N, C)'}, "
            f"got {tuple(logits.shape)}"
        )
    check_tensor("labels", labels)
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"`labels` must have shape ({len(logits)},), got {tuple(labels.shape)}")
    classes = logits.shape[1] if logits.ndim == 2 else 2
    as_int = labels.to(torch.int64)
    if not bool((as_int == labels).all()) or int(as_int.min()) < 0 or int(as_int.max()) >= classes:
        expected = f"class indices in [0, {classes})" if logits.ndim == 2 else "0 or 1"
        low, high = float(labels.min()), float(labels.max())
        raise ValueError(f"`labels` must be {expected}, got values in [{low:g}, {high:g}]")
    return as_int
