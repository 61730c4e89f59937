"""The table of a compression chain: one row per step, with the change from the step before."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from distill._io import write_atomic
from distill.export._inputs import Inputs
from distill.export.formats import read_export
from distill.export.table import Predict, compression_table, markdown_rows, print_rows

JSON_FILE = "chain.json"
MARKDOWN_FILE = "chain.md"


@dataclass(frozen=True)
class ChainRow:
    """One step of the chain.

    ``bytes`` is the size of the step's weights file (``model.safetensors``) on disk;
    ``smaller_than_previous = previous bytes / bytes`` and ``smaller_than_original`` the same
    against the first row; ``metric_change = metric − previous metric`` (None for the first
    row or without a metric). ``params`` counts stored weights (int8 ones included)."""

    name: str
    step: str
    settings: str
    params: int
    bytes: int
    metric: float | None
    smaller_than_previous: float
    metric_change: float | None
    smaller_than_original: float
    latency_ms_1: float


def chain_table(
    directories: Mapping[str, str | os.PathLike],
    *,
    example_input: Inputs,
    evaluate: Callable[[Predict], float] | None = None,
    repeats: int = 20,
    prefix: str = "",
) -> list[ChainRow]:
    """Measure the saved steps of one chain (from :func:`~distill.export.chain.run_chain`).

    Args:
        directories: ``{step: directory}`` in chain order, the original first.
        example_input: the model's inputs (latency rows).
        evaluate: ``evaluate(predict) -> float`` on held-out data, or None.
        repeats: timed calls per latency measurement.
        prefix: put before each row name (``"<student>/"``).

    Returns:
        One :class:`ChainRow` per step, in order.
    """
    names = list(directories)
    measured = compression_table(
        directories,
        example_input=example_input,
        evaluate=evaluate,
        repeats=repeats,
        reference=names[0],
    )
    rows = []
    for index, (step, row) in enumerate(zip(names, measured, strict=True)):
        previous = measured[max(index - 1, 0)]
        change = None
        if index and row.metric is not None and previous.metric is not None:
            change = row.metric - previous.metric
        rows.append(
            ChainRow(
                name=f"{prefix}{step}",
                step=step,
                settings=read_export(directories[step]).details.get("settings", ""),
                params=row.params,
                bytes=row.bytes,
                metric=row.metric,
                smaller_than_previous=previous.bytes / row.bytes,
                metric_change=change,
                smaller_than_original=row.size_ratio,
                latency_ms_1=row.latency_ms_1,
            )
        )
    return rows


_COLUMNS = (
    ("step", "name", "{}"),
    ("settings", "settings", "{}"),
    ("params", "params", "{:,}"),
    ("bytes", "bytes", "{:,}"),
    ("× vs previous", "smaller_than_previous", "{:.2f}"),
    ("× vs original", "smaller_than_original", "{:.2f}"),
    ("{metric}", "metric", "{:.4f}"),
    ("Δ {metric}", "metric_change", "{:+.4f}"),
    ("ms @1", "latency_ms_1", "{:.3f}"),
)


def chain_markdown(rows: list[ChainRow], *, metric: str = "metric") -> str:
    """The table as GitHub Markdown."""
    return markdown_rows(rows, _COLUMNS, metric=metric)


def print_chain(rows: list[ChainRow], *, metric: str = "metric", console=None) -> None:
    """Print the table with rich (at least 140 columns wide when not on a terminal)."""
    title = "Compression chain (each step from the previous one)"
    print_rows(rows, _COLUMNS, metric=metric, title=title, width=140, unwrapped=1, console=console)


def save_chain(
    rows: list[ChainRow], directory: str | os.PathLike, *, metric: str = "metric"
) -> tuple[Path, Path]:
    """Write ``chain.json`` (metric name + rows) and ``chain.md`` atomically; return both."""
    directory = Path(directory)
    document = {"metric": metric, "rows": [asdict(row) for row in rows]}
    json_path, markdown_path = directory / JSON_FILE, directory / MARKDOWN_FILE
    write_atomic(json_path, json.dumps(document, indent=2) + "\n")
    write_atomic(markdown_path, chain_markdown(rows, metric=metric))
    return json_path, markdown_path
