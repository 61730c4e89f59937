"""Cached teacher scores: Parquet shards with a fingerprint, served by example id.

Offline distillation then costs no teacher forward passes (US 2023/0252281 ¶0043, "stored
predictions").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from distill._extras import require
from distill._io import atomic_path
from distill._progress import ProgressBar
from distill._validation import check_positive_int
from distill.data.dataset import Dataset
from distill.teachers._common import IdIndex

if TYPE_CHECKING:
    import pyarrow as pa

FINGERPRINT_KEY = b"distill.fingerprint"
SHARD_PATTERN = re.compile(r"scores-(\d{5})-of-(\d{5})\.parquet")


def fingerprint_tensors(named_tensors: Iterable[tuple[str, torch.Tensor | None]]) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of each tensor, in the given order."""
    digest = hashlib.sha256()
    for name, tensor in named_tensors:
        if tensor is None:
            digest.update(f"{name}|None|".encode())
            continue
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1)  # a 0-d tensor cannot be viewed
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def fingerprint_dataset(dataset: Dataset) -> str:
    """SHA-256 of what a teacher sees: ``features``, ``feature_values`` and ``ids``.

    Labels, groups and extras are left out: changing them does not make cached scores stale.

    Example:
        >>> fingerprint_dataset(ds) == fingerprint_dataset(ds.subset(torch.arange(len(ds))))
        True
    """
    return fingerprint_tensors(
        [
            ("features", dataset.features),
            ("feature_values", dataset.feature_values),
            ("ids", dataset.ids),
        ]
    )


def fingerprint_content(ids: torch.Tensor, logits: torch.Tensor) -> str:
    """SHA-256 of one shard's rows: its ids (int64) and logits (float32), in file order."""
    return fingerprint_tensors([("id", ids.to(torch.int64)), ("logits", logits.float())])


def score(
    teacher: Any,
    dataset: Dataset,
    path: str | os.PathLike,
    *,
    batch_size: int = 4096,
    rank: int = 0,
    world_size: int = 1,
) -> Path:
    """Write the teacher's raw logits for this rank's rows to a fingerprinted Parquet shard.

    Rank r scores rows ``r, r + W, r + 2W, …`` and writes ``path/scores-<r>-of-<W>.parquet``
    atomically (temp file + rename). Columns: ``id`` (int64) and ``logits`` (float32, or a
    fixed-size list of C float32 for ``(N, C)`` logits). The schema metadata holds the
    fingerprint: teacher weights hash, dataset hash, row count, dtype, logit shape, shard, and
    the SHA-256 of the shard's own ids and logits (``content``), so an edited shard is caught.

    Args:
        teacher: has ``predict(features, ids)`` and ``fingerprint()``.
        dataset: the rows to score.
        path: the cache directory (created if missing).
        batch_size: rows per teacher call.
        rank, world_size: this DDP process and the number of processes.

    Returns:
        The shard file written.

    Raises:
        TypeError: a teacher without ``fingerprint()``.
        ValueError: bad ``batch_size``/``rank``/``world_size``.

    Reference: US 2023/0252281 ¶0043 ("stored predictions"); docs/teachers.md; docs/guarantees.md
    (what is checked).

    Example:
        >>> score(ModuleTeacher(model), ds, "runs/demo/scores")  # doctest: +SKIP
    """
    check_positive_int("batch_size", batch_size)
    check_positive_int("world_size", world_size)
    check_positive_int("rank", rank, minimum=0)
    if rank >= world_size:
        raise ValueError(f"`rank` must be < world_size ({world_size}), got {rank}")
    if not callable(getattr(teacher, "fingerprint", None)):
        raise TypeError(f"`teacher` ({type(teacher).__name__}) needs a fingerprint() method")
    rows = torch.arange(rank, len(dataset), world_size)
    logits = _predict_rows(teacher, dataset, rows, batch_size, progress=rank == 0)
    fingerprint = {
        "teacher": teacher.fingerprint(),
        "dataset": fingerprint_dataset(dataset),
        "rows": len(dataset),
        "dtype": "float32",
        "shape": list(logits.shape[1:]),
        "rank": rank,
        "world_size": world_size,
    }
    pa = require("pyarrow", extra="data")
    pq = require("pyarrow.parquet", extra="data")
    ids = dataset.ids[rows]
    fingerprint["content"] = fingerprint_content(ids, logits)
    table = pa.table({"id": ids.numpy(), "logits": _logits_array(logits)})
    table = table.replace_schema_metadata({FINGERPRINT_KEY: json.dumps(fingerprint).encode()})
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"scores-{rank:05d}-of-{world_size:05d}.parquet"
    with atomic_path(target) as temp:
        pq.write_table(table, temp)
    return target


