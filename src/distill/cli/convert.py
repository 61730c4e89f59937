"""``distill convert``: raw Criteo TSV day files → Parquet shards for streaming runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli._common import console, guard


def convert(
    inputs: Annotated[
        list[Path], typer.Argument(help="Criteo TSV files (label, I1-I13, C1-C26; no header).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the Parquet shards.")],
    shard_rows: Annotated[int, typer.Option(help="Rows per shard.")] = 1_000_000,
    hash_buckets: Annotated[
        int | None,
        typer.Option(help="Store categoricals as 1 + crc32 % N ids instead of their strings."),
    ] = None,
) -> None:
    """Convert Criteo TSV files to Parquet shards in one bounded-memory pass (resumable).

    Shards are written atomically; inputs converted by an earlier run (a _<stem>.done marker)
    are skipped. Train on them with data.streaming = true (docs/streaming.md).
    """
    with guard():
        from distill.config import ConfigError
        from distill.data.convert import convert_criteo

        try:
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
