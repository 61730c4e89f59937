"""Tables larger than memory: Parquet shards read in record batches through a shuffle buffer.

A :class:`StreamingTable` opens a folder, glob or list of Parquet shards (local paths or any
URI ``pyarrow.fs`` understands), checks every shard's footer and schema up front, and yields
training chunks of at most ``batch_size`` rows without ever holding more than about
``shuffle_buffer`` rows. Rows become the same tensors as :func:`~distill.data.read_table`
(same hashed categorical ids), chunk by chunk. See docs/streaming.md.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import torch

from distill._validation import check_positive_int
from distill.data._chunking import (
    concat_datasets,
    even_chunk_sizes,
    full_chunk_sizes,
    stream_chunks,
)
from distill.data._heap import fix_mmap_threshold
from distill.data._score_shards import check_aligned, read_scores, score_path
from distill.data._shards import Shard, open_shards, rank_spans
from distill.data.dataset import Dataset
from distill.data.sparse_rows import (
    SparseLayout,
    is_sparse_schema,
    layout_of,
    shard_statistics,
    sparse_dataset,
)
from distill.data.table import table_dataset

__all__ = ["READ_ROWS", "StreamingTable", "concat_datasets"]

READ_ROWS = 16_384
"""Rows per record batch read from a shard."""


class StreamingTable:
    """Parquet shards read lazily in record batches, with the column mapping of ``read_table``.

    Args:
        source: a folder (every ``*.parquet``/``*.pq`` below it, sorted), a glob pattern, a
            file, or a sequence of files; ``file://`` and other ``pyarrow.fs`` URIs work.
        features, label, group, id, categorical, hash_buckets, extras, allow_nan, impute: as
            :func:`~distill.data.read_table`; ``features`` None takes every other column (all
            must be numeric). Groups must be integers, and a group's rows must be contiguous
            inside one shard.
        task: ``"binary"``, ``"classification"`` or ``"ranking"`` (labels are typed per chunk:
            float32 for binary/ranking, int64 for classification).
        shuffle_buffer: rows held for shuffling (the memory bound of training reads).
        scores: columns of the shards' score shards (``<folder>/_scores/<name>``, written by
            ``distill.teachers.score_shards``) added to every chunk's extras, aligned by row.
        scores_dir: a local folder holding the score shards instead (``<scores_dir>/<name>``;
            for read-only or remote shards); shard file names must then be unique.
        layout: for libsvm-layout shards (list columns ``index``/``value``, written by
            ``distill convert --format libsvm``; detected from the schema, no ``features``):
            read with another table's ``sparse_layout`` (a valid/test split read like its
            train split); None: the layout of these shards' footers.

    Raises:
        ValueError: an empty glob or folder, a corrupt shard (file named), a shard whose schema
            differs from the first one's (file named, columns listed), an unknown column, a
            non-integer group column, a group split across shards or not contiguous in its shard,
            a non-numeric ``impute``, libsvm-layout shards with ``features`` or ``categorical``
            or that do not fit ``layout``, two shards of one name with ``scores_dir``.

    Example:
        >>> table = StreamingTable("days/*.parquet", label="click", features=["I1"],
        ...                        categorical=["C1"], task="binary")
        >>> for chunk in table.iter_chunks(batch_size=4096, seed=0, epoch=0):
        ...     ...
    """

    def __init__(
        self,
        source: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        label: str,
        features: Sequence[str] | None = None,
        group: str | None = None,
        id: str | None = None,
        categorical: Sequence[str] = (),
        hash_buckets: int = 2**17,
        extras: Sequence[str] = (),
        allow_nan: bool = False,
        impute: float | str | None = None,
        task: str = "binary",
        shuffle_buffer: int = 100_000,
        scores: Sequence[str] = (),
        layout: SparseLayout | None = None,
        scores_dir: str | os.PathLike | None = None,
    ) -> None:
        self.shuffle_buffer = check_positive_int("shuffle_buffer", shuffle_buffer)
        fix_mmap_threshold()  # glibc: per-batch arrays go back to the system when freed
        check_positive_int("hash_buckets", hash_buckets)
        if task not in ("binary", "classification", "ranking"):
            raise ValueError(
                f"`task` must be 'binary', 'classification' or 'ranking', got {task!r}"
            )
        if isinstance(impute, str):
            raise ValueError(
                f"`impute` of a streamed table must be a number (each chunk is read alone, so "
                f"a column statistic is not known), got {impute!r}"
            )
        self.task = task
        self.scores = list(scores)
        self.shards, schema = open_shards(source)
        self.scores_dir = None if scores_dir is None else _scores_dir(self.shards, scores_dir)
        mapped = [name for name in (label, group, id, *extras) if name is not None]
        missing = [n for n in [*mapped, *categorical, *(features or [])] if n not in schema.names]
        if missing:
            raise ValueError(
                f"{self.shards[0].path}: no column(s) {missing}; columns are {schema.names}"
            )
        self.sparse_layout = _sparse_layout(self.shards, schema, features, categorical, layout)
        if self.sparse_layout is not None:
            features = []
        elif features is None:
            features = [n for n in schema.names if n not in mapped and n not in categorical]
        if group is not None and not pa.types.is_integer(schema.field(group).type):
            raise ValueError(
                f"{self.shards[0].path}: a streamed group column must hold integers, "
                f"{group!r} has type {schema.field(group).type}"
            )
        self.columns = dict(
            features=list(features),
            label=label,
            group=group,
            id=id,
            categorical=list(categorical),
            hash_buckets=hash_buckets,
            allow_nan=allow_nan,
            impute=impute,
            extras=list(extras),
        )
        self.num_rows = sum(shard.num_rows for shard in self.shards)
        self.shard_units = [shard.num_rows for shard in self.shards]  # shuffling units per shard
        if group is not None:
            self.shard_units = _check_groups(self.shards, group)
        self.num_groups = None if group is None else sum(self.shard_units)
        self.view: str | list[str | int] | None = None
        self.source = str(source)
        self._describe_columns()

    def _describe_columns(self) -> None:
        first = self.head()
        self.feature_names, self.num_embeddings = first.feature_names, first.num_embeddings
        self.is_sparse, self.width = first.is_sparse, first.features.shape[1]
        self.meta = first.meta | {"source": self.source, "task": self.task}

    def select_features(self, spec: str | Sequence[str | int]) -> StreamingTable:
        """A view whose chunks hold only the columns of ``spec`` (``Dataset.select_features``)."""
        view = copy.copy(self)
        view.view = spec
        view._describe_columns()
        return view

    def with_scores(self, names: Sequence[str]) -> StreamingTable:
        """A view that also reads these columns of the shards' score shards (``scores``)."""
        view = copy.copy(self)
        view.scores = list(names)
        return view

    def score_file(self, shard: Shard) -> str:
        """Where the score shard of ``shard`` lives: ``<its folder>/_scores/<name>``, or
        ``<scores_dir>/<name>``."""
        return score_path(shard.path, self.scores_dir)

    def __len__(self) -> int:
        return self.num_rows

    def iter_chunks(
        self,
        *,
        batch_size: int,
        seed: int = 0,
        epoch: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> Iterator[Dataset]:
        """One epoch of chunks of ``batch_size`` rows (or ``batch_size`` whole groups).

        Shards are visited in a seeded order; rows (whole groups when grouped) are shuffled
        inside a buffer of ``shuffle_buffer`` rows; every row comes once; the last chunk
        may be smaller. The same seed and epoch give the same chunks.

        With ``world_size`` W > 1 this yields rank ``rank``'s part only: the epoch's shards,
        laid end to end in the seeded order, are cut into W runs of equal units (whole
        shards, at most one shard cut by row or group ranges at each end), and the rank
        reads only its own run, in exactly :meth:`num_chunks` ``(batch_size, W)`` chunks of
        about ``batch_size / W`` units (every rank the same count, as DDP needs).

        Args:
            batch_size: rows per chunk, or groups per chunk for a grouped table (across all
                ranks when ``world_size`` > 1).
            seed, epoch: the shuffle's seed; ``shuffle=False``: file order (evaluation).
            rank, world_size: this process's rank and the number of processes.

        Yields:
            Datasets (features, labels, ids, groups, extras) of one chunk.
        """
        check_positive_int("batch_size", batch_size)
        generator = np.random.default_rng([seed, epoch])
        order = generator.permutation(len(self.shards)) if shuffle else range(len(self.shards))
        if world_size == 1:
            spans = [(position, 0, self.shard_units[position]) for position in order]
            sizes = full_chunk_sizes(sum(self.shard_units), batch_size)
        else:
            generator = np.random.default_rng([seed, epoch, rank])
            spans = rank_spans(self.shard_units, np.asarray(order), rank, world_size)
            units = sum(end - first for _, first, end in spans)
            chunks = self.num_chunks(batch_size, world_size)
            sizes = even_chunk_sizes(units, chunks) if chunks else [units] * (units > 0)
        pieces = (piece for span in spans for piece in self._read_span(*span))
        buffer_rows = self.shuffle_buffer if shuffle else 1
        yield from stream_chunks(pieces, sizes, generator, shuffle=shuffle, buffer_rows=buffer_rows)

    def read_labels(self) -> torch.Tensor:
        """Every row's label in file order, reading only the label column."""
        name = self.columns["label"]
        parts = [shard.open().read(columns=[name]).column(0) for shard in self.shards]
        values = torch.from_numpy(pa.chunked_array(parts).to_numpy().astype(np.float64))
        return values.long() if self.task == "classification" else values.float()

    def num_chunks(self, batch_size: int, world_size: int = 1) -> int:
        """Chunks per epoch of :meth:`iter_chunks` (each rank's, when ``world_size`` > 1):
        ``⌈U / batch_size⌉`` for U rows (groups when grouped), at most ``⌊U / world_size⌋``
        so that every rank's chunk holds at least one unit."""
        units = sum(self.shard_units)
        chunks = -(-units // batch_size)
        return chunks if world_size == 1 else min(chunks, units // world_size)

    def read_shard(self, shard: Shard, rows: tuple[int, int] | None = None) -> Iterator[Dataset]:
        """The rows of one shard in file order, one record batch at a time (with the score
        shard's columns as extras when the table was opened with ``scores``); ``rows``: only
        rows ``start`` to ``stop`` of the shard (only the row groups holding them are read)."""
        reader = shard.open()
        start, stop = rows or (0, shard.num_rows)
        row_groups, offset = _row_groups(reader.metadata, start, stop)
        scores = None
        if self.scores:
            scores = read_scores(shard.path, self.score_file(shard), shard.num_rows, self.scores)
        with shard.named_errors():
            for batch in reader.iter_batches(batch_size=READ_ROWS, row_groups=row_groups):
                first, end = max(start - offset, 0), min(stop - offset, batch.num_rows)
                if first < end:
                    table = pa.Table.from_batches([batch]).slice(first, end - first)
                    piece = self._chunk(shard.path, table, shard.first_id + offset + first)
                    if scores is not None:
                        piece = _with_scores(self.score_file(shard), piece, scores, offset + first)
                    yield piece
                offset += batch.num_rows
                if offset >= stop:
                    return

    def _read_span(self, position: int, first: int, end: int) -> Iterator[Dataset]:
        """Units ``first`` to ``end`` of a shard (rows, or groups of a grouped table)."""
        shard = self.shards[position]
        if first == 0 and end == self.shard_units[position]:
            return self.read_shard(shard)
        if self.num_groups is None:
            return self.read_shard(shard, (first, end))
        return self.read_shard(shard, _group_rows(shard, self.columns["group"], first, end))

    def head(self, n: int = 1) -> Dataset:
        """The first ``n`` rows of the first shard (at most one record batch), unshuffled."""
        shard = self.shards[0]
        batch = next(shard.open().iter_batches(batch_size=min(n, READ_ROWS)))
        return self._chunk(shard.path, pa.Table.from_batches([batch]), shard.first_id)

    def _chunk(self, path: str, table: pa.Table, offset: int) -> Dataset:
        if self.sparse_layout is None:
            part = table_dataset(path, table, **self.columns)
        else:
            names = ("label", "group", "id", "extras", "allow_nan", "impute")
            columns = {name: self.columns[name] for name in names}
            part = sparse_dataset(path, table, self.sparse_layout, **columns)
        labels = part.labels.long() if self.task == "classification" else part.labels.float()
        ids = part.ids if self.columns["id"] else part.ids + offset
        part = dataclasses.replace(part, labels=labels, ids=ids, extras=dict(part.extras))
        return part if self.view is None else part.select_features(self.view)


def _sparse_layout(shards, schema, features, categorical, given) -> SparseLayout | None:
    """The ids' layout of libsvm-layout shards (None for other tables); see ``layout``."""
    first = shards[0].path
    if not is_sparse_schema(schema):
        if given is not None:
            raise ValueError(
                f"{first}: `layout` is for libsvm-layout shards (list columns "
                f"'index' and 'value'); columns are {schema.names}"
            )
        return None
    if features or categorical:
        raise ValueError(
            f"{first}: libsvm-layout shards (list columns 'index' and 'value') take no "
            f"`features` or `categorical`, got {list(features or [])}, {list(categorical)}"
        )
    own = layout_of([shard_statistics(shard.path, shard.footer) for shard in shards])
    if given is None:
        return own
    largest, given_largest = (item.n_features + item.index_base - 1 for item in (own, given))
    fits = (
        own.index_base >= given.index_base
        and largest <= given_largest
        and own.width <= given.width
        and (own.ones or not given.ones)
    )
    if not fits:
        raise ValueError(
            f"{first}: the shards' layout {own} does not fit the given {given} "
            "(indices, row length or values outside it)"
        )
    return given


def _scores_dir(shards: list[Shard], scores_dir: str | os.PathLike) -> str:
    """``scores_dir`` as a string, once no two shards share a file name (their score shards
    would be one file)."""
    owners: dict[str, str] = {}
    for shard in shards:
        name = shard.path.rpartition("/")[2]
        if name in owners:
            raise ValueError(
                f"`scores_dir`: shards {owners[name]} and {shard.path} share the file name "
                f"{name!r}, so their score shards in {scores_dir} would be one file; rename one"
            )
        owners[name] = shard.path
    return os.fspath(scores_dir).rstrip("/") or "/"


def _with_scores(path: str, piece: Dataset, scores: pa.Table, start: int) -> Dataset:
    rows = scores.slice(start, len(piece))
    check_aligned(path, rows["id"].to_numpy(), piece.ids.numpy())
    extras = {
        name: torch.from_numpy(rows[name].to_numpy().astype(np.float32))
        for name in rows.column_names[1:]
    }
    return dataclasses.replace(piece, extras=piece.extras | extras)


def _check_groups(shards: list[Shard], group: str) -> list[int]:
    """Read only the group column: each group contiguous in one shard; returns the number of
    groups of each shard."""
    owner: dict[int, str] = {}
    counts = []
    for shard in shards:
        before = len(owner)
        previous = None
        with shard.named_errors():
            batches = list(shard.open().iter_batches(batch_size=READ_ROWS, columns=[group]))
        for batch in batches:
            values = batch.column(0).to_numpy(zero_copy_only=False)
            starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
            for value in values[starts].tolist():
                if value == previous:
                    continue
                if value in owner:
                    where = (
                        "elsewhere in the same shard"
                        if owner[value] == shard.path
                        else (f"in {owner[value]}")
                    )
                    raise ValueError(
                        f"{shard.path}: group {value!r} of column {group!r} also has rows "
                        f"{where}; a group's rows must be contiguous in one shard"
                    )
                owner[value] = shard.path
                previous = value
        counts.append(len(owner) - before)
    return counts


def _group_rows(shard: Shard, group: str, first: int, end: int) -> tuple[int, int]:
    """The rows of groups ``first`` to ``end`` of a shard (reads its group column)."""
    values = shard.open().read(columns=[group]).column(0).to_numpy()
    starts = np.r_[np.flatnonzero(np.r_[True, values[1:] != values[:-1]]), len(values)]
    return int(starts[first]), int(starts[end])


def _row_groups(metadata, start: int, stop: int) -> tuple[list[int], int]:
    """The row groups holding rows ``start`` to ``stop``, and the first row of the first."""
    chosen, first, offset = [], None, 0
    for index in range(metadata.num_row_groups):
        rows = metadata.row_group(index).num_rows
        if offset < stop and offset + rows > start:
            chosen.append(index)
            first = offset if first is None else first
        offset += rows
    return chosen, first or 0
