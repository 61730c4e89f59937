"""What ``distill export`` reads: a model directory, a training checkpoint or a run directory,
and how it writes every requested format plus the compression table into one directory."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from distill import models
from distill._io import write_atomic
from distill._validation import check_choice
from distill.export._files import MARKER, atomic_directory
from distill.export._inputs import Inputs
from distill.export.formats import ExportResult, export_model
from distill.export.table import CompressionRow, Predict, compression_table, save_table

SPEC_FILE = "model.json"
CONFIG_FILE = "config.toml"


@dataclass
class ExportSource:
    """Models to export and what measuring them needs.

    Attributes:
        path: where they came from.
        students: ``{name: model}`` to export.
        teacher: the reference row of the table, when known (a run's ``teacher/``).
        example_inputs: ``{name: inputs}`` for every student and the teacher (≥ 256 rows are
            not needed: rows are reused cyclically).
        evaluators: ``{name: evaluate(predict) -> float}`` on held-out data, or None.
        transfer_inputs: ``{name: inputs}`` of the training rows for low-rank recovery (every
            student, and the teacher when there is one), or None.
        metric: the evaluators' metric name.
    """

    path: Path
    students: dict[str, nn.Module]
    teacher: nn.Module | None = None
    example_inputs: dict[str, Inputs] = field(default_factory=dict)
    evaluators: dict[str, Callable[[Predict], float]] | None = None
    transfer_inputs: dict[str, Inputs] | None = None
    metric: str = "metric"


def open_source(
    path: str | os.PathLike, *, variants: Sequence[str] = (), spec: str | os.PathLike | None = None
) -> ExportSource:
    """Read ``path``: a run directory (``config.toml``), a model directory (``model.json``) or a
    checkpoint file (``*.pt``, weights under ``"model"``; its spec from ``spec`` or, inside a
    run, from ``students/<variant>/model.json``).

    Args:
        path: the source.
        variants: for a run, the students to export (default: every ``students/*`` and
            ``joint``).
        spec: for a checkpoint, the model directory or ``model.json`` whose spec it must match.

    Returns:
        An :class:`ExportSource`. Model and checkpoint sources get random example inputs built
        from the model's input sizes and no metric; runs use their data's test split.

    Raises:
        FileNotFoundError: nothing usable at ``path``, or an unknown variant.
        ValueError: a checkpoint that does not match its spec (the first offending key named).
    """
    path = Path(path)
    if path.is_file():
        model = load_checkpoint_model(path, spec)
        return _single_source(path, path.parent.name or "model", model)
    if (path / CONFIG_FILE).is_file():
        from distill.export.run_source import run_source

        return run_source(path, variants)
    if (path / SPEC_FILE).is_file():
        return _single_source(path, path.name or "model", models.load(path))
    raise FileNotFoundError(
        f"{path}: not a run directory ({CONFIG_FILE}), a model directory ({SPEC_FILE}) "
        "or a checkpoint file"
    )


def _single_source(path: Path, name: str, model: nn.Module) -> ExportSource:
    return ExportSource(path, {name: model}, example_inputs={name: random_inputs(model)})


def load_checkpoint_model(path: Path, spec: str | os.PathLike | None) -> nn.Module:
    """Build the model of ``spec`` and load the checkpoint's ``"model"`` weights into it.

    The checkpoint is read with ``torch.load(weights_only=True)`` (no code runs). Quantile
    heads and a joint model's teacher tower are dropped first (:func:`_serving_state`).

    Raises:
        FileNotFoundError: no spec given or found next to a run checkpoint.
        ValueError: not a checkpoint, or weights that do not fit the spec.
    """
    spec_path = _spec_path(path, spec)
    spec_dict = json.loads(spec_path.read_text())["spec"]
    model = models.build(spec_dict)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise ValueError(f"{path}: not a distill checkpoint (no 'model' state dict)")
    state = _serving_state(payload["model"])
    _check_state(model, state, f"{path}: checkpoint does not match model spec {spec_path}")
    model.load_state_dict(state)
    return model.eval()


def _spec_path(path: Path, spec: str | os.PathLike | None) -> Path:
    if spec is not None:
        spec = Path(spec)
        return spec / SPEC_FILE if spec.is_dir() else spec
    run, variant = path.parent.parent.parent, path.parent.name  # run/checkpoints/<variant>/x.pt
    for candidate in (run / "students" / variant, run / variant):
        if (candidate / SPEC_FILE).is_file():
            return candidate / SPEC_FILE
    raise FileNotFoundError(
        f"{path}: no model spec found (looked for {run / 'students' / variant / SPEC_FILE}); "
        "pass --spec MODEL_DIR"
    )


_JOINT_TO_STUDENT = {"shared_bottom": "bottom", "student_tower": "tower", "teacher_tower": None}
_HEADS_TO_MODEL = {"model": "", "heads": None}


def _serving_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The serving model's weights from a training state dict: ``model.*`` of a quantile-heads
    wrapper; ``shared_bottom.*`` + ``student_tower.*`` of a joint model (as ``bottom.*`` and
    ``tower.*``, the keys of ``JointModel.student()``). Other state dicts pass unchanged."""
    prefixes = {key.split(".", 1)[0] for key in state}
    for renames in (_HEADS_TO_MODEL, _JOINT_TO_STUDENT):
        if prefixes == set(renames):
            return _renamed(state, renames)
    return state


def _renamed(state: dict[str, torch.Tensor], renames: dict) -> dict[str, torch.Tensor]:
    kept = {}
    for key, value in state.items():
        prefix, rest = key.split(".", 1)
        if renames[prefix] is not None:
            kept[f"{renames[prefix]}.{rest}".lstrip(".")] = value
    return kept


def _check_state(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        key, kind = (missing[0], "missing") if missing else (unexpected[0], "unexpected")
        raise ValueError(f"{what}: {kind} key {key!r}")
    for key, value in expected.items():
        if value.shape != state[key].shape:
            raise ValueError(
                f"{what}: key {key!r} has shape {tuple(state[key].shape)}, "
                f"the spec needs {tuple(value.shape)}"
            )


def random_inputs(model: nn.Module, rows: int = 256) -> Inputs:
    """Random inputs of the model's input sizes (for latency and the ONNX check without data):
    ``randn(rows, in_features)`` for dense models, random ids (and no values) for models with
    a ``FieldEmbedding`` bottom.

    Raises:
        ValueError: the input size cannot be read from the model.
    """
    generator = torch.Generator().manual_seed(0)
    embedding = next((m for m in model.modules() if isinstance(m, models.FieldEmbedding)), None)
    if embedding is not None:
        shape = (rows, embedding.num_fields)
        ids = torch.randint(1, embedding.num_embeddings, shape, generator=generator)
        if embedding.dense_features:
            dense = torch.randn(rows, embedding.dense_features, generator=generator)
            return ids, torch.ones(shape), dense
        return ids
    in_features = next((m.in_features for m in model.modules() if hasattr(m, "in_features")), None)
    if in_features is None:
        raise ValueError(
            f"cannot make an example input for {type(model).__name__}: export it from a run "
            "directory, whose data gives the inputs"
        )
    return torch.randn(rows, in_features, generator=generator)


def export_source(
    source: ExportSource,
    out: str | os.PathLike,
    *,
    formats: Sequence[str],
    rank: int | float = 0.9,
    recover_steps: int = 0,
    recover_from: Literal["student", "teacher"] = "student",
    repeats: int = 20,
    onnx_atol: float = 1e-4,
    force: bool = False,
) -> list[CompressionRow]:
    """Export every student of ``source`` to every format and write the compression table.

    Layout: ``out/<student>/<format>/`` (see :func:`~distill.export.formats.export_model`),
    ``out/compression.json`` and ``out/compression.md``, ``out/export.json`` (the manifest).
    The whole of ``out`` is written in a temp directory first and renamed at the end.

    Args:
        source: from :func:`open_source`.
        out: the output directory.
        formats: names from :data:`~distill.export.formats.FORMATS`.
        rank: the low-rank setting (int rank or energy fraction).
        recover_steps: low-rank recovery steps (0: none); needs the source's training data.
        recover_from: distil the factorised student from the original ``"student"`` or from
            the run's ``"teacher"``.
        repeats, onnx_atol, force: as in :func:`compression_table` / :func:`export_model`.

    Returns:
        The table rows: teacher (if any), each student, each export (``<student>/<format>``).

    Raises:
        FileExistsError: ``out`` exists and ``force`` is False.
        ValueError: recovery without training data (or without a teacher when asked from
            it); bad rank; a failed ONNX check.
    """
    check_choice("recover_from", recover_from, ("student", "teacher"))
    _check_recovery(source, recover_steps, recover_from)
    recovery = {"steps": recover_steps, "from": recover_from}
    with atomic_directory(out, force=force) as temp:
        exports = _export_students(source, temp, formats, rank, recovery, onnx_atol)
        rows = _table(source, exports, repeats)
        save_table(rows, temp, metric=source.metric)
        manifest = {"source": str(source.path), "formats": list(formats), "rank": rank}
        manifest["recovery"] = recovery
        manifest["exports"] = {name: result.details for name, result in exports.items()}
        write_atomic(temp / MARKER, json.dumps(manifest, indent=2) + "\n")
    return rows


def _check_recovery(source: ExportSource, steps: int, recover_from: str) -> None:
    if steps and source.transfer_inputs is None:
        raise ValueError(
            "`--recover-steps` needs training data: export from a run directory (runs/<name>/), "
            f"not {source.path}"
        )
    if steps and recover_from == "teacher" and source.teacher is None:
        raise ValueError(f"`--recover-from teacher` needs a saved teacher in {source.path}")


def _export_students(source, temp: Path, formats, rank, recovery: dict, atol) -> dict:
    exports: dict[str, ExportResult] = {}
    for name, student in source.students.items():
        for fmt in formats:
            options = _low_rank_options(source, name, rank, recovery) if fmt == "low-rank" else {}
            exports[f"{name}/{fmt}"] = export_model(
                student,
                temp / name / fmt,
                format=fmt,
                example_input=source.example_inputs[name],
                onnx_atol=atol,
                **options,
            )
    return exports


def _low_rank_options(source: ExportSource, name: str, rank, recovery: dict) -> dict[str, Any]:
    options: dict[str, Any] = {"rank": rank, "recover_steps": recovery["steps"]}
    if recovery["steps"]:
        options["recover_inputs"] = source.transfer_inputs[name]
        if recovery["from"] == "teacher":
            options["reference"] = source.teacher
            options["reference_inputs"] = source.transfer_inputs["teacher"]
    return options


def _table(source: ExportSource, exports: dict[str, ExportResult], repeats: int):
    entries: dict[str, Any] = {} if source.teacher is None else {"teacher": source.teacher}
    entries.update(source.students)
    entries.update(exports)
    inputs = {name: source.example_inputs[name.split("/")[0]] for name in entries}
    evaluate = None
    if source.evaluators is not None:
        evaluate = {name: source.evaluators[name.split("/")[0]] for name in entries}
    return compression_table(entries, example_input=inputs, evaluate=evaluate, repeats=repeats)
