"""Raw Criteo TSV day files → Parquet shards, in one pass with bounded memory.

Each input is read in blocks by pyarrow's streaming CSV reader and written to shards of
``shard_rows`` rows named ``<input stem>-00000.parquet`` … (each written atomically). After an
input's last shard a ``_<input stem>.done`` marker is written; a rerun skips the inputs with a
marker and redoes the others (their partial shards are removed first), so a killed conversion
resumes without a half-written shard. See docs/streaming.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from distill._io import atomic_path, write_atomic
from distill._validation import check_positive_int
from distill.data._hashing import hashed_ids
from distill.data.ctr_formats import CRITEO_CAT_FIELDS, CRITEO_COLUMNS, CRITEO_INT_FIELDS

BLOCK_BYTES = 16 << 20
"""Bytes of TSV text parsed at a time (the memory bound, with one shard's row group)."""


def convert_criteo(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    shard_rows: int = 1_000_000,
    hash_buckets: int | None = None,
    progress: Callable[[str], None] | None = None,
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
    check_positive_int("shard_rows", shard_rows)
    if hash_buckets is not None:
        check_positive_int("hash_buckets", hash_buckets)
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
            written = _convert_file(path, out, shard_rows, hash_buckets, say)
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            for partial in out.glob(f"{path.stem}-*.parquet"):
                partial.unlink()
            raise ValueError(f"{path}: not a Criteo TSV file ({error})") from error
        write_atomic(marker, f"{len(written)}\n")
        shards += written
    return shards


def _convert_file(path, out, shard_rows, hash_buckets, say) -> list[Path]:
    schema = _schema(hash_buckets)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=list(CRITEO_COLUMNS), block_size=BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter="\t"),
        convert_options=pacsv.ConvertOptions(
            column_types={name: _source_type(name) for name in CRITEO_COLUMNS},
            strings_can_be_null=True,
        ),
    )
    blocks = (_hashed(pa.Table.from_batches([b]), hash_buckets, path) for b in reader)
    written: list[Path] = []
    pending = next(blocks, None)
    while pending is not None:
        target = out / f"{path.stem}-{len(written):05d}.parquet"
        started, rows = time.perf_counter(), 0
        with atomic_path(target) as temporary, pq.ParquetWriter(temporary, schema) as writer:
            while pending is not None and rows < shard_rows:
                part = pending.slice(0, shard_rows - rows)
                writer.write_table(part)
                rows += part.num_rows
                rest = pending.slice(part.num_rows)
                pending = rest if rest.num_rows else next(blocks, None)
        written.append(target)
        say(_line(target, rows, started))
    return written


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
