"""Teacher sources of a run: the saved teacher, its score cache, a two-step median teacher."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill import models, teacher_transforms, teachers
from distill._progress import progress_prefix
from distill.config import ConfigError, RunConfig, Variant
from distill.data import parse_feature_spec
from distill.experiment.inputs import SPLITS
from distill.experiment.setup import RunData, train_options
from distill.train.distributed import DistributedContext, barrier
from distill.train.loop import fit
from distill.train.objective import Objective, make_term
from distill.train.streaming import is_stream

SCORES_DIR = "scores/train"
"""The teacher's score cache of the training rows, inside the run folder."""
SCORE_SHARD_COLUMN = "teacher_logit"
"""The logit column of the score shards of streamed data (``<split folder>/_scores/``)."""


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
        scored_rows(cfg, data.training_rows(variant), teacher),
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
    """What students learn from: a score column as is; else the cached scores (offline) or
    the teacher itself (online: the user's teacher file, or the saved teacher module).

    The cache is opened with the teacher's fingerprint (the user's teacher file, or the
    teacher saved in ``teacher/``): scores of another teacher, e.g. one retrained since
    ``distill score``, are refused naming both fingerprints, and never trained on.

    Raises:
        ConfigError: no score cache, or one from another teacher or other data (both
            fingerprints are named; run `distill score`).
    """
    if cfg.teacher.score_columns:
        return given_teacher(cfg, data)
    offline = cfg.train.teacher_mode == "offline"
    if offline and cfg.data.streaming:
        return _score_shard_teacher(cfg, data)
    path = cfg.run.directory / SCORES_DIR
    if offline and not path.is_dir():
        raise ConfigError([f"no teacher scores in {path}; run `distill score` first"])
    teacher = fingerprint_teacher(cfg, data)
    if not offline:
        return teacher
    try:
        return teachers.CachedScores(path, data.train, teacher=teacher)
    except teachers.StaleCacheError as error:
        raise ConfigError(
            [f"{error}; the teacher or data changed since: run `distill score` again"]
        ) from None


def _score_shard_teacher(cfg: RunConfig, data: RunData) -> Any:
    """The score shards beside the streamed training shards, checked against the teacher."""
    from distill.teachers.score_shards import check_score_shards  # pyarrow: the `data` extra

    try:
        check_score_shards(data.train, fingerprint_teacher(cfg, data))
    except FileNotFoundError as error:
        raise ConfigError([f"data.train: {error}; run `distill score` first"]) from None
    except teachers.StaleCacheError as error:
        raise ConfigError(
            [
                f"data.train: {error}; the teacher or the data changed since: "
                "run `distill score` again"
            ]
        ) from None
    return teachers.StreamedScoreColumns(column=SCORE_SHARD_COLUMN)


def score_streamed(teacher: Any, data: RunData, context: DistributedContext) -> Path:
    """Write the teacher's score shards of every streamed split (train, valid, test) beside
    its shards; this rank's share of each (round-robin), finished shards of the same teacher
    skipped; every rank waits until all are written.

    Returns:
        The training split's score folder (``<train folder>/_scores``).

    Raises:
        ConfigError: a logged score column as teacher (nothing to score); a split folder
            where the score shards cannot be written (named; checked before any shard is
            scored).
    """
    from distill.teachers.score_shards import check_writable, score_shards

    if isinstance(teacher, teachers.StreamedScoreColumns):
        raise ConfigError(
            [
                "teacher.column: the teacher's logits are a column of the shards, read with the "
                "rows: there is nothing to score (score shards are written for a trained "
                "teacher or a teacher file)"
            ]
        )
    splits = dict(zip(SPLITS, (data.train, data.valid, data.test), strict=True))
    for key, table in splits.items():
        try:
            check_writable(table)
        except (PermissionError, ValueError) as error:
            raise ConfigError([f"data.{key}: {error}"]) from None
    for key, table in splits.items():
        with progress_prefix(f"{key} · "):
            score_shards(
                teacher,
                table,
                column=SCORE_SHARD_COLUMN,
                rank=context.rank,
                world_size=context.world_size,
                progress=True,
            )
    barrier(context)
    return Path(data.train.score_file(data.train.shards[0])).parent


def scored_rows(cfg: RunConfig, train: Any, teacher: Any) -> Any:
    """The training rows a student reads: a streamed table also reads its score shards when
    the teacher's logits come from them (not from a logged column)."""
    from_shards = cfg.data.streaming and not cfg.teacher.score_columns
    if from_shards and isinstance(teacher, teachers.StreamedScoreColumns):
        return train.with_scores([SCORE_SHARD_COLUMN])
    return train


