"""Raw Criteo TSV day files or libsvm files → Parquet shards, in one pass with bounded memory.

Each input is read in blocks (16 MB of text at a time) and written to shards of about
``shard_rows`` rows named ``<input stem>-00000.parquet`` … (each written atomically; a libsvm
query's lines never straddle two shards). After an input's last shard a ``_<input stem>.done``
marker is written; a rerun skips the inputs with a marker and redoes the others (their partial
shards are removed first), so a killed conversion resumes without a half-written shard. See
docs/streaming.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from distill._io import atomic_path, write_atomic
from distill._validation import check_positive_int
from distill.data._hashing import hashed_ids
from distill.data._libsvm_blocks import libsvm_blocks, libsvm_schema
from distill.data.ctr_formats import CRITEO_CAT_FIELDS, CRITEO_COLUMNS, CRITEO_INT_FIELDS
from distill.data.sparse_rows import QID, ShardStatistics

BLOCK_BYTES = 16 << 20
"""Bytes of text parsed at a time (the memory bound, with one shard's row group)."""

Progress = Callable[[str], None] | None


def convert_criteo(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    shard_rows: int = 1_000_000,
    hash_buckets: int | None = None,
    progress: Progress = None,
) -> list[Path]:
    """Convert Criteo TSV files (``label, I1…I13, C1…C26``, no header) to Parquet shards.

    Args:
        inputs: the TSV day files (e.g. ``day_0`` … ``day_23``, ``train.txt``).
        out_dir: the shard folder (created).
        shard_rows: rows per shard.
        hash_buckets: store each categorical value as ``1 + crc32(text) % hash_buckets``
            (int64; missing stays null) instead of its hex string; None keeps the strings.
        progress: called with one line per finished shard (rows, rows/s).

    Returns:
        Every shard of the inputs (skipped ones included), in input order.

    Raises:
        FileNotFoundError: a missing input (before anything is written).
        ValueError: a malformed line (the input named; its partial shards are removed).

    Example:
        >>> shards = convert_criteo(["day_0"], "criteo/train", shard_rows=2_000_000)
    """
    if hash_buckets is not None:
        check_positive_int("hash_buckets", hash_buckets)

    def shards_of(path: Path, out: Path, say) -> list[Path]:
        try:
            blocks = (_hashed(block, hash_buckets, path) for block in _criteo_blocks(path))
            return write_shards(blocks, out, path.stem, shard_rows, _schema(hash_buckets), say)
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not a Criteo TSV file ({error})") from error

    return _convert(inputs, out_dir, shard_rows, shards_of, progress)


def convert_libsvm(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    shard_rows: int = 1_000_000,
    progress: Progress = None,
) -> list[Path]:
    """Convert libsvm/SVMlight files (``<label> [qid:<q>] <index>:<value> ...``) to shards.

    The shards hold ``label``, ``qid`` (when the file has ``qid:`` tokens), and the list
    columns ``index`` and ``value`` of each row, with the index statistics in each footer
    (layout: :mod:`distill.data.sparse_rows`). A streamed table of them gives each row the ids
    and values :func:`~distill.data.read_libsvm` gives (and the query id as its group). A
    query's lines stay in one shard: a shard ends at the first query boundary after
    ``shard_rows`` rows.

    Args:
        inputs: the libsvm files; out_dir: the shard folder (created).
        shard_rows: rows per shard (a query may carry a shard past it).
        progress: called with one line per finished shard (rows, rows/s).

    Returns:
        Every shard of the inputs (skipped ones included), in input order.

    Raises:
        FileNotFoundError: a missing input (before anything is written).
        ValueError: a malformed line, a feature index above ``2**24``, a NaN/inf label, some
            lines with ``qid:`` and others without, a query whose lines are not consecutive
            (``file:line: ...``), or a file without rows; that input's partial shards are
            removed.

    Example:
        >>> shards = convert_libsvm(["train.svm"], "svm/train", shard_rows=500_000)
    """

    def shards_of(path: Path, out: Path, say) -> list[Path]:
        blocks = libsvm_blocks(path, BLOCK_BYTES)
        first = next(blocks)  # the first block decides whether the file has query ids
        schema = libsvm_schema(QID in first.column_names)
        group = QID if QID in first.column_names else None
        return write_shards(
            _chain(first, blocks),
            out,
            path.stem,
            shard_rows,
            schema,
            say,
            group=group,
            statistics=ShardStatistics,
        )

    return _convert(inputs, out_dir, shard_rows, shards_of, progress)


def _chain(first: pa.Table, rest: Iterator[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest


def _convert(inputs, out_dir, shard_rows, shards_of, progress) -> list[Path]:
    """Each input not yet marked done: its shards (``shards_of``), then its marker."""
    check_positive_int("shard_rows", shard_rows)
    paths = [Path(path) for path in inputs]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"no such input file(s): {missing}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda line: None)
    shards = []
    for path in paths:
        marker = out / f"_{path.stem}.done"  # "_": ignored by Parquet dataset readers
        if marker.exists():
            done = sorted(out.glob(f"{path.stem}-*.parquet"))
            say(f"{path}: already converted ({len(done)} shard(s)), skipped")
            shards += done
            continue
        for stale in out.glob(f"{path.stem}-*.parquet"):
            stale.unlink()
        try:
            written = shards_of(path, out, say)
        except ValueError:
            for partial in out.glob(f"{path.stem}-*.parquet"):
                partial.unlink()
            raise
        write_atomic(marker, f"{len(written)}\n")
        shards += written
    return shards


def write_shards(
    blocks: Iterator[pa.Table],
    out: Path,
    stem: str,
    shard_rows: int,
    schema: pa.Schema,
    say: Callable[[str], None],
    *,
    group: str | None = None,
    statistics: Callable[[], ShardStatistics] | None = None,
) -> list[Path]:
    """Write ``blocks`` to atomic shards ``<stem>-00000.parquet`` … of about ``shard_rows``.

    A shard ends at the first row from ``shard_rows`` on where ``group`` changes (every row
    without ``group``), so a group never straddles two shards. ``statistics()`` gives an
    accumulator whose entries go into each shard's footer.
    """
    written: list[Path] = []
    pending, previous = next(blocks, None), None  # previous: the group of the last row written
    while pending is not None:
        target = out / f"{stem}-{len(written):05d}.parquet"
        started, rows = time.perf_counter(), 0
        facts = statistics() if statistics else None
        with atomic_path(target) as temporary, pq.ParquetWriter(temporary, schema) as writer:
            while pending is not None:
                cut = _cut(pending, shard_rows - rows, group, previous)
                part = pending.slice(0, cut)
                if part.num_rows:
                    writer.write_table(part)
                    rows += part.num_rows
                    previous = part[group][-1].as_py() if group else None
                    if facts is not None:
                        facts.add(part)
                if cut < pending.num_rows:
                    pending = pending.slice(cut)
                    break
                pending = next(blocks, None)
            if facts is not None:
                writer.add_key_value_metadata(facts.metadata())
        written.append(target)
        say(_line(target, rows, started))
    return written


def _cut(block: pa.Table, room: int, group: str | None, previous) -> int:
    """Rows of ``block`` that go into the current shard: all, or up to the first row at or
    after ``room`` that starts a group (every row starts one without ``group``)."""
    room = max(room, 0)
    if room >= block.num_rows:
        return block.num_rows
    if group is None:
        return room
    values = block[group].to_numpy()
    starts = np.r_[values[0] != previous, values[1:] != values[:-1]]
    after = np.flatnonzero(starts[room:])
    return room + int(after[0]) if len(after) else block.num_rows


def _criteo_blocks(path: Path) -> Iterator[pa.Table]:
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=list(CRITEO_COLUMNS), block_size=BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter="\t"),
        convert_options=pacsv.ConvertOptions(
            column_types={name: _source_type(name) for name in CRITEO_COLUMNS},
            strings_can_be_null=True,
        ),
    )
    return (pa.Table.from_batches([batch]) for batch in reader)


def _source_type(name: str) -> pa.DataType:
    if name == "label":
        return pa.int64()
    return pa.int64() if name in CRITEO_INT_FIELDS else pa.string()


def _schema(hash_buckets: int | None) -> pa.Schema:
    categorical = pa.string() if hash_buckets is None else pa.int64()
    return pa.schema(
        [("label", pa.int64())]
        + [(name, pa.int64()) for name in CRITEO_INT_FIELDS]
        + [(name, categorical) for name in CRITEO_CAT_FIELDS]
    )


def _hashed(table: pa.Table, buckets: int | None, path: Path) -> pa.Table:
    if buckets is None:
        return table
    for name in CRITEO_CAT_FIELDS:
        column = table[name]
        ids = pa.array(hashed_ids(column, buckets, source=str(path), name=name))
        ids = pc.if_else(column.is_null(), pa.scalar(None, pa.int64()), ids)
        table = table.set_column(table.schema.get_field_index(name), name, ids)
    return table


def _line(shard: Path, rows: int, started: float) -> str:
    seconds = max(time.perf_counter() - started, 1e-9)
    return f"{shard}: {rows:,} rows ({rows / seconds:,.0f} rows/s)"
