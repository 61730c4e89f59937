"""The screen table of a multi-seed run: mean ± std, the paired Δ with its interval, a verdict."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from distill.experiment.compare import headline_metric
from distill.report.decision import delta_text, verdict
from distill.report.tables import format_percent

CALIBRATION_COLUMNS = {"ctr": ("nll", "ece")}
"""Extra columns per track: the binary track shows log loss and ECE next to AUC."""


def seeds_table(results: dict[str, Any]) -> Table:
    """One rich table of combined results (``distill.experiment.seeds.combine``).

    Columns: the headline metric as mean ± std over seeds, the paired Δ to the baseline with
    its 95 % interval, a verdict with wins k/N ("better", "worse", or "no clear difference"
    when the interval contains 0), the track's calibration columns (mean ± std), gap
    recovered with its interval, and the size. Two-line cells keep it narrow.
    """
    metric = headline_metric(results)
    seeds = results["seeds"]
    table = Table(
        title=f"{results['name']} ({results['track']}; {len(seeds)} seeds; "
        f"baseline: {results['baseline']})"
    )
    extra = CALIBRATION_COLUMNS.get(results["track"], ())
    table.add_column("model", no_wrap=True)
    for column in (metric, "Δ [95 % CI]", "verdict", *extra, "gap recovered", "size"):
        table.add_column(column, justify="right")
    for row in [results["teacher"], *results["variants"]]:
        paired = row.get("paired")
        table.add_row(
            row["name"],
            mean_std_text(row, metric),
            delta_text(paired, sep="\n"),
            verdict_text(paired, teacher=row is results["teacher"]),
            *(mean_std_text(row, key) for key in extra),
            percent_interval(row.get("gap_recovered"), row.get("gap_recovered_ci"), sep="\n"),
            size_text(row["size_bytes"]),
        )
    return table


def mean_std_text(row: dict[str, Any], key: str) -> str:
    """``"0.9123\n±0.0041"`` (the std is omitted for one seed)."""
    mean, std = row["metrics"].get(key), row.get("std", {}).get(key)
    if mean is None:
        return "–"
    return f"{mean:.4f}" if std is None or not math.isfinite(std) else f"{mean:.4f}\n±{std:.4f}"


def verdict_text(paired: dict[str, Any] | None, *, teacher: bool = False) -> str:
    """The verdict with its wins: ``"better\n5/5 seeds"``; the teacher's is its edge over
    the baseline ("clear edge", "no clear edge", "worse")."""
    text = verdict(paired)
    if paired is None:
        return text
    if teacher:
        text = {"better": "clear edge", "no clear difference": "no clear edge"}.get(text, text)
    return f"{text}\n{paired['wins']}/{paired['n']} seeds"


def percent_interval(value: float | None, interval: list[float] | None, *, sep: str = " ") -> str:
    """``"81% [62%, 99%]"`` (``sep`` before the interval); "–" without a value."""
    text = format_percent(value, interval)
    return "–" if text is None else text.replace(" [", f"{sep}[")


def size_text(value: Any) -> str:
    """Bytes as KiB or MiB."""
    if value is None:
        return "–"
    return f"{value / 1024:.1f} KiB" if value < 1024**2 else f"{value / 1024**2:.2f} MiB"