def predict_dataset(teacher: Any, dataset: Dataset, *, batch_size: int = 4096) -> torch.Tensor:
    """The teacher's raw logits for every row of ``dataset``, in row order (float32, CPU).

    Args:
        teacher: has ``predict(features, ids)``.
        dataset: the rows to predict.
        batch_size: rows per teacher call.

    Returns:
        ``(N,)`` or ``(N, C)`` logits.

    Example:
        >>> predict_dataset(ModuleTeacher(nn.Linear(4, 3)), ds).shape  # doctest: +SKIP
        torch.Size([100, 3])
    """
    check_positive_int("batch_size", batch_size)
    return _predict_rows(teacher, dataset, torch.arange(len(dataset)), batch_size)


def _predict_rows(
    teacher: Any, dataset: Dataset, rows: torch.Tensor, batch_size: int, *, progress=False
) -> torch.Tensor:
    chunks = rows.split(batch_size)
    batches = []
    with ProgressBar(len(chunks), "scoring teacher", enabled=None if progress else False) as bar:
        for index, batch in enumerate(chunks, start=1):
            batches.append(_predict(teacher, dataset, batch).float().cpu())
            bar.update(index)
    return torch.cat(batches) if batches else torch.empty(0)


def _predict(teacher: Any, dataset: Dataset, rows: torch.Tensor) -> torch.Tensor:
    features, ids = dataset.features[rows], dataset.ids[rows]
    if dataset.feature_values is None:
        return teacher.predict(features, ids)
    return teacher.predict(features, ids, values=dataset.feature_values[rows])


def _logits_array(logits: torch.Tensor) -> pa.Array:
    pa = require("pyarrow", extra="data")
    values = pa.array(logits.reshape(-1).numpy(), type=pa.float32())
    if logits.ndim == 1:
        return values
    return pa.FixedSizeListArray.from_arrays(values, int(np.prod(logits.shape[1:])))


class StaleCacheError(ValueError):
    """The cached scores were computed for other data (or another teacher)."""


