"""Runs from a config: teacher → score cache → student variants → one comparison table.

Each function takes a validated :class:`distill.config.RunConfig` and writes into the run folder
``run.out_dir/run.name`` (layout in docs/index.md#run-folders): ``config.toml``, ``teacher/``,
``scores/``, ``students/<variant>/``, ``joint/``, ``metrics.jsonl``, ``checkpoints/`` and
``results.json``. The HTML report is written one layer up (``distill run`` / ``distill.report``),
since reports sit above training in the layering.

Example:
    >>> from distill.config import load_config
    >>> results = run_experiment(load_config("examples/classification.toml"))
    >>> [row["name"] for row in results["variants"]]  # doctest: +SKIP
    ['labels', 'kd_T4']
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from torch import nn

from distill import models, teachers
from distill.config import ConfigError, LabelsTerm, Objective, RunConfig, Variant, write_config
from distill.experiment.checks import run_warnings
from distill.experiment.metrics import track_metrics
from distill.experiment.results import model_row, read_results, teacher_file_row, write_row
from distill.experiment.run_folder import (
    clear_outputs,
    finished_rows,
    prepare_folder,
    remove_temp_files,
    run_lock,
)
from distill.experiment.setup import (
    RunData,
    build_joint_model,
    build_model,
    fit_objective,
    load_run_data,
    train_options,
)
from distill.experiment.teacher import (
    SCORES_DIR,
    attach_class_vectors,
    fingerprint_teacher,
    fresh_cache,
    given_teacher,
    load_model,
    median_teacher,
    score_streamed,
    scored_rows,
    teacher_source,
)
from distill.train.distributed import DistributedContext, barrier, setup_distributed
from distill.train.joint import JointObjective
from distill.train.loop import fit


def run_experiment(cfg: RunConfig, *, force: bool = False, resume: bool = False) -> dict[str, Any]:
    """Teacher, score cache, every variant (and the joint model), then ``results.json``.

    Every variant gets the same student architecture, data split and optimiser budget (with
    ``run.seeds``, once per seed: :func:`distill.experiment.seeds.run_seeds`); each row of
    the comparison holds the track's test metrics, parameters, size, wall time and
    ``gap recovered = (variant − baseline) / (teacher − baseline)`` on the headline metric.

    The data and every model spec are checked before any file is written. The run holds the
    folder's lock (``run.lock``) while it writes; a second run on the folder refuses.

    Args:
        cfg: the validated run config (:func:`distill.config.load_config`).
        force: overwrite a run already in the folder (its outputs are removed first).
        resume: finish a killed run: models already in ``results.json`` are kept, the others
            continue from their last checkpoint and end with the weights of an uninterrupted
            run; the config must equal the run's ``config.toml``.

    Returns:
        The results mapping written to ``results.json`` (docs/index.md#run-folders).

    Raises:
        ConfigError: data or variants that do not fit the track, an existing run without
            ``force``/``resume`` (exit code 2 in the CLI).
        RunLockedError: another process is writing this run folder.

    Example:
        >>> results = run_experiment(load_config("examples/classification.toml"))
        >>> results["variants"][1]["gap_recovered"]  # doctest: +SKIP
        0.81
    """
    if cfg.run.seeds is not None:  # one run folder per seed, then the combined results
        from distill.experiment.seeds import run_seeds

        return run_seeds(cfg, force=force, resume=resume)
    data = load_run_data(cfg)  # bad data or models fail before the run folder is touched
    _check_models(cfg, data)
    context = _context(cfg)
    lock = run_lock(cfg.run.directory) if context.is_main else contextlib.nullcontext()
    with lock:
        if context.is_main:
            prepare_folder(cfg, force=force, resume=resume)
        folder = start_run(cfg, fresh=not resume)
        done = finished_rows(folder) if resume else set()
        if "teacher" not in done:
            run_teacher(cfg, data=data, resume=resume)
        uses_teacher = any(v.objective.uses_teacher for v in cfg.variants) or cfg.joint is not None
        scored = cfg.train.teacher_mode == "offline" and not cfg.teacher.score_columns
        if uses_teacher and scored:
            score_teacher(cfg, data=data, reuse=resume)
        for variant in cfg.variants:
            if variant.name not in done:
                run_student(cfg, variant.name, data=data, resume=resume)
        if cfg.joint is not None and "joint" not in done:
            run_joint(cfg, data=data, resume=resume)
        _update_results(
            cfg, warnings=run_warnings(cfg, read_results(folder), data.labels(data.test))
        )
    return read_results(folder)


def _check_models(cfg: RunConfig, data: RunData) -> None:
    """Build every model on the meta device (no weights) and load the user's teacher, so that
    a bad model table or teacher file fails before anything is written."""
    options = {"seed": 0, "trust": cfg.teacher.trust, "device": "meta"}
    if cfg.teacher.model is not None:
        build_model(cfg.teacher.model, data.train, cfg.run.track, where="teacher.model", **options)
    else:
        given_teacher(cfg, data)
    view = data.student_view(data.train)
    build_model(cfg.student.model, view, cfg.run.track, where="student.model", **options)
    if cfg.joint is not None:
        build_joint_model(cfg, data.train, device="meta")


def start_run(cfg: RunConfig, *, fresh: bool = True) -> Path:
    """Create the run folder, write the resolved ``config.toml``, start a fresh log.

    Temp files of killed writes are removed; ``fresh`` also removes a previous run's outputs
    (``resume`` keeps them).
    """
    folder = cfg.run.directory
    context = _context(cfg)
    if context.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        remove_temp_files(folder)
        if fresh:
            clear_outputs(folder)
        write_config(cfg, folder / "config.toml")
    barrier(context)
    return folder


def run_teacher(
    cfg: RunConfig, *, data: RunData | None = None, resume: bool = False
) -> dict[str, Any]:
    """Train the teacher (or load ``[teacher].path``), save it to ``teacher/``, test it.

    The teacher sees every feature column and every training label (``[teacher.train]``
    options, hard-label loss of the track). A teacher that is not a torch module (GBDT,
    ONNX, TorchScript, stored scores) is neither trained nor copied: its row is computed
    from its predictions on the test split, with its own size (trees/leaves or parameters,
    bytes on disk).

    Args:
        cfg: the run config.
        data: the run's splits when already loaded (else read from ``cfg``).
        resume: continue training from ``checkpoints/teacher/last.pt`` when it exists.

    Returns:
        The teacher's results row (name, metrics, params, size_bytes, wall_time_s, path).

    Raises:
        ConfigError: an unreadable ``teacher.path``.
    """
    data = data or load_run_data(cfg)
    folder = cfg.run.directory
    started = time.perf_counter()
    if cfg.teacher.model is None:
        given = given_teacher(cfg, data)
        if not isinstance(given, teachers.ModuleTeacher):
            row = teacher_file_row(cfg, given, data.test, started)
            _update_results(cfg, teacher=row)
            return row
        model = given.module
    else:
        model = build_model(
            cfg.teacher.model,
            data.train,
            cfg.run.track,
            seed=cfg.run.seed,
            where="teacher.model",
            trust=cfg.teacher.trust,
        )
        objective = fit_objective(Objective(labels=LabelsTerm()), cfg.run.track)
        options = train_options(cfg.teacher.train, cfg)
        model = fit(
            model,
            data.train,
            objective=objective,
            options=options,
            valid=data.valid,
            run_dir=folder,
            variant="teacher",
            resume=resume,
        ).model
    path = _save(cfg, model, folder / "teacher")
    wall_time = time.perf_counter() - started
    row = model_row("teacher", model, data.test, cfg, wall_time, path)
    _update_results(cfg, teacher=row)
    return row


def score_teacher(cfg: RunConfig, *, data: RunData | None = None, reuse: bool = False) -> Path:
    """Cache the teacher's scores of every training row (``scores/train/``): the saved
    teacher module's, or those of the user's teacher file or score column (streamed data:
    :func:`~distill.experiment.teacher.score_streamed`, score shards beside the shards).

    Old shards are removed first. With ``reuse``, a cache that is still valid for the teacher
    and the data (see :class:`distill.teachers.CachedScores`) is kept as it is.
    """
    data = data or load_run_data(cfg)
    teacher = fingerprint_teacher(cfg, data)
    if cfg.data.streaming:
        return score_streamed(teacher, data, _context(cfg))
    directory = cfg.run.directory / SCORES_DIR
    if reuse and fresh_cache(cfg, data, teacher):
        return directory
    context = _context(cfg)
    if context.is_main:
        for old in directory.glob("scores-*.parquet"):
            old.unlink()
    barrier(context)
    shard = teachers.score(
        teacher, data.train, directory, rank=context.rank, world_size=context.world_size
    )
    barrier(context)
    return Path(shard)


def run_student(
    cfg: RunConfig, variant: str, *, data: RunData | None = None, resume: bool = False
) -> dict[str, Any]:
    """Train one variant from the teacher (cached scores unless ``teacher_mode = "online"``).

    Args:
        cfg: the run config.
        variant: the name of one of ``cfg.variants``.
        data: the run's splits when already loaded.
        resume: continue training from ``checkpoints/<variant>/last.pt`` when it exists.

    Returns:
        The variant's results row; the model is saved to ``students/<variant>/``.

    Raises:
        ConfigError: an unknown variant, or no score cache (run :func:`score_teacher`).
    """
    chosen = _variant(cfg, variant)
    data = data or load_run_data(cfg)
    train = data.training_rows(chosen)
    view = data.student_view(data.train)
    model = build_model(
        cfg.student.model,
        view,
        cfg.run.track,
        seed=cfg.run.seed,
        where="student.model",
        trust=cfg.teacher.trust,
    )
    teacher = teacher_source(cfg, data) if chosen.objective.uses_teacher else None
    train = scored_rows(cfg, train, teacher)
    sample = data.feature_sample(train)
    objective = fit_objective(chosen.objective, cfg.run.track, teacher=teacher, sample=sample)
    attach_class_vectors(objective, cfg)
    options = train_options(cfg.train, cfg, student_features=data.student_features)
    if chosen.objective.two_step_median is not None:
        teacher = median_teacher(cfg, chosen, data, model, teacher)
    result = fit(
        model,
        train,
        objective=objective,
        options=options,
        teacher=teacher,
        valid=data.valid,
        run_dir=cfg.run.directory,
        variant=chosen.name,
        resume=resume,
    )
    path = _save(cfg, result.model, cfg.run.directory / "students" / chosen.name)
    test = data.student_view(data.test)
    row = model_row(chosen.name, result.model, test, cfg, result.wall_time_s, path)
    _update_results(cfg, variant=row)
    return row


def run_joint(
    cfg: RunConfig, *, data: RunData | None = None, resume: bool = False
) -> dict[str, Any]:
    """Train the joint model (static warm-up from cached scores, then dynamic distillation).

    The model is ``distill.models.ctr_joint_model``: a shared embedding, a deep teacher tower
    (``joint.teacher_hidden``) and the student tower of ``[student.model]`` (WideAndDeep).
    Only the student path (shared bottom + student tower) is saved, to ``joint/``, and tested.

    Returns:
        The results row of variant ``"joint"``.
    """
    if cfg.joint is None:
        raise ConfigError(["joint: the config has no [joint] table"])
    data = data or load_run_data(cfg)
    model = build_joint_model(cfg, data.train)
    joint = cfg.joint
    objective = JointObjective(
        soft_weight=joint.soft_weight,
        temperature=joint.temperature,
        warmup_steps=joint.warmup_steps,
        gate=joint.gate,
        gate_steps=joint.gate_steps,
    )
    result = fit(
        model,
        data.labeled,
        objective=objective,
        options=train_options(cfg.train, cfg),
        teacher=teacher_source(cfg, data) if objective.uses_teacher else None,
        valid=data.valid,
        run_dir=cfg.run.directory,
        variant="joint",
        resume=resume,
    )
    student = result.model.student()
    path = _save(cfg, student, cfg.run.directory / "joint")
    row = model_row("joint", student, data.test, cfg, result.wall_time_s, path)
    _update_results(cfg, variant=row)
    return row


def evaluate_model(cfg: RunConfig, directory: Path, *, split: str = "test") -> dict[str, float]:
    """The track's metrics of a saved model on one split of the config's data.

    The student's feature columns are used unless the model reads every column.
    """
    if split not in ("train", "valid", "test"):
        raise ConfigError([f"split: must be one of 'train', 'valid', 'test', got {split!r}"])
    data = load_run_data(cfg)
    model = load_model(Path(directory), "model", trust=cfg.teacher.trust)
    return track_metrics(model, data.view_for(model, getattr(data, split)), cfg.run.track)


def _context(cfg: RunConfig) -> DistributedContext:
    """This process under ``torchrun`` (rank, world size), else a single-process context."""
    return setup_distributed(cfg.train.device)


def _save(cfg: RunConfig, model: nn.Module, directory: Path) -> Path:
    """Save a model from the main process only; every process waits for the files."""
    context = _context(cfg)
    if context.is_main:
        models.save(model, directory)
    barrier(context)
    return directory


def _update_results(cfg: RunConfig, *, teacher=None, variant=None, warnings=None) -> None:
    """Insert a row (or the warnings) into ``results.json``; recompute every gap recovered.

    Only the main process writes; the others wait until it has.
    """
    context = _context(cfg)
    if context.is_main:
        write_row(cfg, teacher, variant, warnings=warnings)
    barrier(context)


def _variant(cfg: RunConfig, name: str) -> Variant:
    for variant in cfg.variants:
        if variant.name == name:
            return variant
    names = ", ".join(v.name for v in cfg.variants)
    raise ConfigError([f"variants: no variant {name!r}; the config has: {names}"])
