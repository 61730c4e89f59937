"""Teachers whose logits were computed elsewhere: a score column of the data, or a scores file.

Ads and search pipelines usually log the teacher's score next to the features; these sources
serve such scores by example id, with no teacher forward pass.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from distill._extras import require
from distill.data.dataset import Dataset
from distill.teachers._common import (
    IdIndex,
    TeacherSize,
    bytes_on_disk,
    check_finite_scores,
    existing_file,
    file_sha256,
)
from distill.teachers.cache import fingerprint_tensors

if TYPE_CHECKING:
    import pyarrow as pa

PARQUET_SUFFIXES = (".parquet", ".pq")


def score_columns(column: str | None, columns: Sequence[str] | None) -> list[str]:
    """The score column names from exactly one of ``column`` / ``columns`` (multiclass).

    Raises:
        ValueError: both or neither given, or an empty ``columns``.
    """
    if (column is None) == (columns is None):
        raise ValueError("give exactly one of `column` (one logit) or `columns` (C logits)")
    names = [column] if column is not None else list(columns)
    if not names:
        raise ValueError("`columns` must name at least one column, got []")
    return names


class _StoredScores:
    """Logits ``(n,)`` / ``(n, C)`` served by example id."""

    def __init__(self, ids: torch.Tensor, logits: torch.Tensor, *, source: str, multi: bool):
        self.source = source
        check_finite_scores(logits, ids, source=source)
        self._logits = logits if multi else logits[:, 0]
        self._index = IdIndex(ids, source=source)

    def predict(
        self, features: torch.Tensor, ids: torch.Tensor, *, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The stored logits of these example ids (``features``/``values`` are not used).

        Raises:
            KeyError: an id with no stored score.
        """
        return self._logits.index_select(0, self._index.rows(ids)).to(ids.device)

    def check_ids(self, ids: torch.Tensor, *, where: str) -> None:
        """Require a score for exactly these ids: as many scores as rows, none missing.

        Raises:
            ValueError: a different count (wrong length) or an id without a score.
        """
        if len(ids) != len(self._index):
            raise ValueError(
                f"{self.source}: expected {len(ids)} scores (one per row of {where}), "
                f"found {len(self._index)}"
            )
        try:
            self._index.rows(ids)
        except KeyError as error:
            raise ValueError(f"{error.args[0]} (a row of {where})") from None

    def size(self) -> TeacherSize:
        """No parameters; the bytes of the stored float32 logits."""
        return TeacherSize(params=0, size_bytes=self._logits.numel() * 4)

    def __len__(self) -> int:
        return len(self._index)


