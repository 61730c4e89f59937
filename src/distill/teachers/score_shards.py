"""Teacher scores of streamed shards, written beside them: one score shard per data shard.

``score_shards`` reads each data shard of a :class:`~distill.data.streaming.StreamingTable` in
record batches and writes ``<shard folder>/_scores/<shard name>`` (or ``<scores_dir>/<shard
name>``): the rows' ids and teacher logits in the shard's row order. Memory is bounded by one
record batch plus one shard's logits. Shards are dealt to the ranks round-robin (``torchrun``);
each score shard is written atomically with the teacher's fingerprint and the data shard's
footer digest in its metadata, so a rerun skips finished shards (same data, same teacher) and a
killed run never leaves a half-written one. A table opened with ``scores=[...]`` reads them back
as extras, aligned by shard and row; :func:`check_score_shards` refuses score shards of another
teacher or of other data before they are used. See docs/streaming.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch

from distill._io import atomic_path
from distill._progress import ProgressBar
from distill.data._score_shards import (
    DATA_KEY,
    FINGERPRINT_KEY,
    SCORES_FOLDER,
    footer_digest,
)
from distill.teachers.cache import StaleCacheError, _short


@torch.inference_mode()
def score_shards(
    teacher: Any,
    table: Any,
    *,
    column: str = "teacher_logit",
    rank: int = 0,
    world_size: int = 1,
    progress: bool = False,
) -> list[str]:
    """Write the teacher's logits of every shard of ``table`` dealt to ``rank``.

    Args:
        teacher: has ``predict(features, ids)`` (given ``values=`` for weighted sparse rows, as
            ``distill.teachers.score`` does) and ``fingerprint()``.
        table: the streamed table (local shards).
        column: the logit column written (``column_0`` … for ``(N, C)`` logits).
        rank, world_size: this process's share: shards ``rank``, ``rank + world_size``, ….
        progress: show this rank's shards done (a bar, or a plain line every few seconds).

    Returns:
        The score shards written by this call (skipped ones are not listed).

    Raises:
        PermissionError, ValueError: a shard folder where the score shards cannot be written,
            or a remote one (checked before anything is scored).

    Example:
        >>> written = score_shards(ModuleTeacher(model), StreamingTable("days/", label="y"))
    """
    check_writable(table)
    fingerprint = teacher.fingerprint()
    written = []
    mine = table.shards[rank::world_size]
    with ProgressBar(len(mine), "scoring shards", enabled=None if progress else False) as bar:
        for done, shard in enumerate(mine, start=1):
            target = table.score_file(shard)
            wanted = (shard.num_rows, fingerprint, footer_digest(shard))
            if _stored(target) != wanted:
                _write_scores(teacher, table, shard, target, column, wanted)
                written.append(target)
            bar.update(done, {"shard": Path(shard.path).name, "written": len(written)})
    return written


def _write_scores(teacher, table, shard, target: str, column: str, stamp: tuple) -> None:
    ids, logits = [], []
    for chunk in table.read_shard(shard):
        values = {} if chunk.feature_values is None else {"values": chunk.feature_values}
        logits.append(teacher.predict(chunk.features, chunk.ids, **values).float().cpu())
        ids.append(chunk.ids)
    logits = torch.cat(logits)
    names = [column] if logits.ndim == 1 else [f"{column}_{k}" for k in range(logits.shape[1])]
    values = logits.reshape(len(logits), -1).numpy()
    columns = {"id": torch.cat(ids).numpy()} | {n: values[:, k] for k, n in enumerate(names)}
    _, fingerprint, digest = stamp
    metadata = {FINGERPRINT_KEY: fingerprint, DATA_KEY: digest}
    scores = pa.table(columns).replace_schema_metadata(metadata)
    with atomic_path(target) as temporary:
        pq.write_table(scores, temporary)


def check_writable(table: Any) -> None:
    """The score shards of ``table`` can be written: its ``scores_dir``, else every shard
    folder (local) with its ``_scores`` folder.

    Raises:
        ValueError: without ``scores_dir``, a shard on another filesystem (``s3://``, ...;
            named).
        PermissionError: naming the read-only folder.
    """
    if table.scores_dir is not None:
        _check_folder(table.scores_dir)
        return
    remote = [s.path for s in table.shards if not isinstance(s.filesystem, pafs.LocalFileSystem)]
    if remote:
        raise ValueError(
            f"{remote[0]}: score shards are written beside local shards only; this shard is on "
            f"{type(table.shards[0].filesystem).__name__} (give a local scores folder, "
            "data.scores_dir, or log the scores as a column)"
        )
    for folder in sorted({shard.path.rpartition("/")[0] for shard in table.shards}):
        _check_folder(os.path.join(folder, SCORES_FOLDER))


def _check_folder(scores: str) -> None:
    """``scores`` (or, before it exists, its nearest existing parent) takes new files."""
    target = Path(scores)
    while not target.exists() and target != target.parent:
        target = target.parent
    if not os.access(target, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{target}: the folder is read-only; the teacher's score shards are written to "
            f"{scores} (give a writable scores folder, data.scores_dir, or make it writable)"
        )


def check_score_shards(table: Any, teacher: Any) -> None:
    """Every shard of ``table`` has a complete score shard written by this ``teacher`` for the
    shard as it is now.

    Args:
        table: the streamed table; teacher: an object with ``fingerprint()`` or that
            fingerprint (a hex string).

    Raises:
        FileNotFoundError: a missing or unreadable score shard (data shard and score shard
            named).
        StaleCacheError: a score shard of another teacher, of other data (the data shard's
            footer digest differs) or of another number of rows (both values named).
    """
    expected = teacher if isinstance(teacher, str) else teacher.fingerprint()
    for shard in table.shards:
        path = table.score_file(shard)
        stored = _stored(path)
        if stored is None:
            raise FileNotFoundError(f"{shard.path}: no teacher score shard {path}")
        differences = [
            f"{key} {_short(found)} (shard) != {_short(now)} (now)"
            for key, found, now in zip(
                ("rows", "teacher", "data"),
                stored,
                (shard.num_rows, expected, footer_digest(shard)),
                strict=True,
            )
            if found != now
        ]
        if differences:
            raise StaleCacheError(f"stale score shard {path}: {'; '.join(differences)}")


def _stored(path: str) -> tuple[int, str, str] | None:
    """Rows, teacher fingerprint and data digest of a score shard; None when missing or
    unreadable (writes are atomic, so a readable one is complete)."""
    try:
        metadata = pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return None
    stamps = metadata.metadata or {}
    return (
        metadata.num_rows,
        stamps.get(FINGERPRINT_KEY, b"").decode(),
        stamps.get(DATA_KEY, b"").decode(),
    )
