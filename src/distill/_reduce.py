"""The single reduction helper: losses compute unreduced values, then call :func:`reduce_loss`.

Summing the ``"none"`` output always equals ``"sum"``.
"""

from __future__ import annotations

from typing import Literal

import torch

from distill._validation import REDUCTIONS, check_choice

Reduction = Literal["none", "mean", "sum"]


def reduce_loss(
    loss: torch.Tensor, reduction: Reduction, *, count: int | torch.Tensor | None = None
) -> torch.Tensor:
    """Reduce an unreduced loss.

    Args:
        loss: per-example (or per-pair) losses, any shape.
        reduction: ``"none"`` returns ``loss``; ``"sum"`` its sum; ``"mean"`` the sum divided
            by ``count`` (default: ``loss.numel()``). An empty ``loss`` reduces to 0 with a
            finite gradient.
        count: the denominator of ``"mean"`` when it is not the number of elements
            (e.g. ``"batchmean"``: the number of examples).
    """
    check_choice("reduction", reduction, REDUCTIONS)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    denominator = loss.numel() if count is None else count
    if isinstance(denominator, torch.Tensor):
        return total / denominator.clamp_min(1)
    return total / max(denominator, 1)
