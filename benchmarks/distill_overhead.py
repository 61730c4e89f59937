"""Issue 8 item 5: the cost of distillation per training epoch, measured side by side.

One epoch of ``distill.train.fit`` on the same rows, batches and student, for:

- ``plain``: the student on hard labels;
- ``offline``: KD from cached teacher scores (``distill.teachers.score`` → ``CachedScores``);
- ``online``: KD from a teacher module's forward pass per batch (``ModuleTeacher``);
- ``teacher forward``: the teacher's forward over the same batches alone (``predict`` calls).

Targets: offline ÷ plain ≤ 1.05; online ÷ (plain + teacher forward) ≤ 1.1. Two tasks: 10-class
KD (``KDTerm``) on ``digits`` tiled to 18k rows, and binary KD (``BinaryKDTerm``) on the rows of
``synthetic_recommender``. The candidates run interleaved; medians of the repeats are compared.

Run: ``python -m benchmarks.distill_overhead [--quick] [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import (
    markdown_table,
    parse_args,
    publish,
    time_interleaved,
    train_model,
    write_results,
)
from distill import teachers
from distill.data import Dataset, RowBatchSampler, load_builtin
from distill.models import MLP
from distill.train import BinaryKDTerm, KDTerm, LabelsTerm, Objective

NAME = "distill_overhead"
TITLE = "Distillation overhead per epoch (offline and online)"
BATCH_SIZE = 256
TARGETS = {"offline / plain": 1.05, "online / (plain + teacher forward)": 1.1}


def tasks(quick: bool) -> dict[str, dict[str, Any]]:
    """Per task: data, student/teacher builders and the label / KD objectives."""
    tiles = 1 if quick else 10
    digits = load_builtin("digits")
    tiled = Dataset(digits.features.repeat(tiles, 1), digits.labels.repeat(tiles))
    groups = 50 if quick else 1000
    recommender = load_builtin("synthetic_recommender", n_groups=groups, items_per_group=20)
    rows = dataclasses.replace(recommender, groups=None, extras={})
    classification = {
        "data": tiled,
        "labels": Objective([LabelsTerm("ce")]),
        "kd": Objective([KDTerm(temperature=4.0, alpha=0.9)]),
    }
    return {
        "classification (digits ×10, 10 classes), student 64-64-10": {
            **classification,
            "student": lambda: MLP(64, (64,), 10),
            "teacher": lambda: MLP(64, (512, 512), 10),
        },
        "classification, wider student 64-256-256-10": {
            **classification,
            "student": lambda: MLP(64, (256, 256), 10),
            "teacher": lambda: MLP(64, (1024, 1024), 10),
        },
        "binary (synthetic_recommender rows)": {
            "data": rows,
            "student": lambda: MLP(16, (64,), 1),
            "teacher": lambda: MLP(16, (512, 512), 1),
            "labels": Objective([LabelsTerm("bce")]),
            "kd": Objective([BinaryKDTerm(temperature=2.0, soft_weight=0.5)]),
        },
    }


def epoch_runner(task: dict[str, Any], objective: Objective, teacher: Any) -> Callable[[], Any]:
    """One epoch of ``fit`` from a fresh student (same seed, so the same batches and weights)."""

    def run() -> None:
        torch.manual_seed(0)
        train_model(
            task["student"](),
            task["data"],
            objective=objective,
            teacher=teacher,
            epochs=1,
            batch_size=BATCH_SIZE,
            seed=0,
        )

    return run


def forward_runner(data: Dataset, teacher: teachers.ModuleTeacher) -> Callable[[], None]:
    """The teacher's forward passes over one epoch of the same batches."""
    sampler = RowBatchSampler(len(data), batch_size=BATCH_SIZE, seed=0)

    def run() -> None:
        for index in sampler:
            teacher.predict(data.features[index], data.ids[index])

    return run


