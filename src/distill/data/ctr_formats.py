"""Sparse CTR formats: libsvm/libFM rows (iPinYou and similar) and Criteo TSV/CSV."""

from __future__ import annotations

import math
import os
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import torch

from distill._validation import check_positive_int
from distill.data._checks import (
    Impute,
    check_file,
    check_label_range,
    finite_features,
    is_number,
    raise_located,
)
from distill.data._hashing import hashed_ids
from distill.data._svmlight import ZeroBased, load_svmlight
from distill.data.dataset import Dataset

CRITEO_INT_FIELDS = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CAT_FIELDS = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS = ("label", *CRITEO_INT_FIELDS, *CRITEO_CAT_FIELDS)
LIBSVM_MAX_INDEX = 2**24
"""Default bound on libsvm feature indices: 16.7 M embedding rows (iPinYou has 0.94 M)."""
INT_FIELD_SIZE = 2048  # local ids of one integer field: 0 missing, 1-11 small, 12+ log buckets
_SMALL_MIN = -8  # integer values <= 2 keep their own bucket, clipped below at -8


def read_libsvm(
    path: str | os.PathLike,
    *,
    zero_based: ZeroBased = "auto",
    n_features: int | None = None,
    max_index: int = LIBSVM_MAX_INDEX,
    label_range: tuple[float, float] | None = (0.0, 1.0),
    allow_nan: bool = False,
    impute: Impute = None,
) -> Dataset:
    """Read libsvm/libFM CTR rows ``<click> <index>:<value> ...`` into padded global ids.

    Row i's non-zero features become ``features[i, :k]`` (int64 global ids, 0-padded to the
    longest row) with their values in ``feature_values`` (None when every value is 1, i.e.
    one-hot data). Global id = column + 1 (id 0 is padding), where column is the file index
    for 0-based files and index − 1 for 1-based ones.

    Args:
        path: the libsvm file (parsed by scikit-learn's ``load_svmlight_file``).
        zero_based: index base: True, False or "auto" (1-based unless index 0 occurs).
        n_features: size of the index space (align a test file with its train file).
        max_index: largest feature index accepted (each index is an embedding row).
        label_range: declared label range, checked if not None (default clicks in [0, 1]).
        allow_nan: keep NaN/inf values; impute: replace them by a number or column mean.

    Returns:
        Dataset with int64 ``features`` ``(N, F_max)``, ``num_embeddings = n_features + 1``,
        float32 labels and ``meta["task"] == "binary"``.

    Raises:
        ValueError: empty file, malformed line, a feature index above ``max_index`` or a
            NaN/inf label (``file:line: token``), NaN/inf values, labels outside
            ``label_range``.

    Reference: Chang & Lin, LIBSVM data format; Rendle (2012), libFM; Zhang et al. (2014),
    iPinYou RTB dataset.

    Example:
        >>> ds = read_libsvm("ipinyou.txt")
        >>> ds.features.dtype, ds.num_embeddings
        (torch.int64, 937671)
    """
    path = os.fspath(path)
    check_positive_int("max_index", max_index)
    rows = load_svmlight(path, zero_based=zero_based, n_features=n_features, max_index=max_index)
    matrix = rows.matrix
    counts = np.diff(matrix.indptr)
    width = max(int(counts.max()), 1)
    row_of = np.repeat(np.arange(matrix.shape[0]), counts)
    slot = np.arange(matrix.nnz) - matrix.indptr[row_of]
    ids = np.zeros((matrix.shape[0], width), dtype=np.int64)
    values = np.zeros((matrix.shape[0], width), dtype=np.float32)
    ids[row_of, slot] = matrix.indices + 1
    values[row_of, slot] = matrix.data
    values = finite_features(
        torch.from_numpy(values), source=path, allow_nan=allow_nan, impute=impute, svmlight=True
    )
    labels = torch.from_numpy(rows.labels.astype(np.float32))
    check_label_range(labels, label_range, source=path)
    return Dataset(
        features=torch.from_numpy(ids),
        labels=labels,
        feature_values=None if bool((values[ids != 0] == 1).all()) else values,
        feature_names=[f"slot{k}" for k in range(1, width + 1)],
        num_embeddings=matrix.shape[1] + 1,
        meta={"task": "binary", "source": path, "index_base": rows.index_base},
    )


