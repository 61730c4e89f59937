"""``distill export``: open a model directory, a training checkpoint or a run directory, and
write every requested format plus the compression table into one directory."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from distill import models
from distill._io import write_atomic
from distill._validation import check_choice
from distill.export._files import MARKER, atomic_directory
from distill.export.chain import ChainSettings, check_chain, run_chain
from distill.export.chain_table import ChainRow, chain_table, save_chain
from distill.export.formats import ExportResult, export_model, serving_module
from distill.export.model_source import (
    CONFIG_FILE,
    SPEC_FILE,
    ExportSource,
    load_checkpoint_model,
    single_source,
)
from distill.export.run_source import run_source
from distill.export.table import CompressionRow, compression_table, save_table


def open_source(
    path: str | os.PathLike,
    *,
    variants: Sequence[str] = (),
    spec: str | os.PathLike | None = None,
    trust: bool = False,
) -> ExportSource:
    """Read ``path``: a run directory (``config.toml``), a model directory (``model.json``) or a
    checkpoint file (``*.pt``, weights under ``"model"``; its spec from ``spec`` or, inside a
    run, from ``students/<variant>/model.json``).

    Args:
        path: the source.
        variants: for a run, the students to export (default: every ``students/*`` and
            ``joint``).
        spec: for a checkpoint, the model directory or ``model.json`` whose spec it must match.
        trust: allow import-path model names in the specs (importing runs their code).

    Returns:
        An :class:`ExportSource`. Model and checkpoint sources get random example inputs built
        from the model's input sizes and no metric; runs use their data's test split.

    Raises:
        FileNotFoundError: nothing usable at ``path``, or an unknown variant.
        ValueError: a checkpoint that does not match its spec (the first offending key named).
    """
    path = Path(path)
    if path.is_file():
        model = load_checkpoint_model(path, spec, trust=trust)
        return single_source(path, path.parent.name or "model", model)
    if (path / CONFIG_FILE).is_file():
        return run_source(path, variants, trust=trust)
    if (path / SPEC_FILE).is_file():
        return single_source(path, path.name or "model", models.load(path, trust=trust))
    raise FileNotFoundError(
        f"{path}: not a run directory ({CONFIG_FILE}), a model directory ({SPEC_FILE}) "
        "or a checkpoint file"
    )


def export_source(
    source: ExportSource,
    out: str | os.PathLike,
    *,
    formats: Sequence[str],
    rank: int | float = 0.9,
    recover_steps: int = 0,
    recover_from: Literal["student", "teacher"] = "student",
    recover_options: dict[str, Any] | None = None,
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
        recover_options: further :func:`~distill.export.lowrank.recover` keywords (``loss``,
            ``temperature``, ``lr``).
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
    recovery = {"steps": recover_steps, "from": recover_from, **(recover_options or {})}
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
    options["recover_options"] = {k: v for k, v in recovery.items() if k not in ("steps", "from")}
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


def chain_source(
    source: ExportSource,
    out: str | os.PathLike,
    *,
    steps: Sequence[str],
    share_rank: int | float = 0.9,
    rank: int | float = 0.9,
    recover_steps: int = 0,
    recover_from: Literal["student", "teacher"] = "student",
    recover_options: dict[str, Any] | None = None,
    repeats: int = 20,
    force: bool = False,
) -> list[ChainRow]:
    """Run the compression chain on every student of ``source`` and write its table.

    Layout: ``out/<student>/<step>/`` (``original`` first, see
    :func:`~distill.export.chain.run_chain`), ``out/chain.json``, ``out/chain.md`` and
    ``out/export.json``; the whole of ``out`` appears at once. The metric is the source's
    (a run's test split); recovery distils from the original student or the run's teacher
    on the run's training rows.

    Raises:
        FileExistsError: ``out`` exists and ``force`` is False.
        ValueError: a bad chain, rank or recovery setting (checked for every student before
            anything is written).
    """
    check_choice("recover_from", recover_from, ("student", "teacher"))
    _check_recovery(source, recover_steps, recover_from)
    recovery = {"steps": recover_steps, "from": recover_from, **(recover_options or {})}
    settings = {
        name: _chain_settings(source, name, share_rank, rank, recovery) for name in source.students
    }
    for name, student in source.students.items():
        check_chain(steps, serving_module(student), settings[name])
    with atomic_directory(out, force=force) as temp:
        rows: list[ChainRow] = []
        for name, student in source.students.items():
            written = run_chain(student, steps, temp / name, settings=settings[name])
            evaluate = None if source.evaluators is None else source.evaluators[name]
            rows += chain_table(
                written,
                example_input=source.example_inputs[name],
                evaluate=evaluate,
                repeats=repeats,
                prefix=f"{name}/",
            )
        save_chain(rows, temp, metric=source.metric)
        manifest = {"source": str(source.path), "chain": list(steps), "rank": rank}
        manifest |= {"share_rank": share_rank, "recovery": recovery}
        write_atomic(temp / MARKER, json.dumps(manifest, indent=2) + "\n")
    return rows


def _chain_settings(source, name, share_rank, rank, recovery: dict) -> ChainSettings:
    options = {k: v for k, v in recovery.items() if k not in ("steps", "from")}
    settings = ChainSettings(share_rank=share_rank, rank=rank, recover_steps=recovery["steps"])
    settings.recover_options = options
    if recovery["steps"]:
        settings.recover_inputs = source.transfer_inputs[name]
        if recovery["from"] == "teacher":
            settings.reference = source.teacher
            settings.reference_inputs = source.transfer_inputs["teacher"]
    return settings
