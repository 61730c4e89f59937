"""Smooth ReLUs: SmeLU and the generalised G-SmeLU (docs/formulas.md#penalties).

Used as distillation penalties (centred G-SmeLU, ``distill.penalties.get("gsmelu")``) and as the
smoother φ of :func:`distill.penalties.smoothed_pinball`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from distill._validation import check_float_tensor, check_number


def smelu(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Smooth ReLU: ``0`` for ``x ≤ −β``, ``(x + β)²/(4β)`` for ``|x| ≤ β``, ``x`` for ``x ≥ β``.

    Computed branch-free as ``clamp(x + β, 0, 2β)²/(4β) + ReLU(x − β)``. It satisfies
    ``SmeLU_β(x) = (x + huber_β(x) + β/2) / 2``. Shamir, Lin & Coviello (2020), "Smooth
    activations and reproducibility in deep networks".

    Args:
        x: float tensor, any shape.
        beta: half-width ``β > 0`` of the quadratic zone.

    Returns:
        Same shape as ``x``.

    Raises:
        TypeError: ``x`` is not floating point.
        ValueError: ``beta`` not in ``(0, inf)``.

    Example:
        >>> smelu(torch.tensor([-2.0, 0.0, 2.0]), beta=1.0)
        tensor([0.0000, 0.2500, 2.0000])
    """
    check_float_tensor("x", x)
    beta = check_number("beta", beta, low=0.0, low_open=True)
    return (x + beta).clamp(0.0, 2.0 * beta).square() / (4.0 * beta) + F.relu(x - beta)


def _gsmelu_minimum(*, alpha: float, beta: float, g_minus: float, g_plus: float) -> float:
    """Where G-SmeLU is smallest: ``x_m = −(α·g₊ + β·g₋) / (g₊ − g₋)`` (needs g₋ ≤ 0 ≤ g₊)."""
    if not (g_minus <= 0.0 <= g_plus and g_minus < g_plus):
        raise ValueError(
            "`center=True` needs g_minus <= 0 <= g_plus with g_minus < g_plus, "
            f"got g_minus={g_minus}, g_plus={g_plus}"
        )
    return -(alpha * g_plus + beta * g_minus) / (g_plus - g_minus)


def _finite_number(name: str, value: Any) -> float:
    return check_number(name, value, low=-math.inf, high=math.inf, low_open=True, high_open=True)


def _gsmelu_uncentered(x, alpha, beta, g_minus, g_plus, t):
    """Branch-free G-SmeLU: the quadratic on ``clamp(x, −α, β)`` plus the two linear tails."""
    width = alpha + beta
    a = (g_plus - g_minus) / (2.0 * width)
    b = (alpha * g_plus + beta * g_minus) / width
    c = t + (alpha**2 * (g_plus + g_minus) + 2.0 * alpha * beta * g_minus) / (2.0 * width)
    u = x.clamp(-alpha, beta)
    tails = g_minus * (x + alpha).clamp_max(0.0) + g_plus * (x - beta).clamp_min(0.0)
    return a * u.square() + b * u + c + tails


def gsmelu(
    x: torch.Tensor,
    *,
    alpha: float,
    beta: float,
    g_minus: float,
    g_plus: float,
    t: float = 0.0,
    center: bool = False,
) -> torch.Tensor:
    """Generalised SmeLU: two linear tails joined by a quadratic, continuous in value and slope.

    ``g₋(x + α) + t`` for ``x ≤ −α``; ``a·x² + b·x + c`` for ``−α ≤ x ≤ β``; ``g₊·x + t +
    g₋(α + β)/2 + g₊(α − β)/2`` for ``x ≥ β``, with ``a = (g₊ − g₋)/(2(α + β))``, ``b = (α·g₊ +
    β·g₋)/(α + β)``, ``c = t + (α²(g₊ + g₋) + 2αβ·g₋)/(2(α + β))``. ``(g₋, g₊, α=β, t) = (0, 1,
    β, 0)`` is SmeLU. With ``center=True`` (a distillation penalty, "Smelularization") it is
    shifted to ``f(x + x_m) − f(x_m)`` so its minimum 0 sits at ``x = 0``.

    Args:
        x: float tensor, any shape.
        alpha, beta: the knots are at ``−α`` and ``β``; finite, ``α + β > 0``.
        g_minus, g_plus: slopes of the left and right tails (finite).
        t: value at the left knot, ``f(−α) = t`` (finite).
        center: move the minimum to 0 with value 0 (needs ``g₋ ≤ 0 ≤ g₊``, ``g₋ < g₊``).

    Returns:
        Same shape as ``x``.

    Raises:
        TypeError: ``x`` is not floating point or a parameter is not a number.
        ValueError: a parameter that is not finite, ``α + β ≤ 0``, or ``center=True`` with
            slopes that give no minimum (not ``g₋ ≤ 0 ≤ g₊`` with ``g₋ < g₊``).

    Reference: Shamir & Lin (2022), G-SmeLU; US 2023/0252281 ¶0103.

    Example:
        >>> gsmelu(torch.tensor([-2.0, 0.0, 2.0]), alpha=1.0, beta=1.0, g_minus=0.0, g_plus=1.0)
        tensor([0.0000, 0.2500, 2.0000])
    """
    check_float_tensor("x", x)
    alpha, beta, g_minus, g_plus, t = (
        _finite_number(name, value)
        for name, value in (
            ("alpha", alpha),
            ("beta", beta),
            ("g_minus", g_minus),
            ("g_plus", g_plus),
            ("t", t),
        )
    )
    check_number("alpha + beta", alpha + beta, low=0.0, low_open=True)
    if not center:
        return _gsmelu_uncentered(x, alpha, beta, g_minus, g_plus, t)
    x_m = _gsmelu_minimum(alpha=alpha, beta=beta, g_minus=g_minus, g_plus=g_plus)
    lowest = _gsmelu_uncentered(x.new_tensor(x_m), alpha, beta, g_minus, g_plus, t)
    return _gsmelu_uncentered(x + x_m, alpha, beta, g_minus, g_plus, t) - lowest
