"""The compression table: size, metric and CPU latency of a teacher, its students and exports."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from distill._extras import require
from distill._io import write_atomic
from distill._validation import check_positive_int
from distill.export._inputs import Inputs, as_tuple, batch_of
from distill.export.formats import ExportResult, read_export
from distill.export.int8 import Int8Embedding, Int8Linear
from distill.export.onnx_export import OnnxModel
from distill.models import count_parameters

Predict = Callable[..., torch.Tensor]
Entry = nn.Module | ExportResult | OnnxModel | str | os.PathLike
BATCH_SIZES = (1, 256)
JSON_FILE = "compression.json"
MARKDOWN_FILE = "compression.md"


@dataclass(frozen=True)
class CompressionRow:
    """One line of the table. Ratios are against the reference row (the teacher):
    ``size_ratio = reference bytes / bytes`` (× smaller) and ``speedup_b = reference latency /
    latency`` at batch b. ``params`` counts stored weights (int8 weights included, their
    per-channel / per-row scales not); ``bytes`` is the weights file (``model.safetensors`` or
    ``model.onnx``; for an in-memory module, the bytes its safetensors file would have)."""

    name: str
    format: str
    params: int
    bytes: int
    metric: float | None
    latency_ms_1: float
    latency_ms_256: float
    size_ratio: float
    speedup_1: float
    speedup_256: float


def compression_table(
    models: Mapping[str, Entry],
    *,
    example_input: Inputs | Mapping[str, Inputs],
    evaluate: Callable[[Predict], float] | Mapping[str, Callable[[Predict], float]] | None = None,
    repeats: int = 20,
    reference: str | None = None,
) -> list[CompressionRow]:
    """Measure every model: parameters, bytes on disk, metric, latency at batch 1 and 256.

    Latency is the median of ``repeats`` timed calls (after 3 warm-up calls) on this CPU with
    torch's current thread count, under ``torch.inference_mode``; batches are rows of
    ``example_input`` taken cyclically.

    Args:
        models: ``{row name: model}``; a model is an ``nn.Module``, an :class:`ExportResult`,
            an :class:`OnnxModel`, or the path of an export / model directory.
        example_input: the inputs of every model, or ``{row name: inputs}`` when they differ
            (e.g. a teacher that sees more features than its students).
        evaluate: ``evaluate(predict) -> float``, with ``predict(*inputs) -> outputs``, e.g.
            accuracy on a held-out set; or ``{row name: evaluate}``; ``None`` leaves the metric
            empty.
        repeats: timed calls per batch size.
        reference: the row the ratios refer to; default ``"teacher"`` if present, else the
            first row.

    Returns:
        One :class:`CompressionRow` per model, in the given order.

    Raises:
        ValueError: empty ``models``, unknown ``reference``, missing per-model inputs.

    Reference: docs/index.md#shipping (the compression table of the exported students).

    Example:
        >>> from distill.models import MLP
        >>> rows = compression_table({"student": MLP(8)}, example_input=torch.randn(4, 8))
        >>> rows[0].size_ratio
        1.0
    """
    check_positive_int("repeats", repeats)
    if not models:
        raise ValueError("`models` must name at least one model, got an empty mapping")
    base = reference or ("teacher" if "teacher" in models else next(iter(models)))
    if base not in models:
        raise ValueError(f"`reference` must be one of {', '.join(models)}, got {base!r}")
    measured = {
        name: _measure(name, entry, _pick(example_input, name), _pick(evaluate, name), repeats)
        for name, entry in models.items()
    }
    return [_with_ratios(row, measured[base]) for row in measured.values()]


def _pick(value: Any, name: str) -> Any:
    if not isinstance(value, Mapping):
        return value
    if name not in value:
        raise ValueError(f"no entry for model {name!r} in a per-model mapping ({', '.join(value)})")
    return value[name]


def _measure(name: str, entry: Entry, inputs: Inputs, evaluate, repeats: int) -> dict:
    fmt, model, size = _resolve(entry)
    rows = as_tuple("example_input", inputs)
    predict = _predictor(model)
    return {
        "name": name,
        "format": fmt,
        "params": _params(model),
        "bytes": size,
        "metric": None if evaluate is None else float(evaluate(predict)),
        "latency_ms_1": measure_latency(predict, batch_of(rows, 1), repeats=repeats),
        "latency_ms_256": measure_latency(predict, batch_of(rows, 256), repeats=repeats),
    }


def _resolve(entry: Entry) -> tuple[str, Any, int]:
    if isinstance(entry, (str, os.PathLike)):
        entry = read_export(entry)
    if isinstance(entry, ExportResult):
        return entry.format, entry.model, entry.weights_bytes
    if isinstance(entry, OnnxModel):
        return "onnx", entry, entry.path.stat().st_size
    state = {k: v.detach().cpu().contiguous() for k, v in entry.state_dict().items()}
    return "torch", entry, len(safetensors.torch.save(state))


def _predictor(model: Any) -> Predict:
    if isinstance(model, OnnxModel):
        return model
    model.eval()

    def predict(*inputs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(*inputs)

    return predict


def _params(model: Any) -> int:
    if isinstance(model, OnnxModel):
        graph = require("onnx", extra="export").load(str(model.path)).graph
        return sum(int(torch.Size(tensor.dims).numel()) for tensor in graph.initializer)
    int8 = [m for m in model.modules() if isinstance(m, (Int8Linear, Int8Embedding))]
    weights = sum(m.weight_int8.numel() for m in int8)
    biases = sum(m.bias.numel() for m in int8 if getattr(m, "bias", None) is not None)
    return count_parameters(model) + weights + biases


def measure_latency(predict: Predict, inputs: tuple[torch.Tensor, ...], *, repeats: int) -> float:
    """Median wall time of ``predict(*inputs)`` in milliseconds over ``repeats`` calls."""
    for _ in range(3):
        predict(*inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(*inputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _with_ratios(row: dict, base: dict) -> CompressionRow:
    return CompressionRow(
        **row,
        size_ratio=base["bytes"] / row["bytes"],
        speedup_1=base["latency_ms_1"] / row["latency_ms_1"],
        speedup_256=base["latency_ms_256"] / row["latency_ms_256"],
    )


_COLUMNS = (
    ("model", "name", "{}"),
    ("format", "format", "{}"),
    ("params", "params", "{:,}"),
    ("bytes", "bytes", "{:,}"),
    ("× smaller", "size_ratio", "{:.2f}"),
    ("{metric}", "metric", "{:.4f}"),
    ("ms @1", "latency_ms_1", "{:.3f}"),
    ("ms @256", "latency_ms_256", "{:.3f}"),
    ("speed-up @1", "speedup_1", "{:.2f}"),
    ("speed-up @256", "speedup_256", "{:.2f}"),
)


Columns = tuple[tuple[str, str, str], ...]
"""``(title, row field, format)`` per column; ``{metric}`` in a title is the metric's name."""


