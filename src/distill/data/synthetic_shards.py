"""Synthetic Criteo-shaped data for streaming: Parquet shards, or raw TSV for ``distill convert``.

Rows are drawn shard by shard (memory bounded by one shard). Clicks follow a known logistic
model, so a trained student can beat the click rate and a logged teacher column
(``teacher_logit``: the true logit plus noise) carries real knowledge. See docs/streaming.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from distill._io import atomic_path
from distill._validation import check_positive_int

NUMERIC = [f"I{k}" for k in range(1, 14)]
CATEGORICAL = [f"C{k}" for k in range(1, 27)]
CARDINALITY = 1000
"""Distinct values per categorical column (the first 26 of a fixed table of hex strings)."""


def write_criteo_shards(
    folder: str | os.PathLike,
    *,
    rows: int,
    shard_rows: int = 500_000,
    seed: int = 0,
    noise: float = 0.5,
) -> list[Path]:
    """Write ``rows`` Criteo-shaped rows as ``part-00000.parquet`` … into ``folder``.

    ``logit = -1 + 0.3·I1 − 0.2·I2 + e[C1] + e[C2] + e[C3]`` with ``e ~ N(0, 0.5²)`` per
    categorical value; ``label ~ Bernoulli(σ(logit))``; ``teacher_logit = logit + N(0, noise²)``.
    Columns: ``label``, ``I1``…``I13`` (float32), ``C1``…``C26`` (8-digit hex strings),
    ``teacher_logit``. Each shard is written atomically.

    Args:
        folder: output folder (created).
        rows: total rows; shard_rows: rows per shard; seed: draws; noise: teacher noise.

    Returns:
        The shard paths.

    Example:
        >>> paths = write_criteo_shards("data/criteo/train", rows=10_000, shard_rows=5_000)
    """
    check_positive_int("rows", rows)
    check_positive_int("shard_rows", shard_rows)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    effects, words = _tables()
    paths = []
    for index, start in enumerate(range(0, rows, shard_rows)):
        n = min(shard_rows, rows - start)
        rng = np.random.default_rng([seed, index])
        numeric, codes, logit, label = _draw(rng, n, effects)
        columns = {"label": label}
        columns |= {name: numeric[:, k] for k, name in enumerate(NUMERIC)}
        dictionary = pa.array(words)
        columns |= {
            name: pa.DictionaryArray.from_arrays(codes[:, k].astype(np.int32), dictionary)
            for k, name in enumerate(CATEGORICAL)
        }
        columns["teacher_logit"] = (logit + rng.normal(0, noise, n)).astype(np.float32)
        path = folder / f"part-{index:05d}.parquet"
        with atomic_path(path) as temporary:
            pq.write_table(pa.table(columns), temporary)
        paths.append(path)
    return paths


def write_criteo_tsv(
    path: str | os.PathLike,
    *,
    rows: int,
    seed: int = 0,
    missing: float = 0.05,
    block_rows: int = 250_000,
) -> Path:
    """Write ``rows`` raw Criteo-format lines (the input of ``distill convert``) to ``path``.

    ``label, I1…I13, C1…C26``, tab-separated, no header, as Criteo's day files: counts are
    integers (``⌊4·x⌋``, ``x`` log-normal), categoricals 8-digit hex strings, and a ``missing``
    share of the cells after ``I2``/``C3`` empty. Clicks follow the model of
    :func:`write_criteo_shards` on ``x`` (``logit = -1 + 0.3·log1p(I1/4) − 0.2·log1p(I2/4) +
    e[C1] + e[C2] + e[C3]``). No teacher column: a teacher is trained on the converted shards.
    Written block by block (memory: one block), atomically.

    Args:
        path: the output file; rows: lines; seed: draws; missing: share of empty cells;
            block_rows: lines drawn at a time.

    Returns:
        The path written.

    Example:
        >>> write_criteo_tsv("data/criteo_raw/day_0.tsv", rows=100_000)
    """
    check_positive_int("rows", rows)
    check_positive_int("block_rows", block_rows)
    if not 0 <= missing < 1:
        raise ValueError(f"`missing` must be in [0, 1), got {missing!r}")
    effects, words = _tables()
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with (
        atomic_path(path) as temporary,
        pacsv.CSVWriter(temporary, _TSV_SCHEMA, write_options=options) as out,
    ):
        for index, start in enumerate(range(0, rows, block_rows)):
            n = min(block_rows, rows - start)
            rng = np.random.default_rng([seed, index])
            numeric, codes, _, label = _draw(rng, n, effects, counts=True)
            empty = rng.random((n, 39)) < missing
            empty[:, [0, 1, 13, 14, 15]] = False  # the columns the clicks depend on
            columns = [pa.array(label)]
            columns += [
                pa.array(numeric[:, k].astype(np.int64), mask=empty[:, k]) for k in range(13)
            ]
            columns += [pa.array(words[codes[:, k]], mask=empty[:, 13 + k]) for k in range(26)]
            out.write_table(pa.Table.from_arrays(columns, schema=_TSV_SCHEMA))
    return Path(path)


_TSV_SCHEMA = pa.schema(
    [("label", pa.int64())]
    + [(name, pa.int64()) for name in NUMERIC]
    + [(name, pa.string()) for name in CATEGORICAL]
)


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """The fixed click effects of the first three categoricals' values, and the hex words."""
    effects = np.random.default_rng(12345).normal(0, 0.5, size=(3, CARDINALITY))
    words = np.array([f"{v:08x}" for v in np.random.default_rng(7).integers(0, 2**32, CARDINALITY)])
    return effects, words


def _draw(rng: np.random.Generator, n: int, effects: np.ndarray, *, counts: bool = False):
    """Numeric columns, categorical codes, true logits and clicks of ``n`` rows (``counts``:
    integer numeric columns ``⌊4·x⌋``, the logit still read from ``x``)."""
    numeric = rng.lognormal(0, 1, size=(n, 13)).astype(np.float32)
    codes = rng.zipf(1.3, size=(n, 26)) % CARDINALITY
    logit = -1 + 0.3 * np.log1p(numeric[:, 0]) - 0.2 * np.log1p(numeric[:, 1])
    logit = logit + sum(effects[j][codes[:, j]] for j in range(3))
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return (np.floor(4 * numeric) if counts else numeric), codes, logit, label
