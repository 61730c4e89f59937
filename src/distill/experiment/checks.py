"""Warnings that decide whether a run's comparison can be trusted (``docs/seeds.md``).

- the teacher is no better than the student baseline (nothing to distill);
- the test split is too small to separate the variants (fewer than ``MIN_POSITIVES``
  positives, or, over seeds, every interval contains 0 while the differences are smaller);
- a student that is not smaller than its teacher;
- binary KD at T > 1 without a tempered student, with its calibration cost (log loss, ECE).

Example:
    >>> run_warnings(cfg, results, test_labels)  # doctest: +SKIP
    ['the teacher (auc 0.7412) is no better than the baseline labels (0.7420): ...']
"""

from __future__ import annotations

from typing import Any

import torch

from distill.config import RunConfig
from distill.experiment.compare import headline_metric

MIN_POSITIVES = 100
"""Fewer positive test labels (relevant documents, clicks) than this cannot separate variants."""


def run_warnings(cfg: RunConfig, results: dict[str, Any], test_labels: torch.Tensor) -> list[str]:
    """Every warning of a run's results (single-seed rows or combined over seeds).

    Args:
        cfg: the run config.
        results: the ``results.json`` mapping (``distill.experiment.seeds.combine`` for seeds).
        test_labels: ``(N,)`` labels of the test split.

    Returns:
        One sentence per problem, in the order above; empty when none.
    """
    metric = headline_metric(results)
    rows = {row["name"]: row for row in results["variants"]}
    baseline, teacher = rows.get(results["baseline"]), results.get("teacher")
    found = []
    if baseline is not None and teacher is not None:
        found += _teacher_edge(teacher, baseline, metric)
    found += _test_size(cfg.run.track, test_labels, results, metric)
    if teacher is not None and teacher.get("params"):
        found += [
            f"student {row['name']} ({row['params']:,} parameters) is not smaller than the "
            f"teacher ({teacher['params']:,}): this compares models, it does not compress one"
            for row in results["variants"]
            if row["params"] >= teacher["params"]
        ]
    if baseline is not None:
        found += _untempered(cfg, rows, baseline)
    return found


def _teacher_edge(teacher, baseline, metric: str) -> list[str]:
    paired = teacher.get("paired")
    edge = teacher["metrics"][metric] - baseline["metrics"][metric]
    values = f"{metric} {teacher['metrics'][metric]:.4f} vs {baseline['metrics'][metric]:.4f}"
    if edge <= 0:
        return [
            f"the teacher is no better than the baseline {baseline['name']} ({values}): "
            "there is no gap to recover; train a stronger teacher (more steps, more features)"
        ]
    if paired is not None and paired["ci"] is not None and not paired["clear"]:
        low, high = paired["ci"]
        return [
            f"the teacher's edge over the baseline {baseline['name']} is within the seed noise "
            f"({values}; Δ 95 % CI [{low:+.4f}, {high:+.4f}], better on {paired['wins']}/"
            f"{paired['n']} seeds): gap recovered has no reliable meaning"
        ]
    return []


def _test_size(track: str, labels: torch.Tensor, results, metric: str) -> list[str]:
    found = []
    if track != "classification":
        positives = int((labels > 0).sum())
        if positives < MIN_POSITIVES:
            found.append(
                f"the test split has {positives} positive labels (fewer than {MIN_POSITIVES}): "
                f"too few to separate the variants on {metric}; use more data or a larger "
                "test share (data.split)"
            )
    compared = [row["paired"] for row in results["variants"] if row.get("paired")]
    intervals = [paired for paired in compared if paired["ci"] is not None]
    if intervals and not any(paired["clear"] for paired in intervals):
        width = max((p["ci"][1] - p["ci"][0]) / 2 for p in intervals)
        largest = max(abs(p["delta"]) for p in intervals)
        found.append(
            f"no variant is separated from the baseline: the intervals (± up to {width:.4f}) "
            f"are wider than the differences (largest |Δ| {largest:.4f}); run more seeds or "
            "use a larger test split"
        )
    return found


def _untempered(cfg: RunConfig, rows, baseline) -> list[str]:
    found = []
    for variant in cfg.variants:
        term = variant.objective.binary_kd
        if term is None or term.temperature <= 1 or term.temper_student:
            continue
        found.append(
            f"variant {variant.name}: binary KD at T = {term.temperature:g} without "
            f"temper_student pulls the student's click rate toward the flattened σ(v/T)"
            f"{_calibration_cost(rows.get(variant.name), baseline)}; set "
            "binary_kd.temper_student = true or temperature = 1"
        )
    if cfg.joint is not None and cfg.joint.temperature > 1:
        found.append(
            f"joint: T = {cfg.joint.temperature:g} > 1 flattens the teacher's click rates the "
            f"student learns{_calibration_cost(rows.get('joint'), baseline)}; use temperature = 1"
        )
    return found


def _calibration_cost(row, baseline) -> str:
    if row is None or "ece" not in row["metrics"]:
        return ""
    mine, base = row["metrics"], baseline["metrics"]
    return (
        f" (log loss {mine['nll']:.4f} vs {base['nll']:.4f} of {baseline['name']}, "
        f"ECE {mine['ece']:.4f} vs {base['ece']:.4f})"
    )
