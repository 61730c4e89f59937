"""``results.json`` of a run: rows of the teacher and the variants, and gap recovered."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from torch import nn

from distill import models
from distill._io import write_atomic
from distill.config import RunConfig
from distill.experiment.metrics import teacher_metrics, track_metrics


def gap_recovered(
    value: float, baseline: float, teacher: float, *, higher_is_better: bool = True
) -> float | None:
    """Share of the teacher–baseline gap a variant closes.

    ``gap recovered = (variant − baseline) / (teacher − baseline)``: 0 at the baseline, 1 at
    the teacher, negative when worse than the baseline.

    Returns:
        The ratio, or None when there is no gap to recover: the teacher does not beat the
        baseline (in the metric's direction), or a value is not finite.

    Example:
        >>> round(gap_recovered(0.95, 0.87, 0.97), 2)
        0.8
    """
    gap = teacher - baseline
    finite = all(math.isfinite(x) for x in (value, baseline, teacher))
    if not finite or (gap if higher_is_better else -gap) <= 1e-12:
        return None
    return (value - baseline) / gap


def read_results(folder: Path) -> dict[str, Any]:
    """The ``results.json`` of a run folder."""
    return json.loads((Path(folder) / "results.json").read_text())


def model_row(
    name: str, model: nn.Module, test: Any, cfg: RunConfig, wall_time: float, path: Any
) -> dict[str, Any]:
    """The results row of a trained model: its test metrics, size, wall time and folder."""
    return {
        "name": name,
        "metrics": track_metrics(model, test, cfg.run.track),
        "params": models.count_parameters(model),
        "size_bytes": models.size_bytes(model),
        "wall_time_s": round(wall_time, 3),
        "path": str(path),
    }


def teacher_file_row(cfg: RunConfig, teacher: Any, test: Any, started: float) -> dict[str, Any]:
    """The results row of a teacher that is not a module: metrics of its test predictions."""
    source = cfg.teacher.path or f"column {cfg.teacher.score_columns}"
    return {
        "name": "teacher",
        "metrics": teacher_metrics(teacher, test, cfg.run.track),
        **teacher.size().row(),
        "wall_time_s": round(time.perf_counter() - started, 3),
        "path": str(source),
    }


def write_row(cfg: RunConfig, teacher, variant, *, warnings: list[str] | None = None) -> None:
    """Insert a teacher or variant row (or the run's ``warnings``) into ``results.json``;
    recompute every gap recovered."""
    path = cfg.run.directory / "results.json"
    results = read_results(cfg.run.directory) if path.is_file() else _empty_results(cfg)
    if teacher is not None:
        results["teacher"] = teacher
    if variant is not None:
        others = [row for row in results["variants"] if row["name"] != variant["name"]]
        results["variants"] = [*others, variant]
    if warnings is not None:
        results["warnings"] = warnings
    _fill_gaps(results)
    _write_json(path, results)


def _empty_results(cfg: RunConfig) -> dict[str, Any]:
    return {
        "name": cfg.run.name,
        "track": cfg.run.track,
        "metric": cfg.metric,
        "teacher": None,
        "baseline": cfg.baseline,
        "variants": [],
    }


def _fill_gaps(results: dict[str, Any]) -> None:
    metric, rows = results["metric"], {row["name"]: row for row in results["variants"]}
    baseline, teacher = rows.get(results["baseline"]), results["teacher"]
    for row in results["variants"]:
        row["gap_recovered"] = None
        if baseline is not None and teacher is not None:
            row["gap_recovered"] = gap_recovered(
                row["metrics"][metric],
                baseline["metrics"][metric],
                teacher["metrics"][metric],
                higher_is_better=metric != "loss",
            )


def _write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2) + "\n")
