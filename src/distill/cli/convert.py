"""``distill convert``: raw Criteo TSV day files or libsvm files → Parquet shards for streaming."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from distill.cli._common import console, guard


class Format(str, Enum):
    """Input formats of ``distill convert``."""

    criteo = "criteo"
    libsvm = "libsvm"


def convert(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Criteo TSV files (label, I1-I13, C1-C26; no header) or libsvm files."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the Parquet shards.")],
    format: Annotated[
        Format,
        typer.Option(help="criteo: Criteo TSV; libsvm: <label> [qid:<q>] <index>:<value> ..."),
    ] = Format.criteo,
    shard_rows: Annotated[int, typer.Option(help="Rows per shard.")] = 1_000_000,
    hash_buckets: Annotated[
        int | None,
        typer.Option(help="Criteo: store categoricals as 1 + crc32 % N ids, not their strings."),
    ] = None,
) -> None:
    """Convert Criteo TSV or libsvm files to Parquet shards in one bounded-memory pass.

    Shards are written atomically; inputs converted by an earlier run (a _<stem>.done marker)
    are skipped. A libsvm query's lines stay in one shard. Train on them with
    data.streaming = true (docs/streaming.md).
    """
    with guard():
        from distill.config import ConfigError
        from distill.data.convert import convert_criteo, convert_libsvm

        try:
            if format is Format.libsvm:
                if hash_buckets is not None:
                    raise ValueError("--hash-buckets applies to Criteo TSV only")
                shards = convert_libsvm(inputs, out, shard_rows=shard_rows, progress=console.print)
            else:
                shards = convert_criteo(
                    inputs,
                    out,
                    shard_rows=shard_rows,
                    hash_buckets=hash_buckets,
                    progress=console.print,
                )
        except (ValueError, FileNotFoundError) as error:
            raise ConfigError([str(error)]) from None
    console.print(f"{len(shards)} shard(s) in {out}")