def measure(task: dict[str, Any], repeats: int, folder: Path) -> dict[str, Any]:
    """Interleaved medians of the four candidates and the two ratios."""
    torch.manual_seed(1)
    teacher = teachers.ModuleTeacher(task["teacher"]())
    data = task["data"]
    shard = teachers.score(teacher, data, folder)
    cached = teachers.CachedScores(shard.parent, data, teacher=teacher)
    times = time_interleaved(
        {
            "plain": epoch_runner(task, task["labels"], None),
            "offline": epoch_runner(task, task["kd"], cached),
            "online": epoch_runner(task, task["kd"], teacher),
            "teacher forward": forward_runner(data, teacher),
        },
        repeats=repeats,
    )
    median = {name: value["median_s"] for name, value in times.items()}
    rounds = {name: value["times_s"] for name, value in times.items()}
    ratios = {  # per interleaved round, then the median: a load change hits both sides alike
        "offline / plain": statistics.median(
            o / p for o, p in zip(rounds["offline"], rounds["plain"], strict=True)
        ),
        "online / (plain + teacher forward)": statistics.median(
            o / (p + f)
            for o, p, f in zip(
                rounds["online"], rounds["plain"], rounds["teacher forward"], strict=True
            )
        ),
    }
    steps = -(-len(data) // BATCH_SIZE)
    extra_us = {
        "offline": (median["offline"] - median["plain"]) / steps * 1e6,
        "online": (median["online"] - median["plain"] - median["teacher forward"]) / steps * 1e6,
    }
    return {
        "rows": len(data),
        "steps": steps,
        "times": times,
        "ratios": ratios,
        "extra_us": extra_us,
    }


def report(results: dict[str, Any], repeats: int) -> str:
    """The BENCHMARKS.md section body."""
    rows = []
    for name, part in results.items():
        median = {k: v["median_s"] for k, v in part["times"].items()}
        cells = [f"{median[k]:.3f}" for k in ("plain", "offline", "online", "teacher forward")]
        verdicts = [
            f"{part['ratios'][key]:.3f} ({'met' if part['ratios'][key] <= target else 'MISSED'})"
            for key, target in TARGETS.items()
        ]
        extra = [f"{part['extra_us'][k]:.0f}" for k in ("offline", "online")]
        rows.append([f"{name}, {part['rows']} rows", *cells, *verdicts, *extra])
    header = ["task", "plain s", "offline s", "online s", "teacher fwd s"]
    header += ["offline ÷ plain (≤ 1.05)", "online ÷ (plain + fwd) (≤ 1.1)"]
    header += ["offline extra µs/step", "online extra µs/step"]
    return f"""Median seconds of one training epoch (`fit`, batch {BATCH_SIZE}, AdamW, one
thread) over {repeats} interleaved rounds after a warm-up; each epoch includes `fit`'s setup.
Ratios: the median over rounds of each round's ratio (the candidates of a round run back to
back, so load changes of the shared machine largely cancel).
Teachers are MLPs with two 512-wide hidden layers (1024-wide for the wider student). "extra
µs/step" is the distillation cost per training step: (offline − plain) / steps and (online −
plain − teacher forward) / steps; it is fixed per step, so the ratio depends on how much work
the student's own step does.

{markdown_table(header, rows)}
"""


def extra_options(parser: argparse.ArgumentParser) -> None:
    """``--repeats N``."""
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure every task, write the JSON and the BENCHMARKS.md section."""
    args = parse_args(NAME, argv, seeds=1, extra=extra_options)
    torch.set_num_threads(1)
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as folder:
        results = {
            name: measure(task, repeats, Path(folder) / str(index))
            for index, (name, task) in enumerate(tasks(args.quick).items())
        }
    write_results(NAME, args, {"repeats": repeats, "batch_size": BATCH_SIZE, "results": results})
    publish(TITLE, report(results, repeats), args)
    return results


if __name__ == "__main__":
    main()
