"""Where the score shard of a data shard lives, and reading it back aligned with the rows."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCORES_FOLDER = "_scores"
"""Sub-folder of a shard's folder holding its score shard (``_``: skipped as data)."""
FINGERPRINT_KEY = b"distill.teacher"
"""Parquet metadata key of the teacher fingerprint a score shard was written by."""
DATA_KEY = b"distill.data"
"""Parquet metadata key of the :func:`footer_digest` of the data shard it scores."""


def score_path(shard_path: str, scores_dir: str | None = None) -> str:
    """The score shard of a data shard: ``<folder>/_scores/<name>``, or ``<scores_dir>/<name>``."""
    folder, _, name = shard_path.rpartition("/")
    return f"{folder}/{SCORES_FOLDER}/{name}" if scores_dir is None else f"{scores_dir}/{name}"


def footer_digest(shard: Any) -> str:
    """SHA-256 of a data shard's Parquet footer (schema, row groups, sizes and statistics of
    every column chunk): it changes when the shard is rewritten with other rows or values, and
    not when the file is copied. ``shard`` is a :class:`~distill.data._shards.Shard`; an
    unreadable file raises ValueError naming it."""
    with shard.named_errors(), shard.filesystem.open_input_file(shard.path) as file:
        size = file.size()
        file.seek(size - 8)
        length = int.from_bytes(file.read(4), "little")  # footer length, then b"PAR1"
        file.seek(size - 8 - length)
        return hashlib.sha256(file.read(length)).hexdigest()


def read_scores(shard_path: str, path: str, num_rows: int, names: list[str]) -> pa.Table:
    """The ``id`` and ``names`` columns of the score shard ``path`` of a data shard (its rows
    checked).

    Raises:
        ValueError: no readable score shard, a missing column, or a row count that differs
            from the data shard's.
    """
    try:
        scores = pq.read_table(path, columns=["id", *names])
    except (OSError, pa.ArrowException) as error:
        raise ValueError(
            f"{shard_path}: no readable score shard {path} ({error}); score the shards first"
        ) from error
    if scores.num_rows != num_rows:
        raise ValueError(
            f"{path}: {scores.num_rows} score rows for the {num_rows} rows of {shard_path}; "
            "score the shards again"
        )
    return scores


def check_aligned(path: str, score_ids: np.ndarray, ids: np.ndarray) -> None:
    """The score rows (of the score shard ``path``) hold the same ids as the data rows, in
    order."""
    if not np.array_equal(score_ids, ids):
        row = int(np.flatnonzero(score_ids != ids)[0])
        raise ValueError(
            f"{path}: id {int(score_ids[row])} where the data shard has id "
            f"{int(ids[row])}; score the shards again"
        )
