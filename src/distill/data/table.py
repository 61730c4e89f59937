"""CSV / TSV / Parquet tables (pyarrow) with a column mapping: features, label, group, id."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import torch

from distill.data._checks import (
    Impute,
    check_file,
    check_has_rows,
    check_label_range,
    finite_features,
    is_number,
    raise_located,
)
from distill.data.dataset import Dataset

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(
    path: str | os.PathLike,
    *,
    features: Sequence[str] | None = None,
    label: str,
    group: str | None = None,
    id: str | None = None,
    label_range: tuple[float, float] | None = None,
    allow_nan: bool = False,
    impute: Impute = None,
    extras: Sequence[str] = (),
) -> Dataset:
    """Read a CSV (``,``), TSV (``.tsv``: tab) or Parquet (``.parquet``/``.pq``) table.

    The first CSV line is the header. Missing numeric values become NaN and are then rejected,
    kept (``allow_nan``) or imputed like any NaN.

    Args:
        path: the table file; the format follows the suffix.
        features: numeric feature columns, in this order; None: every column not mapped below.
        label: label column; integer columns give int64 class labels, others float32.
        group: optional group (query) column; integers are kept, other values are numbered in
            order of first appearance.
        id: optional int64 example-id column (default: row number).
        label_range: declared ``(low, high)`` of the labels, checked if given.
        allow_nan: keep NaN/inf features; impute: replace them by a number or column mean.
        extras: numeric columns kept out of the features, as float32 ``Dataset.extras``
            (e.g. a logged teacher score for ``ScoreColumnTeacher``).

    Returns:
        Dense Dataset (float32 features) with ``feature_names`` = the feature columns and
        ``meta["task"]``: "ranking" with a group column, else "classification" (with
        ``meta["num_classes"]`` = max label + 1) for integer labels, else "binary" for 0/1
        labels (unset otherwise).

    Raises:
        ValueError: empty file, unknown column (the available ones are listed), a malformed
            CSV row (``file:line``), a non-numeric feature column, NaN/inf, labels out of range.

    Example:
        >>> ds = read_table("clicks.parquet", features=["f1", "f2"], label="click", group="query")
    """
    path = check_file(path)
    table = _read(path)
    check_has_rows(path, table.num_rows)
    mapped = [name for name in (label, group, id, *extras) if name is not None]
    features = [c for c in table.column_names if c not in mapped] if features is None else features
    if not features:
        raise ValueError(f"{path}: no feature columns selected")
    _check_columns(path, table, [*features, *mapped])
    matrix = np.stack([_numeric(path, table, name) for name in features], axis=1)
    labels = _label_tensor(path, table[label])
    check_label_range(labels, label_range, source=path)
    return Dataset(
        features=finite_features(
            torch.from_numpy(matrix), source=path, allow_nan=allow_nan, impute=impute
        ),
        labels=labels,
        groups=None if group is None else _group_tensor(path, table[group]),
        ids=None if id is None else _id_tensor(path, table[id]),
        feature_names=list(features),
        extras={name: torch.from_numpy(_numeric(path, table, name)) for name in extras},
        meta={"source": path, **_task_meta(labels, group)},
    )


def _task_meta(labels: torch.Tensor, group: str | None) -> dict[str, Any]:
    if group is not None:
        return {"task": "ranking"}
    if labels.dtype == torch.int64:
        return {"task": "classification", "num_classes": int(labels.max()) + 1}
    return {"task": "binary"} if bool(((labels == 0) | (labels == 1)).all()) else {}


def _read(path: str) -> pa.Table:
    if path.lower().endswith(PARQUET_SUFFIXES):
        return pq.read_table(path)
    sep = "\t" if path.lower().endswith(".tsv") else ","
    try:
        return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=sep))
    except pa.ArrowInvalid as error:
        with open(path, encoding="utf-8", errors="replace") as lines:
            n_columns = len(lines.readline().split(sep))

        def problem_in_line(line: str) -> str | None:
            found = len(line.split(sep))
            return None if found == n_columns else f"expected {n_columns} fields, got {found}"

        raise_located(path, problem_in_line, error, skip_lines=1)


def _check_columns(path: str, table: pa.Table, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in table.column_names]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; columns are {table.column_names}")


def _numeric(path: str, table: pa.Table, name: str) -> np.ndarray:
    column = table[name]
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or _is_bool_or_null(kind)):
        values = column.to_pylist()
        bad = (i for i, v in enumerate(values) if v is not None and not is_number(str(v)))
        row = next(bad, None)
        example = "" if row is None else f": value {values[row]!r} in row {row} (0-based data row)"
        raise ValueError(
            f"{path}: feature column {name!r} is not numeric (type {column.type}){example}"
        )
    return pc.cast(column, pa.float32()).to_numpy(zero_copy_only=False).astype(np.float32)


def _is_bool_or_null(kind: pa.DataType) -> bool:
    return pa.types.is_boolean(kind) or pa.types.is_null(kind)


def _label_tensor(path: str, column: pa.ChunkedArray) -> torch.Tensor:
    if column.null_count:
        raise ValueError(f"{path}: label column has {column.null_count} missing value(s)")
    if pa.types.is_integer(column.type):
        return torch.from_numpy(column.to_numpy().astype(np.int64))
    if pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
        return torch.from_numpy(column.to_numpy(zero_copy_only=False).astype(np.float32))
    raise ValueError(f"{path}: label column must be numeric, got type {column.type}")


def _group_tensor(path: str, column: pa.ChunkedArray) -> torch.Tensor:
    if column.null_count:
        raise ValueError(f"{path}: group column has {column.null_count} missing value(s)")
    if pa.types.is_integer(column.type):
        return torch.from_numpy(column.to_numpy().astype(np.int64))
    encoded = pc.dictionary_encode(column).combine_chunks()
    return torch.from_numpy(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64))


def _id_tensor(path: str, column: pa.ChunkedArray) -> torch.Tensor:
    if not pa.types.is_integer(column.type) or column.null_count:
        raise ValueError(f"{path}: id column must hold integers without gaps, got {column.type}")
    return torch.from_numpy(column.to_numpy().astype(np.int64))
