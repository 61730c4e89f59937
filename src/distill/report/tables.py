"""Tables for the report: rows (list of dicts) → Markdown and HTML; rows from ``results.json``."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

Rows = Sequence[Mapping[str, Any]]


def results_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten ``results.json`` (run-directory contract) to table rows: teacher, then variants.

    Columns: ``model``, the headline metric first then the other metrics (``mean ± std``
    over seeds when the row has a ``std``), ``gap recovered`` (a percentage, with its
    interval over seeds), ``params``, ``size (bytes)``, ``time (s)``.

    Raises:
        KeyError: ``results`` without ``metric``, ``teacher`` or ``variants``.
    Example: ``markdown_table(results_rows(json.load(open("runs/demo/results.json"))))``
    """
    models = [results["teacher"], *results["variants"]]
    names = [results["metric"]]
    for model in models:
        names += [name for name in model.get("metrics", {}) if name not in names]
    rows = []
    for model in models:
        row: dict[str, Any] = {"model": model.get("name", "teacher")}
        spread = model.get("std", {})
        row.update(
            {name: _value(model.get("metrics", {}).get(name), spread.get(name)) for name in names}
        )
        row["gap recovered"] = format_percent(
            model.get("gap_recovered"), model.get("gap_recovered_ci")
        )
        row["params"] = model.get("params")
        row["size (bytes)"] = model.get("size_bytes")
        row["time (s)"] = model.get("wall_time_s")
        rows.append(row)
    return rows


def _value(mean: Any, std: Any) -> Any:
    if mean is None or std is None or not isinstance(std, float) or math.isnan(std):
        return mean
    return f"{mean:.4f} ± {std:.4f}"


def format_percent(value: float | None, interval: Sequence[float] | None = None) -> str | None:
    """A share as a whole percentage, ``"57%"``, or ``"57% [31%, 80%]"`` with an interval.

    Example: ``format_percent(0.571)`` → ``"57%"``
    """
    if value is None or not math.isfinite(value):
        return None
    if interval is None:
        return f"{100 * value:.0f}%"
    return f"{100 * value:.0f}% [{100 * interval[0]:.0f}%, {100 * interval[1]:.0f}%]"


def format_cell(value: Any) -> str:
    """A readable cell: ints with thousands separators, floats with 4 significant decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:,.0f}"


def _columns(rows: Rows) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def markdown_table(rows: Rows) -> str:
    """A GitHub-flavoured Markdown table (columns: union of keys in first-seen order).

    Example: ``markdown_table([{"model": "kd", "acc": 0.91}])`` →
    ``"| model | acc |\\n|---|---:|\\n| kd | 0.9100 |\\n"``
    """
    columns = _columns(rows)
    if not columns:
        return "_(no rows)_\n"
    numeric = [_is_numeric_column(rows, column) for column in columns]
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(escape(column) for column in columns) + " |"]
    lines.append("|" + "|".join("---:" if right else "---" for right in numeric) + "|")
    for row in rows:
        cells = [escape(format_cell(row.get(column))) for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def html_table(rows: Rows, *, caption: str = "") -> str:
    """An HTML ``<table>`` with escaped text; numeric columns right-aligned (class ``num``)."""
    columns = _columns(rows)
    numeric = [_is_numeric_column(rows, column) for column in columns]
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = []
    for row in rows:
        cells = (
            f'<td class="num">{html.escape(format_cell(row.get(c)))}</td>'
            if right
            else f"<td>{html.escape(format_cell(row.get(c)))}</td>"
            for c, right in zip(columns, numeric, strict=True)
        )
        body.append("<tr>" + "".join(cells) + "</tr>")
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _is_numeric_column(rows: Rows, column: str) -> bool:
    values = [row.get(column) for row in rows if row.get(column) is not None]
    return bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    )
