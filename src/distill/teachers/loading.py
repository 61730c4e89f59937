"""``load_teacher``: any teacher file by kind, the kind told from the file when unambiguous."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill.teachers._common import existing_file
from distill.teachers.exported import OnnxTeacher, TorchScriptTeacher
from distill.teachers.gbdt import CatBoostTeacher, LightGBMTeacher, XGBoostTeacher
from distill.teachers.modules import PICKLE_SUFFIXES, load_module_teacher
from distill.teachers.scores import PARQUET_SUFFIXES, ScoresFileTeacher

KIND_FILES = {
    "distill": "a distill model folder (model.json), a .safetensors file or a pickled module",
    "scores": "a scores table (.parquet, .csv or .tsv)",
    "lightgbm": "a LightGBM text model (starting with 'tree')",
    "xgboost": "an XGBoost JSON/UBJSON model",
    "catboost": "a CatBoost model (.cbm)",
    "onnx": "an ONNX model (.onnx)",
    "torchscript": "a TorchScript archive or a torch.export program (.pt2)",
}
"""Every teacher kind and the file it reads."""
TEACHER_KINDS = tuple(KIND_FILES)
SUFFIX_KINDS = {
    **dict.fromkeys((*PARQUET_SUFFIXES, ".csv", ".tsv"), "scores"),
    ".safetensors": "distill",
    ".onnx": "onnx",
    ".pt2": "torchscript",
    ".cbm": "catboost",
    ".ubj": "xgboost",
}
MODEL_CLASSES = {
    "lightgbm": LightGBMTeacher,
    "xgboost": XGBoostTeacher,
    "catboost": CatBoostTeacher,
    "onnx": OnnxTeacher,
}
HEAD_BYTES = 4096


def detect_kind(path: str | os.PathLike) -> str | None:
    """The teacher kind a file's contents (else its suffix) show, or None when unclear.

    LightGBM text models start with ``tree``, CatBoost binaries with ``CBM1``, XGBoost JSON
    and UBJSON hold a ``learner`` object; a zip archive with ``code/`` entries is TorchScript,
    one with ``data.pkl`` only a pickled module (``torch.save``); a model folder holds
    ``model.json``.

    Example:
        >>> detect_kind("lambdarank.txt")  # doctest: +SKIP
        'lightgbm'
    """
    path = Path(path)
    if path.is_dir():
        return "distill" if (path / "model.json").is_file() else None
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return "lightgbm"
    if head.startswith(b"CBM1") or (head.startswith(b"{") and b"oblivious_trees" in head):
        return "catboost"
    if head.startswith(b"{") and b"learner" in head[:64]:
        return "xgboost"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any("/code/" in name or name.endswith("constants.pkl") for name in names):
            return "torchscript"
        if any(name.endswith("data.pkl") for name in names):
            return "distill"
    return SUFFIX_KINDS.get(path.suffix.lower()) or (
        "distill" if path.suffix.lower() in PICKLE_SUFFIXES else None
    )


def load_teacher(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    trust: bool = False,
    spec: dict[str, Any] | None = None,
    key: str | None = None,
    column: str | None = None,
    columns: Sequence[str] | None = None,
    feature_columns: Sequence[int] | None = None,
) -> Any:
    """Load a teacher of any kind from disk.

    Kinds: ``distill`` (a :func:`distill.models.save` folder, a ``.safetensors`` file with
    ``spec``, or a pickled module with ``trust``), ``scores`` (a table keyed by id:
    :class:`ScoresFileTeacher`), ``lightgbm``/``xgboost``/``catboost`` (raw margins),
    ``onnx`` and ``torchscript`` (``torch.jit.save`` or ``torch.export`` ``.pt2``).

    Args:
        path: the model file or folder, or the scores file.
        kind: one of :data:`TEACHER_KINDS`; None: told from the file (:func:`detect_kind`).
        trust: allow unpickling a full module (kind ``distill`` only).
        spec: model spec of a bare ``.safetensors`` file.
        key, column, columns: the id column and the logit column(s) of a scores file.
        feature_columns: 0-based feature columns a GBDT/ONNX model reads (default: all).

    Returns:
        A teacher with ``predict(features, ids)``, ``fingerprint()`` and ``size()``.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: an unknown kind, a kind that cannot be told from the file, a file of
            another kind than ``kind`` (expected and found named), a scores kind without
            ``key`` or columns.
        ImportError: the kind's library is missing (the ``pip install`` line named).

    Reference: docs/teachers.md.

    Example:
        >>> teacher = load_teacher("lambdarank.txt")  # doctest: +SKIP
        >>> teacher = load_teacher("scores.parquet", key="id", column="logit")  # doctest: +SKIP
    """
    path = existing_file(path)
    found = detect_kind(path)
    if kind is None:
        if found is None:
            raise ValueError(
                f"{path}: cannot tell the teacher kind from the file; give kind= one of "
                f"{', '.join(TEACHER_KINDS)}"
            )
        kind = found
    if kind not in KIND_FILES:
        raise ValueError(f"`kind` must be one of {', '.join(TEACHER_KINDS)}, got {kind!r}")
    if found is not None and found != kind:
        raise ValueError(
            f"{path}: kind = {kind!r} expects {KIND_FILES[kind]}, found {KIND_FILES[found]}"
        )
    if kind == "distill":
        return load_module_teacher(path, trust=trust, spec=spec)
    if kind == "scores":
        if key is None:
            raise ValueError(f"{path}: a scores file needs `key`, the id column")
        return ScoresFileTeacher(path, key=key, column=column, columns=columns)
    if kind == "torchscript":
        return TorchScriptTeacher(path)
    return MODEL_CLASSES[kind](path, feature_columns=feature_columns)
