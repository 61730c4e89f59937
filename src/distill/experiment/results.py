"""``results.json`` of a run: rows of the teacher and the variants, and gap recovered."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from distill._io import write_atomic
from distill.config import RunConfig


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
