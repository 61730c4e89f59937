"""Learning-rate schedule: linear warm-up, then cosine decay."""

from __future__ import annotations

import math

import torch

from distill._validation import check_number, check_positive_int


def warmup_cosine_factor(
    step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> float:
    """LR multiplier at ``step`` (0-based count of optimiser steps already taken).

    Formula: ``f = (step + 1) / (warmup_steps + 1)`` while ``step < warmup_steps``; after it,
    with ``p = (step − warmup_steps) / max(1, total_steps − warmup_steps)`` clipped to [0, 1],
    ``f = m + (1 − m) · (1 + cos(π p)) / 2`` where ``m = min_lr_ratio``.

    Args:
        step: optimiser steps taken so far (>= 0).
        warmup_steps: length of the linear warm-up (0: none).
        total_steps: steps of the whole run (>= 1).
        min_lr_ratio: final multiplier, in [0, 1].

    Returns:
        The multiplier, in (0, 1].

    Raises:
        ValueError / TypeError: on negative steps or a ratio outside [0, 1].

    Reference: Loshchilov & Hutter 2017 (SGDR, cosine annealing); Goyal et al. 2017 (warm-up).

    Example:
        >>> warmup_cosine_factor(0, warmup_steps=0, total_steps=10)
        1.0
    """
    check_positive_int("step", step, minimum=0)
    check_positive_int("warmup_steps", warmup_steps, minimum=0)
    check_positive_int("total_steps", total_steps)
    check_number("min_lr_ratio", min_lr_ratio, low=0.0, high=1.0)
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`warmup_cosine_factor`; call ``.step()`` after each step.

    Example:
        >>> opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> sched = warmup_cosine(opt, warmup_steps=2, total_steps=10)
        >>> round(opt.param_groups[0]["lr"], 4)
        0.0333
    """

    def factor(step: int) -> float:
        return warmup_cosine_factor(
            step, warmup_steps=warmup_steps, total_steps=total_steps, min_lr_ratio=min_lr_ratio
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
