"""Report figures from plain rows and arrays (no run directory needed).

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` built without pyplot
(no global state, nothing to close); embed it with :func:`distill.report.write_report` or save it
with :func:`distill.report.save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from distill.metrics import ece
from distill.temperature import softmax_t

# Margins in inches (left, right, bottom, top): fixed, so a figure is drawn once when saved
# (a layout engine such as "constrained" lays it out with a second draw, about half the time).
_MARGINS = (0.75, 0.2, 0.6, 0.6)


def _figure(width: float, height: float, *, bottom: float = _MARGINS[2]) -> Figure:
    """A figure of ``width × height`` inches with fixed margins and no layout engine."""
    left, right, _, top = _MARGINS
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=0.3,
        hspace=0.35,
    )
    return figure


_NOT_METRICS = {"variant", "step", "split", "phase", "lr", "epoch", "wall_time_s"}


def plot_training_curves(rows: Iterable[Mapping[str, Any]], *, title: str = "") -> Figure:
    """Training curves from ``metrics.jsonl`` rows: loss terms (train) and metrics (valid).

    Left panel: ``loss`` and every ``loss/<term>`` of ``split == "train"`` rows; right panel:
    every other numeric key of ``split == "valid"`` rows, against ``step``, one line per variant
    and key. A dotted vertical line marks each variant's first ``phase == "dynamic"`` step after
    a ``"static"`` one (the joint model's warm-up → dynamic distillation switch).

    Args:
        rows: dicts with ``variant``, ``step``, ``split``, optional ``phase`` and numbers.
        title: figure title.
    Returns:
        A Figure with two panels.
    Raises:
        ValueError: a row without ``step``.
    Example: ``plot_training_curves(read_metrics("runs/demo/metrics.jsonl"))``
    """
    rows = [_checked(row) for row in rows]
    figure = _figure(9, 3.4)
    loss_axes, metric_axes = figure.subplots(1, 2)
    _plot_series(loss_axes, rows, "train", lambda key: key == "loss" or key.startswith("loss/"))
    _plot_series(metric_axes, rows, "valid", lambda key: not key.startswith("loss"))
    for variant, step in _phase_switches(rows).items():
        for axes in (loss_axes, metric_axes):
            label = f"{variant}: static → dynamic".lstrip(": ")
            axes.axvline(step, color="black", linestyle=":", linewidth=1, label=label)
    for axes in (loss_axes, metric_axes):
        if axes.get_lines():
            axes.legend(fontsize=7)
    loss_axes.set(title="training loss terms", xlabel="step", ylabel="loss")
    metric_axes.set(title="validation", xlabel="step", ylabel="value")
    if title:
        figure.suptitle(title)
    return figure


def is_number(value: Any) -> bool:
    """A finite int/float that is not a bool (what a metrics row can plot)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked(row: Mapping[str, Any]) -> Mapping[str, Any]:
    if not is_number(row.get("step")):
        raise ValueError(f"metrics row must have a numeric `step`, got {dict(row)!r:.80}")
    return row


def _plot_series(axes, rows, split: str, wanted) -> None:
    series: dict[str, tuple[list, list]] = {}
    for row in rows:
        if row.get("split") != split:
            continue
        for key, value in row.items():
            if key not in _NOT_METRICS and wanted(key) and is_number(value):
                label = f"{row.get('variant', '')}: {key}".lstrip(": ")
                steps, values = series.setdefault(label, ([], []))
                steps.append(row["step"])
                values.append(value)
    for label, (steps, values) in series.items():
        axes.plot(steps, values, label=label, marker="." if len(steps) < 30 else None)
    if not series:
        axes.text(0.5, 0.5, f"no {split} rows", ha="center", transform=axes.transAxes)


def _phase_switches(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """variant → first step in phase "dynamic" after a "static" one."""
    seen_static: set[str] = set()
    switches: dict[str, float] = {}
    for row in sorted(rows, key=lambda row: row["step"]):
        variant, phase = str(row.get("variant", "")), row.get("phase")
        if phase == "static":
            seen_static.add(variant)
        elif phase == "dynamic" and variant in seen_static and variant not in switches:
            switches[variant] = row["step"]
    return switches


def plot_soft_targets(
    teacher_logits: torch.Tensor,
    *,
    temperatures: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 20.0),
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Teacher soft targets ``softmax(v / T)`` at several temperatures, one panel per example.

    Args:
        teacher_logits: ``(E, C)`` logits of a few examples (E ≤ 8 reads well).
        temperatures: the temperatures T, one bar per class and T.
        class_names: ``C`` tick labels (default: class indices).
    Returns:
        A Figure with E panels.
    Raises:
        ValueError: logits not 2-D, or ``class_names`` of the wrong length.
    Reference: Hinton et al. 2015 (docs/formulas.md#temperature,
    docs/formulas.md#classification-kd).
    Example: ``plot_soft_targets(teacher(x[:3]), temperatures=(1, 4, 20))``
    """
    if teacher_logits.ndim != 2:
        raise ValueError(
            f"`teacher_logits` must be (E, C), got shape {tuple(teacher_logits.shape)}"
        )
    examples, classes = teacher_logits.shape
    names = [str(i) for i in range(classes)] if class_names is None else list(class_names)
    if len(names) != classes:
        raise ValueError(f"`class_names` must have {classes} entries, got {len(names)}")
    figure = _figure(9, 1.6 * examples + 1.0)
    axes_list = np.atleast_1d(figure.subplots(examples, 1, sharex=True))
    width = 0.8 / len(temperatures)
    for example, axes in enumerate(axes_list):
        for index, temperature in enumerate(temperatures):
            probs = softmax_t(teacher_logits[example : example + 1].detach().double(), temperature)
            offsets = np.arange(classes) + (index - (len(temperatures) - 1) / 2) * width
            axes.bar(offsets, probs[0].cpu().numpy(), width=width, label=f"T = {temperature:g}")
        axes.set_ylabel(f"example {example}")
    axes_list[0].legend(fontsize=8, ncols=len(temperatures))
    axes_list[-1].set_xticks(np.arange(classes), names)
    figure.suptitle("teacher soft targets softmax(v / T)")
    return figure


def plot_reliability(
    probs: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, *, n_bins: int = 15
) -> Figure:
    """Reliability diagram: accuracy against confidence in equal-width bins, with the ECE.

    Multiclass ``probs (N, C)``: confidence is the top probability and a hit is top-1 correct.
    Binary ``probs (N,)``: confidence is P(y = 1) and the y value is the positive rate.
    ECE = Σ_b (n_b / N)·|acc_b − conf_b| (Guo et al. 2017).

    Args:
        probs: probabilities ``(N, C)`` or ``(N,)``.
        labels: ``(N,)`` class indices, or 0/1 labels for binary.
        n_bins: number of equal-width bins on [0, 1].
    Returns:
        A Figure with the diagram and a bin-count histogram.
    Raises:
        ValueError: mismatched lengths.
    Example: ``plot_reliability(torch.softmax(student(x), -1), y)``
    """
    confidence, hit = _confidence_and_hit(np.asarray(probs), np.asarray(labels))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    mean_hit = np.bincount(bins, hit, n_bins) / np.maximum(counts, 1)
    calibration_error = ece(
        torch.as_tensor(probs), torch.as_tensor(labels), n_bins=n_bins, kind="probs"
    )
    figure = _figure(4.5, 5)
    diagram, histogram = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    filled = counts > 0
    diagram.bar(edges[:-1][filled], mean_hit[filled], width=1 / n_bins, align="edge", alpha=0.7)
    diagram.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1)
    diagram.set(
        ylabel="accuracy", title=f"reliability (ECE = {calibration_error:.4f})", ylim=(0, 1)
    )
    histogram.bar(edges[:-1], counts, width=1 / n_bins, align="edge", color="0.5")
    histogram.set(xlabel="confidence", ylabel="count", xlim=(0, 1))
    return figure


def _confidence_and_hit(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(probs) != len(labels):
        raise ValueError(
            f"`labels` length {len(labels)} does not match `probs` length {len(probs)}"
        )
    if probs.ndim == 1:
        return probs.astype(np.float64), labels.astype(np.float64)
    hit = probs.argmax(axis=1) == labels
    return probs.max(axis=1).astype(np.float64), hit.astype(np.float64)


def plot_ndcg_bars(
    ndcg: Mapping[str, Mapping[Any, float]],
    *,
    errors: Mapping[str, Mapping[Any, float]] | None = None,
    title: str = "NDCG@k",
) -> Figure:
    """Grouped bars of NDCG@k per variant (k ascending), each bar labelled with its value.

    Args:
        ndcg: ``{variant: {k: NDCG@k}}`` (e.g. from :func:`distill.metrics.ndcg` per cutoff;
            the mean over seeds).
        errors: ``{variant: {k: spread}}`` drawn as error bars (e.g. the std over seeds).
        title: panel title.
    Returns:
        A Figure with one group of bars per variant and one bar per k.
    Reference: Järvelin & Kekäläinen 2002 (NDCG).
    Example: ``plot_ndcg_bars({"labels": {1: 0.61, 5: 0.66}, "pairwise L1": {1: 0.7, 5: 0.72}})``
    """
    cutoffs = sorted({k for values in ndcg.values() for k in values}, key=_cutoff_order)
    figure = _figure(max(5.5, 1.0 * len(ndcg) + 2.5), 3.6, bottom=1.1)
    axes = figure.subplots()
    width = 0.8 / max(len(cutoffs), 1)
    for index, k in enumerate(cutoffs):
        offsets = np.arange(len(ndcg)) + (index - (len(cutoffs) - 1) / 2) * width
        heights = [values.get(k, np.nan) for values in ndcg.values()]
        spread = None
        if errors is not None:
            spread = [errors.get(name, {}).get(k, np.nan) for name in ndcg]
        bars = axes.bar(offsets, heights, width=width, label=f"k = {k}", yerr=spread, capsize=3)
        axes.bar_label(bars, fmt="%.3f", fontsize=7)
    axes.set_xticks(np.arange(len(ndcg)), list(ndcg), rotation=20, ha="right")
    values = [v for values in ndcg.values() for v in values.values() if is_number(v)]
    low = min(values, default=0.0)
    axes.set(ylabel="NDCG@k", title=title, ylim=(max(0.0, low - 0.1), 1.0))
    axes.legend(fontsize=8)
    return figure


def _cutoff_order(k: Any) -> tuple[int, float, str]:
    """Numeric cutoffs in numeric order (1, 5, 10), then any others by name."""
    return (0, float(k), "") if is_number(k) else (1, 0.0, str(k))


def plot_pair_scatter(
    teacher_diff: torch.Tensor | np.ndarray,
    student_diff: torch.Tensor | np.ndarray,
    *,
    title: str = "pair differences",
    max_points: int = 5000,
) -> Figure:
    """Scatter of teacher vs student pair differences Δ (docs/formulas.md#pairs), line y = x.

    Args:
        teacher_diff, student_diff: ``(P,)`` pair differences of the same pairs.
        title: panel title (e.g. the variant and the signal).
        max_points: at most this many pairs are drawn (an even stride over the pairs).
    Returns:
        A Figure; the title shows the Pearson correlation of all pairs.
    Raises:
        ValueError: the two lengths differ.
    Example: ``plot_pair_scatter(difference(t, pairs), difference(s, pairs), title="L1")``
    """
    teacher, student = np.asarray(teacher_diff).ravel(), np.asarray(student_diff).ravel()
    if teacher.shape != student.shape:
        raise ValueError(
            f"`student_diff` shape {student.shape} does not match `teacher_diff` "
            f"shape {teacher.shape}"
        )
    stride = max(1, -(-len(teacher) // max_points))
    figure = _figure(4.5, 4.5)
    axes = figure.subplots()
    axes.scatter(teacher[::stride], student[::stride], s=4, alpha=0.4)
    both = np.concatenate([teacher, student]) if len(teacher) else np.zeros(1)
    axes.plot([both.min(), both.max()], [both.min(), both.max()], "k--", linewidth=1)
    corr = np.corrcoef(teacher, student)[0, 1] if len(teacher) > 1 else float("nan")
    axes.set(xlabel="teacher Δ", ylabel="student Δ", title=f"{title} (r = {corr:.3f})")
    return figure
