"""Latency of a run's saved models with its spread, timed interleaved so that load on a shared
machine hits every model alike; a speed-up is claimed only when the ranges do not overlap."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from distill.export._inputs import batch_of
from distill.report.decision import speed_text

LOW, HIGH = 10, 90
"""The percentiles reported as the spread of the timed calls."""


def latency_spread(
    models: Mapping[str, torch.nn.Module],
    inputs: Mapping[str, tuple[torch.Tensor, ...]],
    *,
    batch: int = 256,
    repeats: int = 30,
    warmup: int = 3,
) -> dict[str, dict[str, Any]]:
    """Median and 10th–90th percentile of the wall time per call, models timed round-robin.

    Args:
        models: name → model (put in eval mode; called under ``torch.inference_mode``).
        inputs: name → the model's input tensors (rows are reused cyclically up to ``batch``).
        batch: rows per call.
        repeats: timed calls per model.
        warmup: untimed calls per model first.

    Returns:
        ``{name: {"median_ms", "low_ms", "high_ms", "batch", "threads", "repeats"}}``.

    Raises:
        ValueError: ``repeats`` below 2, or a model without inputs.

    Example:
        >>> latency_spread({"s": student}, {"s": (x,)})["s"]["median_ms"]  # doctest: +SKIP
        0.041
    """
    if repeats < 2:
        raise ValueError(f"`repeats` must be >= 2 to give a spread, got {repeats}")
    missing = sorted(set(models) - set(inputs))
    if missing:
        raise ValueError(f"`inputs` has no entry for model(s) {', '.join(missing)}")
    calls = {name: (model.eval(), batch_of(inputs[name], batch)) for name, model in models.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.inference_mode():
        for _ in range(warmup):
            for model, rows in calls.values():
                model(*rows)
        for _ in range(repeats):
            for name, (model, rows) in calls.items():
                start = time.perf_counter()
                model(*rows)
                times[name].append(1e3 * (time.perf_counter() - start))
    threads = torch.get_num_threads()
    return {name: _summary(values, batch, threads) for name, values in times.items()}


def _summary(values: list[float], batch: int, threads: int) -> dict[str, Any]:
    low, median, high = np.percentile(values, [LOW, 50, HIGH])
    return {
        "median_ms": float(median),
        "low_ms": float(low),
        "high_ms": float(high),
        "batch": batch,
        "threads": threads,
        "repeats": len(values),
    }


def latency_rows(
    latency: Mapping[str, Mapping[str, Any]], sizes: Mapping[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """Report rows: params, bytes, × smaller and latency [spread] against the teacher.

    Args:
        latency: :func:`latency_spread` output.
        sizes: name → ``(params, bytes)``.
    """
    teacher = latency.get("teacher")
    teacher_bytes = sizes.get("teacher", (0, 0))[1]
    rows = []
    for name, entry in latency.items():
        params, size = sizes[name]
        rows.append(
            {
                "model": name,
                "params": params,
                "bytes": size,
                "× smaller": None if not teacher_bytes else f"{teacher_bytes / size:.1f}×",
                f"ms per {entry['batch']} rows [p{LOW}–p{HIGH}]": (
                    f"{entry['median_ms']:.3f} [{entry['low_ms']:.3f}–{entry['high_ms']:.3f}]"
                ),
                "threads": entry["threads"],
                "vs teacher": "–"
                if teacher is None or name == "teacher"
                else speed_text(entry, teacher),
            }
        )
    return rows
