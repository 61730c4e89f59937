"""Finding and opening the Parquet shards of a streamed table: paths, footers, schemas.

A folder (every ``*.parquet``/``*.pq`` below it, sorted; ``.``/``_`` names skipped), a glob, a
file, a list of them, or any URI ``pyarrow.fs`` understands. See docs/streaming.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from distill.data.sparse_rows import METADATA_KEY
from distill.data.table import PARQUET_SUFFIXES


@dataclasses.dataclass(frozen=True)
class Shard:
    """One Parquet file of a streamed table: its path, filesystem, rows, first row id and its
    footer's ``distill.libsvm`` entry (libsvm-layout shards; else None)."""

    path: str
    filesystem: pafs.FileSystem
    num_rows: int
    first_id: int
    footer: bytes | None = None

    def open(self) -> pq.ParquetFile:
        """The file's reader; a corrupt file raises ValueError naming it."""
        with self.named_errors():
            return pq.ParquetFile(self.filesystem.open_input_file(self.path))

    @contextlib.contextmanager
    def named_errors(self) -> Iterator[None]:
        """Turn pyarrow's errors of reading this file (a corrupt footer or page: ``OSError``
        or ``ArrowException``) into a ValueError naming it."""
        try:
            yield
        except (pa.ArrowException, OSError) as error:
            raise ValueError(f"{self.path}: not a readable Parquet file ({error})") from error


def open_shards(source) -> tuple[list[Shard], pa.Schema]:
    """The shards of ``source`` (footers read, schemas compared) and their common schema."""
    paths, filesystem = _shard_paths(source)
    shards, schema, first_id = [], None, 0
    for path in paths:
        shard = Shard(path, filesystem, 0, first_id)
        reader = shard.open()
        if schema is None:
            schema = reader.schema_arrow
        elif not reader.schema_arrow.equals(schema):
            raise ValueError(_schema_difference(path, reader.schema_arrow, paths[0], schema))
        rows, key_values = reader.metadata.num_rows, reader.metadata.metadata or {}
        shards.append(
            dataclasses.replace(shard, num_rows=rows, footer=key_values.get(METADATA_KEY))
        )
        first_id += rows
    if first_id == 0:
        raise ValueError(f"{_describe(source)}: the shards hold no rows")
    return shards, schema


def _shard_paths(source) -> tuple[list[str], pafs.FileSystem]:
    if isinstance(source, (list, tuple)):
        found = [_shard_paths(item) for item in source]
        if not found:
            raise ValueError("`source`: an empty list of shards")
        return [path for paths, _ in found for path in paths], found[0][1]
    text = os.fspath(source)
    if any(char in text for char in "*?[") and "://" not in text:
        paths = sorted(glob.glob(text, recursive=True))
        if not paths:
            raise ValueError(f"{text}: the glob matches no file")
        return paths, pafs.LocalFileSystem()
    filesystem, path = pafs.FileSystem.from_uri(text) if "://" in text else _local(text)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{text}: no such file or folder")
    if info.type == pafs.FileType.File:
        return [path], filesystem
    selector = pafs.FileSelector(path, recursive=True)
    paths = sorted(
        item.path
        for item in filesystem.get_file_info(selector)
        if item.type == pafs.FileType.File
        and item.path.lower().endswith(PARQUET_SUFFIXES)
        and not _hidden(item.path[len(path) :])  # temporary files, markers, score shards
    )
    if not paths:
        raise ValueError(f"{text}: the folder holds no Parquet shard (*.parquet, *.pq)")
    return paths, filesystem


def _hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _local(text: str) -> tuple[pafs.FileSystem, str]:
    return pafs.LocalFileSystem(), os.path.abspath(text)


def _describe(source) -> str:
    return ", ".join(map(str, source)) if isinstance(source, (list, tuple)) else str(source)


def _schema_difference(path: str, found: pa.Schema, first: str, expected: pa.Schema) -> str:
    names, expected_names = set(found.names), set(expected.names)
    retyped = [
        f"{name} ({expected.field(name).type} -> {found.field(name).type})"
        for name in expected.names
        if name in names and found.field(name).type != expected.field(name).type
    ]
    return (
        f"{path}: schema differs from the first shard {first}: missing column(s) "
        f"{sorted(expected_names - names)}, extra column(s) {sorted(names - expected_names)}, "
        f"other type(s) {retyped}; expected columns {expected.names}"
    )


def rank_spans(
    units: list[int], order: np.ndarray, rank: int, world_size: int
) -> list[tuple[int, int, int]]:
    """This rank's part of an epoch: ``(shard position, first unit, end unit)`` spans.

    The shards' units (rows, or groups) are laid end to end in ``order``; rank ``r`` takes
    units ``⌊r·U/W⌋`` to ``⌊(r+1)·U/W⌋`` of that sequence: whole shards, and at most one
    shard cut by unit ranges at each end. Every unit goes to exactly one rank; shares differ
    by at most one unit.

    Example:
        >>> rank_spans([5, 3, 4], np.array([2, 0, 1]), 1, 2)
        [(0, 2, 5), (1, 0, 3)]
    """
    total = sum(units)
    low, high = rank * total // world_size, (rank + 1) * total // world_size
    spans, start = [], 0
    for position in order:
        end = start + units[position]
        first, last = max(low, start), min(high, end)
        if first < last:
            spans.append((int(position), first - start, last - start))
        start = end
    return spans