def read_criteo(
    path: str | os.PathLike,
    *,
    sep: Literal["\t", ","] | None = None,
    header: bool | Literal["auto"] = "auto",
    hash_buckets: int = 2**17,
    label_range: tuple[float, float] | None = (0.0, 1.0),
) -> Dataset:
    """Read Criteo-style rows (label, I1–I13 integers, C1–C26 hashed categoricals) to global ids.

    Every field gets its own id range (offsets), so ``features`` is int64 ``(N, 39)``:

    - integer field value x (the common Criteo recipe): missing → its own bucket; x ≤ 2 → one
      bucket per value (clipped below at −8); x > 2 → bucket ``floor(ln(x)²)``;
    - categorical field: missing → its own bucket, else ``1 + crc32(value) % hash_buckets``.

    Global id = 1 + field offset + local bucket (id 0 stays free for padding).

    Args:
        path: tab- or comma-separated file, with or without a header line.
        sep: the separator; None detects tab vs comma from the first line.
        header: whether the first line is a header; "auto": when its first field is not a number.
        hash_buckets: buckets per categorical field.
        label_range: declared click range, checked if not None.

    Returns:
        Dataset with ``feature_names`` I1…I13, C1…C26, float32 clicks, ``num_embeddings`` and
        ``meta["task"] == "binary"``.

    Raises:
        ValueError: empty file, wrong column count or a non-integer in I1–I13
            (``file:line: token``), labels outside ``label_range``.

    Reference: Criteo Display Advertising Challenge (Kaggle, 2014); the ``floor(ln(x)²)``
    discretisation is from the winning field-aware FM solution (Juan et al. 2016, "Field-aware
    Factorization Machines for CTR Prediction").

    Example:
        >>> ds = read_criteo("day_0_sample.tsv", hash_buckets=100_000)
        >>> ds.features.shape[1]
        39
    """
    path = check_file(path)
    check_positive_int("hash_buckets", hash_buckets)
    with open(path, encoding="utf-8", errors="replace") as lines:
        first_line = lines.readline().rstrip("\r\n")
    sep = sep or ("\t" if "\t" in first_line else ",")
    if header == "auto":
        header = not is_number(first_line.split(sep)[0])
    table = _read_criteo_table(path, sep=sep, skip_rows=int(header))
    labels = torch.from_numpy(table["label"].to_numpy().astype(np.float32))
    check_label_range(labels, label_range, source=path)
    columns = [_int_buckets(table[name]) for name in CRITEO_INT_FIELDS]
    columns += [
        hashed_ids(table[name], hash_buckets, source=path, name=name) for name in CRITEO_CAT_FIELDS
    ]
    sizes = [INT_FIELD_SIZE] * len(CRITEO_INT_FIELDS) + [hash_buckets + 1] * len(CRITEO_CAT_FIELDS)
    offsets = np.cumsum([1, *sizes[:-1]])
    features = np.stack(columns, axis=1) + offsets
    return Dataset(
        features=torch.from_numpy(features),
        labels=labels,
        feature_names=list(CRITEO_INT_FIELDS + CRITEO_CAT_FIELDS),
        num_embeddings=1 + sum(sizes),
        meta={"task": "binary", "source": path, "hash_buckets": hash_buckets},
    )


def _read_criteo_table(path: str, *, sep: str, skip_rows: int) -> pa.Table:
    types = {"label": pa.float64()}
    types |= {name: pa.float64() for name in CRITEO_INT_FIELDS}  # "260.0" is an integer too
    types |= {name: pa.string() for name in CRITEO_CAT_FIELDS}
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=list(CRITEO_COLUMNS), skip_rows=skip_rows),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=[""], strings_can_be_null=True
            ),  # only an empty field is missing: "nan" or "NA" in I1-I13 is an error
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise_located(path, _criteo_line_checker(sep), error, skip_lines=skip_rows, csv=True)
    if table.num_rows == 0:
        raise ValueError(f"{path}: no data rows")
    labels_ok = not table["label"].null_count and _finite(table["label"])
    if not labels_ok or not all(_integral(table[name]) for name in CRITEO_INT_FIELDS):
        raise_located(
            path,
            _criteo_line_checker(sep),
            ValueError("a missing or NaN/inf label, or a non-integral value in I1-I13"),
            skip_lines=skip_rows,
        )
    return table


def _integral(column: pa.ChunkedArray) -> bool:
    values = pc.drop_null(column).to_numpy()
    return bool(np.isfinite(values).all() and (values == np.floor(values)).all())


def _finite(column: pa.ChunkedArray) -> bool:
    return bool(np.isfinite(column.to_numpy()).all())


def _criteo_line_checker(sep: str):
    def problem_in_line(line: str) -> str | None:
        fields = line.split(sep)
        if len(fields) != len(CRITEO_COLUMNS):
            return f"expected {len(CRITEO_COLUMNS)} fields separated by {sep!r}, got {len(fields)}"
        if not is_number(fields[0]) or not math.isfinite(float(fields[0])):
            return f"label {fields[0]!r} is not a finite number"
        for name, token in zip(CRITEO_INT_FIELDS, fields[1:14], strict=True):
            if token and not _is_integral(token):
                return f"field {name} value {token!r} is not an integer"
        return None

    return problem_in_line


def _is_integral(token: str) -> bool:
    """Whether an I1-I13 field is an integer: "260" and "260.0" are; "2.5", "nan" are not."""
    if not is_number(token):
        return False
    value = float(token)
    return math.isfinite(value) and value == math.floor(value)


def _int_buckets(column: pa.ChunkedArray) -> np.ndarray:
    missing = column.is_null().to_numpy(zero_copy_only=False)
    value = pc.fill_null(column, 0).to_numpy().astype(np.float64)
    small = np.clip(value, _SMALL_MIN, 2) - _SMALL_MIN + 1
    log_bucket = np.floor(np.log(np.maximum(value, 3.0)) ** 2)
    large = np.minimum(12 + log_bucket, INT_FIELD_SIZE - 1)
    local = np.where(value > 2, large, small).astype(np.int64)
    local[missing] = 0
    return local
