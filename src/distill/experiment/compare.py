"""Comparisons over training seeds: mean ± std, paired differences with a t-interval, and
the share of the teacher's gap a variant recovers with Fieller's interval (``docs/seeds.md``).

Example:
    >>> d = paired_difference([0.91, 0.92, 0.90], [0.89, 0.90, 0.89])
    >>> d["wins"], d["clear"]
    (3, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from distill._extras import require
from distill._validation import check_number
from distill.config import DEFAULT_METRIC

CONFIDENCE = 0.95


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof = 1``; NaN for one value).

    Example:
        >>> mean_std([1.0, 2.0, 3.0])
        (2.0, 1.0)
    """
    array = _values("values", values)
    std = float(array.std(ddof=1)) if len(array) > 1 else math.nan
    return float(array.mean()), std


def paired_difference(
    values: Sequence[float],
    baseline: Sequence[float],
    *,
    higher_is_better: bool = True,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Mean paired difference ``d_k = values_k − baseline_k`` over seeds, with a t-interval.

    ``mean(d) ± t_{(1+c)/2, n−1} · s_d / √n`` (Student's paired t-interval). A variant
    "wins" a seed when it beats the baseline there (in the metric's direction); the
    difference is ``clear`` when the interval excludes 0.

    Args:
        values, baseline: ``(n,)`` metric of the variant and of the baseline, seed by seed.
        higher_is_better: the metric's direction (False for a loss).
        confidence: the interval's coverage in (0, 1).

    Returns:
        ``{"delta", "ci": [low, high] | None, "wins", "n", "clear"}``; ``ci`` is None (and
        ``clear`` False) for fewer than 2 seeds.

    Raises:
        ValueError: lengths differ, no values, a value that is not finite, or ``confidence``
            outside (0, 1).

    Reference: Student 1908; any statistics text's paired t-interval.

    Example:
        >>> paired_difference([3.0, 4.0], [1.0, 1.0])["delta"]
        2.5
    """
    check_number("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    deltas = _paired("values", values, baseline)
    better = deltas > 0 if higher_is_better else deltas < 0
    delta = float(deltas.mean())
    interval = _t_interval(deltas, confidence)
    clear = interval is not None and (interval[0] > 0 or interval[1] < 0)
    return {
        "delta": delta,
        "ci": interval,
        "wins": int(better.sum()),
        "n": len(deltas),
        "clear": clear,
    }


def ratio_interval(
    numerator: Sequence[float], denominator: Sequence[float], *, confidence: float = CONFIDENCE
) -> list[float] | None:
    """Fieller's interval for ``mean(numerator) / mean(denominator)`` over paired seeds.

    The interval is every ρ with ``|x̄ − ρȳ| ≤ t · √((s_xx − 2ρ s_xy + ρ² s_yy) / n)``; it is
    bounded only when the denominator's mean is itself clearly non-zero
    (``g = t² s_yy / (n ȳ²) < 1``).

    Args:
        numerator, denominator: ``(n,)`` paired per-seed values (n ≥ 2).
        confidence: the interval's coverage in (0, 1).

    Returns:
        ``[low, high]``, or None when the interval is unbounded (the denominator is within
        the noise of 0) or there are fewer than 2 seeds.

    Raises:
        ValueError: lengths differ or values that are not finite.

    Reference: Fieller 1954, "Some problems in interval estimation".

    Example:
        >>> ratio_interval([0.5, 0.6, 0.55], [1.0, 1.1, 1.05])  # doctest: +SKIP
        [0.47, 0.58]
    """
    x, y = _values("numerator", numerator), _values("denominator", denominator)
    if x.shape != y.shape:
        raise ValueError(f"`numerator` has {len(x)} seeds but `denominator` has {len(y)}")
    n = len(x)
    if n < 2:
        return None
    covariance = np.cov(x, y, ddof=1) / n
    s_xx, s_xy, s_yy = covariance[0, 0], covariance[0, 1], covariance[1, 1]
    t = require("scipy.stats", extra="data").t.ppf((1 + confidence) / 2, n - 1)
    x_bar, y_bar = x.mean(), y.mean()
    if y_bar == 0 or t**2 * s_yy >= y_bar**2:
        return None
    # (x̄ − ρȳ)² = t²(s_xx − 2ρ s_xy + ρ² s_yy): a quadratic a ρ² + b ρ + c = 0.
    a = y_bar**2 - t**2 * s_yy
    b = -2 * (x_bar * y_bar - t**2 * s_xy)
    c = x_bar**2 - t**2 * s_xx
    root = math.sqrt(max(b * b - 4 * a * c, 0.0))
    return sorted([float((-b - root) / (2 * a)), float((-b + root) / (2 * a))])


def gap_recovered_over_seeds(
    values: Sequence[float],
    baseline: Sequence[float],
    teacher: Sequence[float],
    *,
    higher_is_better: bool = True,
) -> tuple[float | None, list[float] | None]:
    """``mean(variant − baseline) / mean(teacher − baseline)`` with Fieller's interval.

    A ratio of mean gaps, not a mean of per-seed ratios (those explode on seeds where the
    teacher barely beats the baseline).

    Returns:
        ``(gap recovered, [low, high])``; ``(None, None)`` when the teacher does not beat the
        baseline on average, and an interval of None when the teacher's edge is within the
        noise.
    """
    recovered = _paired("values", values, baseline)
    gap = _paired("teacher", teacher, baseline)
    edge = gap.mean() if higher_is_better else -gap.mean()
    if edge <= 1e-12:
        return None, None
    return float(recovered.mean() / gap.mean()), ratio_interval(recovered, gap)


def _t_interval(deltas: np.ndarray, confidence: float) -> list[float] | None:
    if len(deltas) < 2:
        return None
    if np.ptp(deltas) == 0:
        return [float(deltas[0])] * 2
    stats = require("scipy.stats", extra="data")
    result = stats.ttest_1samp(deltas, 0.0).confidence_interval(confidence)
    return [float(result.low), float(result.high)]


def _paired(name: str, values: Sequence[float], baseline: Sequence[float]) -> np.ndarray:
    array, base = _values(name, values), _values("baseline", baseline)
    if array.shape != base.shape:
        raise ValueError(f"`{name}` has {len(array)} seeds but `baseline` has {len(base)}")
    return array - base


def _values(name: str, values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if len(array) == 0:
        raise ValueError(f"`{name}` must hold at least one value, got none")
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` must be finite, got {array.tolist()}")
    return array


def headline_metric(results: dict[str, Any]) -> str:
    """The metric the run compares on: ``run.metric`` when the rows report it (``"loss"``
    is a validation criterion only), else the track's default."""
    metric = results["metric"]
    teacher = results.get("teacher") or {}
    reported = teacher.get("metrics") or next(iter(results["variants"]), {}).get("metrics", {})
    return metric if metric in reported else DEFAULT_METRIC[results["track"]]
