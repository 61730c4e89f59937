"""A run directory (``runs/<name>/``, docs/index.md#run-folders) as an export source.

Its students, its teacher, and its data (via the run's config) for the metric, latency inputs and
recovery."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distill import models
from distill.config import DEFAULT_METRIC, load_config
from distill.data import Dataset
from distill.experiment.seeds import SEED_FOLDER
from distill.experiment.setup import load_run_data
from distill.export.model_source import CONFIG_FILE, SPEC_FILE, ExportSource
from distill.export.table import Predict
from distill.train.evaluation import METRIC_FUNCTIONS

EXAMPLE_ROWS = 256


def run_source(path: Path, variants=(), *, trust: bool = False) -> ExportSource:
    """Students (``students/*``, ``joint``), teacher and test data of the run at ``path``.

    The metric is the run's (``run.metric``; the track default when that is ``"loss"``),
    computed on the test split; each model sees the columns it was trained on (students the
    run's ``student_features``). Recovery uses the training rows. A multi-seed run exports
    the models of its first seed (``seed<s>/``; pass that folder for another seed).

    Raises:
        FileNotFoundError: the run has no saved student, or an unknown variant is asked for.
    """
    cfg = load_config(path / CONFIG_FILE)
    if cfg.run.seeds:
        path = path / SEED_FOLDER.format(seed=cfg.run.seeds[0])
        cfg = load_config(path / CONFIG_FILE)
    students = _students(path, variants, trust)
    teacher_dir = path / "teacher"
    has_teacher = (teacher_dir / SPEC_FILE).is_file()
    teacher = models.load(teacher_dir, trust=trust) if has_teacher else None
    data = load_run_data(cfg)
    metric = cfg.metric if cfg.metric in METRIC_FUNCTIONS else DEFAULT_METRIC[cfg.run.track]
    named = dict(students) if teacher is None else {"teacher": teacher, **students}
    tests = {name: data.view_for(model, data.test) for name, model in named.items()}
    return ExportSource(
        path=path,
        students=students,
        teacher=teacher,
        example_inputs={name: _inputs(test, EXAMPLE_ROWS) for name, test in tests.items()},
        evaluators={name: _evaluator(test, metric) for name, test in tests.items()},
        transfer_inputs={name: _inputs(data.view_for(m, data.train)) for name, m in named.items()},
        metric=metric,
    )


def _students(path: Path, variants, trust: bool) -> dict[str, nn.Module]:
    found = sorted((path / "students").glob(f"*/{SPEC_FILE}")) + sorted(
        path.glob(f"joint/{SPEC_FILE}")
    )
    folders = {spec.parent.name: spec.parent for spec in found}
    if not folders:
        raise FileNotFoundError(f"{path}: the run has no saved student (students/*/{SPEC_FILE})")
    for name in variants:
        if name not in folders:
            raise FileNotFoundError(
                f"{path}: no saved student {name!r} (students in this run: {', '.join(folders)})"
            )
    return {name: models.load(folders[name], trust=trust) for name in variants or folders}


def _inputs(dataset: Dataset, rows: int | None = None) -> tuple[torch.Tensor, ...]:
    index = slice(None) if rows is None else slice(0, rows)
    features = dataset.features[index]
    values = dataset.feature_values
    return (features,) if values is None else (features, values[index])


def _evaluator(dataset: Dataset, metric: str):
    function = METRIC_FUNCTIONS[metric]

    def evaluate(predict: Predict) -> float:
        inputs = _inputs(dataset)
        chunks = [
            predict(*(t[start : start + 4096] for t in inputs)).float()
            for start in range(0, len(dataset), 4096)
        ]
        return function(torch.cat(chunks), dataset)

    return evaluate