class ScoreColumnTeacher(_StoredScores):
    """The teacher logits stored per row in the data's own table (``Dataset.extras``).

    A table read with ``read_table(..., extras=[column])`` keeps the score column out of the
    features; this teacher serves it by example id, over every split given.

    Args:
        datasets: the splits holding the column (e.g. train, valid, test); their ids must be
            distinct.
        column: the logit column (binary, ranking).
        columns: C logit columns, stacked to ``(N, C)`` (multiclass).

    Raises:
        ValueError: both or neither of column/columns, a dataset without the column, NaN/inf
            scores (row and id named), an id in two datasets.

    Example:
        >>> data = read_table("clicks.parquet", label="click", extras=["teacher_logit"])
        >>> teacher = ScoreColumnTeacher(data, column="teacher_logit")
        >>> teacher.predict(data.features[:2], data.ids[:2])  # doctest: +SKIP
    """

    def __init__(
        self,
        datasets: Dataset | Sequence[Dataset],
        *,
        column: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        self.names = score_columns(column, columns)
        datasets = [datasets] if isinstance(datasets, Dataset) else list(datasets)
        parts = [self._stacked(dataset) for dataset in datasets]
        ids = torch.cat([dataset.ids for dataset in datasets])
        source = f"score column(s) {self.names}"
        super().__init__(ids, torch.cat(parts), source=source, multi=columns is not None)

    def _stacked(self, dataset: Dataset) -> torch.Tensor:
        where = dataset.meta.get("source", "the data")
        missing = [name for name in self.names if name not in dataset.extras]
        if missing:
            raise ValueError(
                f"{where}: no score column {missing} among the data's extras "
                f"{sorted(dataset.extras)}; read it with read_table(..., extras={self.names})"
            )
        stacked = [dataset.extras[name].float().reshape(len(dataset), -1) for name in self.names]
        logits = torch.cat(stacked, dim=1)
        check_finite_scores(logits, dataset.ids, source=f"{where}: column(s) {self.names}")
        return logits

    def fingerprint(self) -> str:
        """SHA-256 of the column names, the ids and the scores (sorted by id)."""
        order = self._index.order
        return fingerprint_tensors(
            [
                (json.dumps(self.names), None),
                ("ids", self._index.ids),
                ("logits", self._logits[order]),
            ]
        )

    def __repr__(self) -> str:
        return f"ScoreColumnTeacher({self.names}, rows={len(self)})"


class ScoresFileTeacher(_StoredScores):
    """Teacher logits from a Parquet/CSV/TSV file keyed by example id.

    For data whose format has no room for a score column (LETOR, libsvm): row ``i`` of the
    file gives the logit(s) of the example whose ``Dataset.ids`` equals its ``key`` value.

    Args:
        path: the scores file (``.parquet``/``.pq``, ``.tsv``, else CSV with a header).
        key: the integer id column.
        column: the logit column; ``columns``: C logit columns (multiclass).

    Raises:
        FileNotFoundError: no file.
        ValueError: a missing column (the file's columns listed), a non-integer key, missing
            values, NaN/inf scores (row named), duplicated keys.

    Example:
        >>> teacher = ScoresFileTeacher("scores.parquet", key="id", column="logit")
        >>> teacher.check_ids(train.ids, where="train")  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        key: str,
        column: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        self.path = existing_file(path)
        self.key, self.names = key, score_columns(column, columns)
        self._sha256 = file_sha256(self.path)
        table = _read_scores_table(self.path)
        missing = [name for name in [key, *self.names] if name not in table.column_names]
        if missing:
            raise ValueError(
                f"{self.path}: no column(s) {missing}; the file's columns are {table.column_names}"
            )
        ids = self._key_ids(table[key])
        logits = torch.from_numpy(np.stack([self._floats(table, n) for n in self.names], axis=1))
        super().__init__(ids, logits, source=str(self.path), multi=columns is not None)

    def _key_ids(self, column: pa.ChunkedArray) -> torch.Tensor:
        types = require("pyarrow", extra="data").types
        if not types.is_integer(column.type) or column.null_count:
            raise ValueError(
                f"{self.path}: key column {self.key!r} must hold integer ids without gaps, "
                f"found type {column.type} with {column.null_count} missing"
            )
        return torch.from_numpy(column.to_numpy().astype(np.int64))

    def _floats(self, table: pa.Table, name: str) -> np.ndarray:
        column, types = table[name], require("pyarrow", extra="data").types
        if not (types.is_floating(column.type) or types.is_integer(column.type)):
            raise ValueError(
                f"{self.path}: score column {name!r} must be numeric, found {column.type}"
            )
        return column.to_numpy(zero_copy_only=False).astype(np.float32)

    def fingerprint(self) -> str:
        """SHA-256 of the file's bytes (as read) with the key and score column names."""
        settings = json.dumps([self._sha256, self.key, self.names])
        return hashlib.sha256(settings.encode()).hexdigest()

    def size(self) -> TeacherSize:
        """No parameters; the bytes of the scores file."""
        return TeacherSize(params=0, size_bytes=bytes_on_disk(self.path))

    def __repr__(self) -> str:
        return f"ScoresFileTeacher({str(self.path)!r}, key={self.key!r}, columns={self.names})"


def _read_scores_table(path: Path) -> pa.Table:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return require("pyarrow.parquet", extra="data").read_table(path)
    pa, csv = require("pyarrow", extra="data"), require("pyarrow.csv", extra="data")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        return csv.read_csv(path, parse_options=csv.ParseOptions(delimiter=delimiter))
    except pa.ArrowInvalid as error:
        raise ValueError(f"{path}: not a readable scores table: {error}") from None
