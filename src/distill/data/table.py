"""CSV / TSV / Parquet tables (pyarrow) with a column mapping: features, label, group, id."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import torch

from distill._validation import check_positive_int
from distill.data._checks import (
    Impute,
    check_file,
    check_has_rows,
    check_label_range,
    finite_features,
    is_number,
    raise_located,
)
from distill.data._hashing import hashed_ids
from distill.data.dataset import Dataset
from distill.data.tasks import Task, infer_task, with_task

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(
    path: str | os.PathLike,
    *,
    features: Sequence[str] | None = None,
    label: str,
    group: str | None = None,
    id: str | None = None,
    categorical: Sequence[str] = (),
    hash_buckets: int = 2**17,
    task: Task | None = None,
    label_range: tuple[float, float] | None = None,
    allow_nan: bool = False,
    impute: Impute = None,
    extras: Sequence[str] = (),
) -> Dataset:
    """Read a CSV (``,``), TSV (``.tsv``: tab) or Parquet (``.parquet``/``.pq``) table.

    The first CSV line is the header. Missing numeric values become NaN and are then rejected,
    kept (``allow_nan``) or imputed like any NaN.

    Without ``categorical`` the features are dense float32 ``(N, D)``. With it (Avazu/Criteo-
    style tables) every row becomes sparse int64 ids, the input of the CTR models: numeric
    column k is id ``1 + k`` weighted by its value (``feature_values``), categorical column j
    is id ``1 + D + j·(hash_buckets + 1) + local`` with ``local = 1 + crc32(text) %
    hash_buckets`` (0: missing), so ``num_embeddings = 1 + D + C·(hash_buckets + 1)``.

    Args:
        path: the table file; the format follows the suffix.
        features: numeric feature columns, in this order; None: every column not mapped below
            (named in a warning; string columns are refused).
        label: label column.
        group: optional group (query) column; integers are kept, other values are numbered in
            order of first appearance.
        id: optional int64 example-id column (default: row number).
        categorical: string or integer columns hashed into embedding ids (CSV cells are hashed
            as written).
        hash_buckets: buckets per categorical column.
        task: "classification" (int64 class labels), "binary" (clicks in [0, 1], float32) or
            "ranking" (float32 grades, needs ``group``); None infers it: ranking with a group
            column, binary for 0/1 labels, classification for other integers, else unset.
        label_range: declared ``(low, high)`` of the labels, checked if given.
        allow_nan: keep NaN/inf features; impute: replace them by a number or column mean.
        extras: numeric columns kept out of the features, as float32 ``Dataset.extras``
            (e.g. a logged teacher score for ``ScoreColumnTeacher``).

    Returns:
        Dataset with ``feature_names`` = the numeric then the categorical columns and
        ``meta["columns"] = {"features": [...], "categorical": [...]}`` (the columns a
        matching valid/test file must hold) and ``meta["table_columns"]`` (every column).

    Raises:
        ValueError: empty file, unknown column (the available ones are listed), a malformed
            CSV row (``file:line``), a non-numeric feature column, string columns among the
            inferred features, a float categorical column, NaN/inf, labels out of range or not
            fitting ``task``.

    Example:
        >>> ds = read_table("avazu.csv", features=[], label="click", categorical=["site_id"])
        >>> ds.is_sparse, ds.meta["task"]
        (True, 'binary')
    """
    path = check_file(path)
    check_positive_int("hash_buckets", hash_buckets)
    categorical = list(categorical)
    table = _read(path, string_columns=categorical)
    check_has_rows(path, table.num_rows)
    mapped = [name for name in (label, group, id, *extras) if name is not None]
    _check_columns(path, table, [*mapped, *categorical, *(features or [])])
    if features is None:
        features = _infer_features(path, table, [*mapped, *categorical])
    if not features and not categorical:
        raise ValueError(f"{path}: no feature columns selected")
    dataset = table_dataset(
        path,
        table,
        features=features,
        label=label,
        group=group,
        id=id,
        categorical=categorical,
        hash_buckets=hash_buckets,
        allow_nan=allow_nan,
        impute=impute,
        extras=extras,
    )
    check_label_range(dataset.labels, label_range, source=path)
    task = task or infer_task(dataset.labels, grouped=group is not None)
    return dataset if task is None else with_task(dataset, task)


def table_dataset(
    path: str,
    table: pa.Table,
    *,
    features: Sequence[str],
    label: str,
    group: str | None,
    id: str | None,
    categorical: Sequence[str],
    hash_buckets: int,
    allow_nan: bool = False,
    impute: Impute = None,
    extras: Sequence[str] = (),
) -> Dataset:
    """The rows of an Arrow table as a Dataset (columns resolved; see :func:`read_table`).

    Also the conversion of each record batch of a streamed table (``distill.data.streaming``),
    so in-memory and streamed rows get the same ids and values.

    Raises:
        ValueError: as :func:`read_table`, naming ``path``.
    """
    categorical = list(categorical)
    matrix = np.zeros((table.num_rows, 0), dtype=np.float32)
    if features:
        matrix = np.stack([_numeric(path, table, name) for name in features], axis=1)
    labels = _label_tensor(path, table[label])
    dataset = Dataset(
        features=finite_features(
            torch.from_numpy(matrix), source=path, allow_nan=allow_nan, impute=impute
        ),
        labels=labels,
        groups=None if group is None else _group_tensor(path, table[group]),
        ids=None if id is None else _id_tensor(path, table[id]),
        feature_names=list(features),
        extras={name: torch.from_numpy(_numeric(path, table, name)) for name in extras},
        meta={
            "source": path,
            "columns": {"features": list(features), "categorical": categorical},
            "table_columns": list(table.column_names),
        },
    )
    if categorical:
        dataset = _with_categorical(dataset, table, categorical, hash_buckets)
    return dataset


def _infer_features(path: str, table: pa.Table, taken: Sequence[str]) -> list[str]:
    """Every column not taken, refusing string columns; the choice is named in a warning."""
    names = [name for name in table.column_names if name not in taken]
    strings = [name for name in names if not _is_numeric_type(table[name].type)]
    if strings:
        raise ValueError(
            f"{path}: column(s) {strings} are not numeric ({strings[0]!r} has type "
            f"{table[strings[0]].type}{_first_non_number(table[strings[0]])}); list them in "
            "`categorical` (hashed to "
            "embedding ids) or give the numeric `features` explicitly"
        )
    warnings.warn(
        f"{path}: no `features` given; using every other column as a numeric feature: {names}",
        stacklevel=3,
    )
    return names


def _with_categorical(
    dataset: Dataset, table: pa.Table, categorical: list[str], buckets: int
) -> Dataset:
    """Numeric columns as weighted ids 1 … D, then one hashed id per categorical column."""
    source, numeric = dataset.meta["source"], dataset.features
    n_rows, width = numeric.shape
    offsets = 1 + width + np.arange(len(categorical)) * (buckets + 1)
    hashed = np.stack(
        [hashed_ids(table[name], buckets, source=source, name=name) for name in categorical], 1
    )
    numeric_ids = np.broadcast_to(np.arange(1, width + 1), (n_rows, width))
    ids = np.concatenate([numeric_ids, hashed + offsets], axis=1).astype(np.int64)
    values = torch.cat([numeric, torch.ones(n_rows, len(categorical))], dim=1)
    return dataclasses.replace(
        dataset,
        features=torch.from_numpy(ids),
        feature_values=values if width else None,
        feature_names=[*dataset.feature_names, *categorical],
        num_embeddings=1 + width + len(categorical) * (buckets + 1),
        meta=dataset.meta | {"hash_buckets": buckets},
    )


def _read(path: str, *, string_columns: Sequence[str] = ()) -> pa.Table:
    if path.lower().endswith(PARQUET_SUFFIXES):
        try:
            return pq.read_table(path)
        except (pa.ArrowException, OSError) as error:
            raise ValueError(f"{path}: not a readable Parquet file ({error})") from error
    sep = "\t" if path.lower().endswith(".tsv") else ","
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in string_columns}, strings_can_be_null=True
    )
    try:
        table = pacsv.read_csv(
            path, parse_options=pacsv.ParseOptions(delimiter=sep), convert_options=convert
        )
        table.column_names  # noqa: B018 (decodes the header: raises on invalid UTF-8)
        return table
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        if "Empty CSV file" in str(error):
            raise ValueError(f"{path}: no data rows (a header line at most)") from error
        with open(path, encoding="utf-8", errors="replace") as lines:
            n_columns = len(lines.readline().split(sep))

        def problem_in_line(line: str) -> str | None:
            found = len(line.split(sep))
            return None if found == n_columns else f"expected {n_columns} fields, got {found}"

        raise_located(path, problem_in_line, error, skip_lines=1, csv=True)


def _check_columns(path: str, table: pa.Table, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in table.column_names]
    if missing:
        where = path if path.lower().endswith(PARQUET_SUFFIXES) else f"{path}:1"  # the header
        raise ValueError(f"{where}: no column(s) {missing}; columns are {table.column_names}")


def _is_numeric_type(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    )


def _numeric(path: str, table: pa.Table, name: str) -> np.ndarray:
    column = table[name]
    if not _is_numeric_type(column.type):
        raise ValueError(
            f"{path}: feature column {name!r} is not numeric (type {column.type})"
            f"{_first_non_number(column)}; list it in `categorical` to hash it into embedding ids"
        )
    # unsafe: round integers above 2**24 (2**53) instead of refusing them
    values = pc.cast(column, pa.float64(), safe=False)
    return values.to_numpy(zero_copy_only=False).astype(np.float32)


def _first_non_number(column: pa.ChunkedArray) -> str:
    values = column.to_pylist()
    bad = (i for i, v in enumerate(values) if v is not None and not is_number(str(v)))
    row = next(bad, None)
    return "" if row is None else f": value {values[row]!r} in row {row} (0-based data row)"


def _label_tensor(path: str, column: pa.ChunkedArray) -> torch.Tensor:
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(
            f"{path}: label column has {column.null_count} missing value(s) (empty, NA or NaN), "
            f"first in row {row} (0-based data row)"
        )
    if pa.types.is_integer(column.type):
        return torch.from_numpy(column.to_numpy().astype(np.int64))
    if pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
        labels = column.to_numpy(zero_copy_only=False).astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(labels))
        if len(bad):
            raise ValueError(
                f"{path}: label {labels[bad[0]]} in row {bad[0]} (0-based data row) is not "
                f"finite; {len(bad)} such row(s)"
            )
        return torch.from_numpy(labels)
    raise ValueError(
        f"{path}: label column must be numeric, got type {column.type}{_first_non_number(column)}"
    )


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
