"""Teacher scores of streamed shards, written beside them: one score shard per data shard.

``score_shards`` reads each data shard of a :class:`~distill.data.streaming.StreamingTable` in
record batches and writes ``<shard folder>/_scores/<shard name>``: the rows' ids and teacher
logits in the shard's row order. Memory is bounded by one record batch plus one shard's
logits. Shards are dealt to the ranks round-robin (``torchrun``); each score shard is written
atomically with the teacher's fingerprint in its metadata, so a rerun skips finished shards
(same rows, same teacher) and a killed run never leaves a half-written one. A table opened
with ``scores=[...]`` reads them back as extras, aligned by shard and row. See
docs/streaming.md.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from distill._io import atomic_path
from distill.data._score_shards import FINGERPRINT_KEY, score_path


@torch.inference_mode()
def score_shards(
    teacher: Any, table: Any, *, column: str = "teacher_logit", rank: int = 0, world_size: int = 1
) -> list[str]:
    """Write the teacher's logits of every shard of ``table`` dealt to ``rank``.

    Args:
        teacher: has ``predict(features, ids)`` (given ``values=`` for weighted sparse rows, as
            ``distill.teachers.score`` does) and ``fingerprint()``.
        table: the streamed table (local shards).
        column: the logit column written (``column_0`` … for ``(N, C)`` logits).
        rank, world_size: this process's share: shards ``rank``, ``rank + world_size``, ….

    Returns:
        The score shards written by this call (skipped ones are not listed).

    Example:
        >>> written = score_shards(ModuleTeacher(model), StreamingTable("days/", label="y"))
    """
    fingerprint = teacher.fingerprint()
    written = []
    for shard in table.shards[rank::world_size]:
        target = score_path(shard.path)
        if _finished(target, shard.num_rows, fingerprint):
            continue
        ids, logits = [], []
        for chunk in table.read_shard(shard):
            values = {} if chunk.feature_values is None else {"values": chunk.feature_values}
            logits.append(teacher.predict(chunk.features, chunk.ids, **values).float().cpu())
            ids.append(chunk.ids)
        logits = torch.cat(logits)
        names = [column] if logits.ndim == 1 else [f"{column}_{k}" for k in range(logits.shape[1])]
        values = logits.reshape(len(logits), -1).numpy()
        columns = {"id": torch.cat(ids).numpy()} | {n: values[:, k] for k, n in enumerate(names)}
        scores = pa.table(columns).replace_schema_metadata({FINGERPRINT_KEY: fingerprint})
        with atomic_path(target) as temporary:
            pq.write_table(scores, temporary)
        written.append(target)
    return written


def _finished(path: str, rows: int, fingerprint: str) -> bool:
    """A complete score shard of these rows by this teacher (atomic writes: no partial ones)."""
    try:
        metadata = pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return False
    stored = (metadata.metadata or {}).get(FINGERPRINT_KEY, b"").decode()
    return metadata.num_rows == rows and stored == fingerprint
