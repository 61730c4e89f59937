"""Teacher sources of a run: the saved teacher, its score cache, a two-step median teacher."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from distill import models, teachers
from distill.config import ConfigError, RunConfig, Variant
from distill.data import parse_feature_spec
from distill.experiment.setup import RunData, train_options
from distill.train.loop import fit
from distill.train.objective import Objective, make_term

SCORES_DIR = "scores/train"
"""The teacher's score cache of the training rows, inside the run folder."""


def median_teacher(cfg: RunConfig, variant: Variant, data: RunData, student, teacher) -> Any:
    """Two-step median, step 1: a copy of the student learns the teacher's median with L1.

    Returns the frozen median model as the teacher of step 2 (it reads the student's columns).
    """
    step = variant.objective.two_step_median
    options = train_options(cfg.train, cfg, student_features=data.student_features)
    if step.median_steps is not None:
        options = dataclasses.replace(options, max_steps=step.median_steps)
    median = fit(
        copy.deepcopy(student),
        data.training_rows(variant),
        objective=Objective([make_term({"name": "pointwise", "penalty": "absolute"})]),
        options=options,
        teacher=teacher,
        valid=data.valid,
        run_dir=cfg.run.directory,
        variant=f"{variant.name}.median",
    ).model
    columns = None
    if data.student_features is not None:
        columns = parse_feature_spec(data.student_features, data.train.feature_names)
    return teachers.ModuleTeacher(StudentColumns(median.eval(), columns))


class StudentColumns(nn.Module):
    """Feeds a student-side model the student's columns of the full feature matrix."""

    def __init__(self, model: nn.Module, columns: list[int] | None) -> None:
        super().__init__()
        self.model, self.columns = model, columns

    def forward(self, features, *values):
        if self.columns is None:
            return self.model(features, *values)
        return self.model(features[:, self.columns], *(v[:, self.columns] for v in values))


def teacher_source(cfg: RunConfig, data: RunData) -> Any:
    """Offline: the cached scores (no teacher forward); online: the saved teacher module."""
    if cfg.train.teacher_mode == "online":
        return teachers.ModuleTeacher(saved_teacher(cfg))
    path = cfg.run.directory / SCORES_DIR
    if not path.is_dir():
        raise ConfigError([f"no teacher scores in {path}; run `distill score` first"])
    return teachers.CachedScores(path, data.train)


def given_teacher(cfg: RunConfig) -> nn.Module:
    """``[teacher].path``: a model folder, a .safetensors file or (with trust) a pickle."""
    try:
        return teachers.load_teacher(cfg.teacher.path, trust=cfg.teacher.trust).module
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError([f"teacher.path: {error}"]) from None


def saved_teacher(cfg: RunConfig) -> nn.Module:
    """The teacher saved in the run folder (``teacher/``)."""
    return load_model(cfg.run.directory / "teacher", "teacher")


def load_model(directory: Path, what: str) -> nn.Module:
    """A ``distill.models.save`` folder; a missing one is a config error naming ``what``."""
    if not (directory / "model.json").is_file():
        raise ConfigError([f"{what}: no saved model in {directory} (model.json missing)"])
    return models.load(directory)
