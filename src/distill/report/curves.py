"""One overlay of every model's curves: training loss and the validation metric, with a band
over seeds (the mean line between the lowest and highest seed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from distill.report.figures import is_number


def plot_curve_overlay(
    rows: Iterable[Mapping[str, Any]], *, metric: str, title: str = ""
) -> tuple[Figure, list[str]]:
    """Training ``loss`` (left) and validation ``metric`` (right) of every variant in one figure.

    Rows of several seeds (a ``seed`` key) are combined per variant at the steps every seed
    logged: the line is the mean and the band spans the lowest to the highest seed. A variant
    with fewer than 2 points on a panel is not drawn there (a single dot is no curve).

    Args:
        rows: ``metrics.jsonl`` rows (``variant``, ``step``, ``split``, numbers; ``seed``).
        metric: the validation key to draw (e.g. ``"ndcg@10"``).
        title: figure title.

    Returns:
        ``(figure, notes)``: ``notes`` names the curves left out, e.g.
        ``["teacher (valid auc: 1 point)"]``.

    Example:
        >>> figure, notes = plot_curve_overlay(rows, metric="auc")  # doctest: +SKIP
    """
    rows = list(rows)
    figure = Figure(figsize=(11, 4), layout="constrained")
    loss_axes, metric_axes = figure.subplots(1, 2)
    notes = _draw(loss_axes, rows, "train", "loss") + _draw(metric_axes, rows, "valid", metric)
    loss_axes.set(title="training loss", xlabel="step", ylabel="loss")
    metric_axes.set(title=f"validation {metric}", xlabel="step", ylabel=metric)
    if title:
        figure.suptitle(title)
    return figure, notes


def _draw(axes, rows, split: str, key: str) -> list[str]:
    notes = []
    for variant, seeds in _series(rows, split, key).items():
        steps = sorted(set.intersection(*(set(points) for points in seeds.values())))
        if len(steps) < 2:
            notes.append(f"{variant} ({split} {key}: {len(steps)} point)")
            continue
        values = np.array([[points[step] for step in steps] for points in seeds.values()])
        (line,) = axes.plot(steps, values.mean(axis=0), label=variant)
        if len(values) > 1:
            axes.fill_between(
                steps, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2
            )
    if axes.get_lines():
        axes.legend(fontsize=7)
    else:
        axes.text(0.5, 0.5, f"no {split} curve of {key}", ha="center", transform=axes.transAxes)
    return notes


def _series(rows, split: str, key: str) -> dict[str, dict[Any, dict[float, float]]]:
    """variant → seed → step → value."""
    series: dict[str, dict[Any, dict[float, float]]] = {}
    for row in rows:
        value = row.get(key)
        if row.get("split") != split or not is_number(value) or not is_number(row.get("step")):
            continue
        seeds = series.setdefault(str(row.get("variant", "")), {})
        seeds.setdefault(row.get("seed"), {})[row["step"]] = value
    return series