def _cells(row: Any, columns: Columns) -> list[str]:
    values = asdict(row)
    return ["–" if values[key] is None else fmt.format(values[key]) for _, key, fmt in columns]


def _headers(metric: str, columns: Columns) -> list[str]:
    return [title.format(metric=metric) for title, _, _ in columns]


def markdown_rows(rows: list[Any], columns: Columns, *, metric: str) -> str:
    """Dataclass rows as a GitHub Markdown table of ``columns``."""
    lines = [_headers(metric, columns), ["---"] * len(columns)]
    lines += [_cells(row, columns) for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def print_rows(
    rows: list[Any],
    columns: Columns,
    *,
    metric: str,
    title: str,
    width: int,
    unwrapped: int = 2,
    console=None,
) -> None:
    """Dataclass rows as a rich table (to ``console``, default stdout); the first two columns
    left-aligned, the first ``unwrapped`` never wrapped; at least ``width`` columns wide when
    the output is not a terminal (logs, pipes), the terminal's width otherwise."""
    Console = require("rich.console", extra="cli").Console
    Table = require("rich.table", extra="cli").Table

    table = Table(title=title)
    for index, header in enumerate(_headers(metric, columns)):
        left = index < 2
        justify = "left" if left else "right"
        table.add_column(header, justify=justify, no_wrap=left and index < unwrapped)
    for row in rows:
        table.add_row(*_cells(row, columns))
    console = console or Console()
    if not console.is_terminal and console.width < width:
        console = Console(file=console.file, width=width)
    console.print(table)


def to_markdown(rows: list[CompressionRow], *, metric: str = "metric") -> str:
    """The table as GitHub Markdown (one header row, one line per model)."""
    return markdown_rows(rows, _COLUMNS, metric=metric)


def print_table(rows: list[CompressionRow], *, metric: str = "metric", console=None) -> None:
    """Print the table with rich (to ``console``, default stdout); at least 120 columns wide
    when the output is not a terminal (logs, pipes), the terminal's width otherwise."""
    title = "Compression (ratios vs the reference row)"
    print_rows(rows, _COLUMNS, metric=metric, title=title, width=120, console=console)


def save_table(
    rows: list[CompressionRow], directory: str | os.PathLike, *, metric: str = "metric"
) -> tuple[Path, Path]:
    """Write ``compression.json`` (rows + machine, threads, date) and ``compression.md``.

    Each file is written atomically (temp file in the same directory, then ``os.replace``).

    Returns:
        The two paths ``(json, markdown)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "metric": metric,
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": [asdict(row) for row in rows],
    }
    json_path, markdown_path = directory / JSON_FILE, directory / MARKDOWN_FILE
    write_atomic(json_path, json.dumps(document, indent=2) + "\n")
    write_atomic(markdown_path, to_markdown(rows, metric=metric))
    return json_path, markdown_path
