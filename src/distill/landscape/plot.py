"""Matplotlib figure of a :class:`~distill.landscape.curves.LossLandscape` (no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy import special

from distill.landscape.curves import LossLandscape
from distill.report.files import save_figure

_REFERENCE_STYLE = {
    "logit_mean": ("logit mean", "--"),
    "prob_mean": ("prob mean", "-."),
    "median": ("median", ":"),
}


def plot_landscape(
    result: LossLandscape, path: str | Path | None = None, *, normalize: bool = True
) -> Figure:
    """Plot each expected-loss curve, its minimiser, and the teacher's reference points.

    The x axis is the student logit s (logit domain) or σ(s) (probability domain). The teacher
    density is shaded behind the curves.

    Args:
        result: from :func:`~distill.landscape.curves.expected_loss_landscape`.
        path: if given, the PNG is written there atomically (temp file + rename).
        normalize: rescale each curve to [0, 1] over the grid so shapes compare.
    Returns:
        A matplotlib Figure, made without pyplot (no global state; nothing to close).
    Example: ``plot_landscape(expected_loss_landscape(normal(), ["squared"]), "l.png")``
    """
    to_x = special.expit if result.domain == "prob" else (lambda v: v)
    figure = Figure(figsize=(10, 5), layout="constrained")
    axes = figure.subplots()
    _shade_density(axes, to_x(result.distribution.nodes), to_x(result.grid))
    for (label, curve), row in zip(result.curves.items(), result.minimisers, strict=True):
        low, span = (curve.min(), np.ptp(curve) or 1.0) if normalize else (0.0, 1.0)
        (line,) = axes.plot(to_x(result.grid), (curve - low) / span, label=label)
        marker_y = (row.value - low) / span
        axes.plot([to_x(row.logit)], [marker_y], "o", color=line.get_color(), markersize=6)
    for key, value in result.reference.items():
        name, style = _REFERENCE_STYLE[key]
        axes.axvline(to_x(value), color="black", linestyle=style, linewidth=1, label=name)
    axes.set_xlabel("student probability σ(s)" if result.domain == "prob" else "student logit s")
    axes.set_ylabel("expected loss" + (" (scaled to [0, 1])" if normalize else ""))
    params = ", ".join(f"{k}={v:g}" for k, v in result.distribution.params.items())
    figure.suptitle(f"{result.distribution.name}({params}), {result.domain} domain")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if path is not None:
        save_figure(figure, path)
    return figure


def _shade_density(axes, values: np.ndarray, grid: np.ndarray) -> None:
    twin = axes.twinx()
    twin.hist(values, bins=60, range=(grid.min(), grid.max()), density=True, color="0.85")
    twin.set_yticks([])
    axes.set_zorder(twin.get_zorder() + 1)
    axes.patch.set_visible(False)