class CachedScores:
    """Teacher logits read back from :func:`score` shards, served by example id.

    The cache is checked when opened: against ``dataset`` (data hash and row count), against
    ``teacher`` (weights hash), and against itself (each shard's content hash, its file name,
    every row exactly once). Scores are never served from a cache that fails a check.

    Args:
        path: the cache directory written by :func:`score` (all shards of one run).
        dataset: the data the scores must belong to.
        teacher: the teacher the scores must come from: an object with ``fingerprint()`` or
            that fingerprint (a hex string).

    Raises:
        FileNotFoundError: no shards in ``path``.
        StaleCacheError: dataset hash, row count or teacher hash differ (both fingerprints
            are named).
        ValueError: an edited shard (content hash), a shard under another shard's name,
            rows covered twice or missing, shards of different runs, or missing shards.

    Reference: US 2023/0252281 ¶0043 ("stored predictions"); docs/guarantees.md.

    Example:
        >>> cached = CachedScores("runs/demo/scores", ds, teacher=teacher)  # doctest: +SKIP
        >>> cached.predict(ds.features[:4], ds.ids[:4])  # no teacher forward pass
    """

    def __init__(self, path: str | os.PathLike, dataset: Dataset, *, teacher: Any) -> None:
        self.path = Path(path)
        shards = _read_shards(self.path)
        expected = {
            "dataset": fingerprint_dataset(dataset),
            "rows": len(dataset),
            "teacher": _teacher_fingerprint(teacher),
        }
        for file, fingerprint, _ in shards:
            _check_fresh(file, fingerprint, expected)
        parts = [_shard_rows(file, fp, table) for file, fp, table in shards]
        ids = torch.cat([ids for ids, _ in parts])
        self._logits = torch.cat([logits for _, logits in parts])
        self._index = IdIndex(ids, source=f"the score cache {self.path} (a stray shard?)")
        if len(ids) != len(dataset):
            raise ValueError(
                f"{self.path}: the shards hold {len(ids)} rows, expected {len(dataset)}"
            )
        self._teacher_fingerprint = expected["teacher"]

    def predict(
        self, features: torch.Tensor, ids: torch.Tensor, *, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The cached logits of these example ids (``features`` and ``values`` are not used)."""
        return self._logits.index_select(0, self._index.rows(ids)).to(ids.device)

    def fingerprint(self) -> str:
        """The fingerprint of the teacher that produced the cache."""
        return self._teacher_fingerprint

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"CachedScores({str(self.path)!r}, rows={len(self)})"


def _read_shards(directory: Path) -> list[tuple[Path, dict, pa.Table]]:
    files = sorted(f for f in directory.glob("scores-*.parquet") if SHARD_PATTERN.fullmatch(f.name))
    if not files:
        raise FileNotFoundError(f"{directory}: no score shards (scores-*-of-*.parquet)")
    pq = require("pyarrow.parquet", extra="data")
    shards = []
    for file in files:
        try:
            table = pq.read_table(file)
        except (OSError, ValueError) as error:  # truncated or not Parquet (ArrowInvalid)
            raise ValueError(
                f"{file}: unreadable score shard ({error}); delete the directory and re-run score()"
            ) from None
        raw = (table.schema.metadata or {}).get(FINGERPRINT_KEY)
        if raw is None:
            raise ValueError(f"{file}: not a distill score file (no fingerprint metadata)")
        shards.append((file, _fingerprint(file, raw), table))
    sizes = {fingerprint["world_size"] for _, fingerprint, _ in shards}
    if len(sizes) > 1:
        raise ValueError(
            f"{directory}: shards of runs with world sizes {sorted(sizes)}; delete the "
            "directory and re-run score()"
        )
    world_size = sizes.pop()
    for file, fingerprint, _ in shards:
        named = SHARD_PATTERN.fullmatch(file.name).groups()
        if tuple(int(n) for n in named) != (fingerprint["rank"], fingerprint["world_size"]):
            raise ValueError(
                f"{file}: holds shard {fingerprint['rank']} of {fingerprint['world_size']} "
                "under another shard's name (a copied or renamed file); delete the directory "
                "and re-run score()"
            )
    missing = sorted(set(range(world_size)) - {fp["rank"] for _, fp, _ in shards})
    if missing:
        raise ValueError(f"{directory}: incomplete cache, shard(s) {missing} of {world_size}")
    return shards


def _fingerprint(file: Path, raw: bytes) -> dict:
    """The shard's fingerprint metadata, with every field :func:`score` writes."""
    try:
        fingerprint = json.loads(raw)
    except ValueError:
        fingerprint = None
    fields = ("teacher", "dataset", "rows", "shape", "rank", "world_size", "content")
    if not isinstance(fingerprint, dict) or not set(fields) <= set(fingerprint):
        raise ValueError(
            f"{file}: damaged fingerprint metadata (needs {', '.join(fields)}); delete the "
            "directory and re-run score()"
        )
    return fingerprint


def _teacher_fingerprint(teacher: Any) -> str:
    if isinstance(teacher, str):
        return teacher
    if not callable(getattr(teacher, "fingerprint", None)):
        raise TypeError(
            f"`teacher` must be a teacher with fingerprint() or its fingerprint str, got "
            f"{type(teacher).__name__}"
        )
    return teacher.fingerprint()


def _shard_rows(file: Path, fingerprint: dict, table: pa.Table) -> tuple[torch.Tensor, ...]:
    """A shard's ids and logits, checked against the content hash written with them."""
    ids = torch.from_numpy(table["id"].to_numpy().astype(np.int64))
    logits = _logits_tensor(fingerprint, table)
    if fingerprint.get("content") != fingerprint_content(ids, logits):
        raise ValueError(
            f"{file}: the ids/logits do not match the content hash written with them (the "
            "file was edited or damaged); delete the directory and re-run score()"
        )
    return ids, logits


def _check_fresh(file: Path, fingerprint: dict, expected: dict) -> None:
    differences = [
        f"{key} {_short(fingerprint[key])} (cache) != {_short(value)} (now)"
        for key, value in expected.items()
        if fingerprint[key] != value
    ]
    if differences:
        raise StaleCacheError(
            f"stale cache {file}: {'; '.join(differences)}; re-run score() to refresh it"
        )


def _short(value: Any) -> str:
    return value[:16] if isinstance(value, str) else str(value)


def _logits_tensor(fingerprint: dict, table: pa.Table) -> torch.Tensor:
    pa = require("pyarrow", extra="data")
    column = table["logits"].combine_chunks()
    if pa.types.is_fixed_size_list(column.type):
        column = column.flatten()
    values = torch.from_numpy(column.to_numpy(zero_copy_only=False).astype(np.float32))
    return values.reshape(-1, *fingerprint["shape"])