def fingerprint_teacher(cfg: RunConfig, data: RunData) -> Any:
    """The run's teacher as a source: the user's teacher file, or the saved module."""
    if is_module_teacher(cfg):
        return teachers.ModuleTeacher(saved_teacher(cfg))
    return given_teacher(cfg, data)


def fresh_cache(cfg: RunConfig, data: RunData, teacher: Any) -> bool:
    """Whether ``scores/train`` holds valid scores of ``teacher`` for the training rows."""
    try:
        teachers.CachedScores(cfg.run.directory / SCORES_DIR, data.train, teacher=teacher)
    except (FileNotFoundError, ValueError):
        return False
    return True


def is_module_teacher(cfg: RunConfig) -> bool:
    """Whether the teacher is a torch module (trained here, or a distill model file)."""
    section = cfg.teacher
    if section.model is not None or section.source_kind is not None:
        return section.source_kind == "distill"
    try:
        return teachers.detect_kind(section.path) == "distill"
    except OSError as error:
        raise ConfigError([f"teacher.path: {error}"]) from None


def given_teacher(cfg: RunConfig, data: RunData) -> Any:
    """The user's teacher of ``[teacher]``, loaded and checked against the run's data.

    A model file (distill, GBDT, ONNX, TorchScript) must run on the training features; a
    scores file must hold a score for exactly the run's rows; a score column must be in every
    split.

    Raises:
        ConfigError: a missing or unreadable file, a file of another kind, a missing library,
            a feature count or rows that do not match, NaN/inf scores.
    """
    section = cfg.teacher
    where = "teacher.column" if section.score_columns else "teacher.path"
    splits, rows = (data.train, data.valid, data.test), len(data.train)
    try:
        if section.score_columns and cfg.data.streaming:
            return teachers.StreamedScoreColumns(column=section.column, columns=section.columns)
        if section.score_columns:
            return teachers.ScoreColumnTeacher(
                splits, column=section.column, columns=section.columns
            )
        teacher = teachers.load_teacher(
            section.path,
            kind=section.kind,
            trust=section.trust,
            key=section.key,
            column=section.column,
            columns=section.columns,
            feature_columns=_feature_columns(section.features, data),
        )
        if isinstance(teacher, teachers.ScoresFileTeacher) and cfg.data.streaming:
            raise ValueError(
                "a scores file cannot serve streamed rows (its ids are not read with the "
                "shards); log the scores as a column of the shards (teacher.column)"
            )
        if isinstance(teacher, teachers.ScoresFileTeacher):
            ids = torch.cat([split.ids for split in splits])
            teacher.check_ids(ids, where="the data (train, valid and test rows)")
        else:
            teachers.predict_dataset(teacher, _first_rows(data.train, min(2, rows)))
    except (OSError, ValueError, TypeError, ImportError) as error:
        raise ConfigError([f"{where}: {error}"]) from None
    return teacher


def _first_rows(dataset: Any, rows: int) -> Any:
    """The first rows of a Dataset or a streamed table (read from its first shard)."""
    return dataset.head(rows) if is_stream(dataset) else dataset.subset(torch.arange(rows))


def _feature_columns(spec: Any, data: RunData) -> list[int] | None:
    if spec is None:
        return None
    try:
        return parse_feature_spec(spec, data.train.feature_names)
    except (TypeError, ValueError) as error:
        raise ConfigError([f"teacher.features: {error}"]) from None


def saved_teacher(cfg: RunConfig) -> nn.Module:
    """The teacher saved in the run folder (``teacher/``)."""
    return load_model(cfg.run.directory / "teacher", "teacher", trust=cfg.teacher.trust)


def load_model(directory: Path, what: str, *, trust: bool = False) -> nn.Module:
    """A ``distill.models.save`` folder; a missing one is a config error naming ``what``.

    ``trust`` (``teacher.trust``, CLI ``--trust``) allows an import path in its ``model.json``.
    """
    if not (directory / "model.json").is_file():
        raise ConfigError([f"{what}: no saved model in {directory} (model.json missing)"])
    return models.load(directory, trust=trust)


def attach_class_vectors(objective: Any, cfg: RunConfig) -> None:
    """Give terms that read the teacher's class vectors (``similarity``) the saved teacher's."""
    terms = [term for term in objective.terms if getattr(term, "needs_class_vectors", False)]
    if terms:
        vectors = teacher_transforms.logit_layer_vectors(saved_teacher(cfg))
        for term in terms:
            term.class_vectors = vectors
