"""Synthetic Criteo-shaped Parquet shards (13 numeric + 26 categorical columns) for streaming.

Rows are drawn shard by shard (memory bounded by one shard). Clicks follow a known logistic
model, so a trained student can beat the click rate and a logged teacher column
(``teacher_logit``: the true logit plus noise) carries real knowledge. See docs/streaming.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
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
    effects = np.random.default_rng(12345).normal(0, 0.5, size=(3, CARDINALITY))
    words = np.array([f"{v:08x}" for v in np.random.default_rng(7).integers(0, 2**32, CARDINALITY)])
    paths = []
    for index, start in enumerate(range(0, rows, shard_rows)):
        n = min(shard_rows, rows - start)
        rng = np.random.default_rng([seed, index])
        numeric = rng.lognormal(0, 1, size=(n, 13)).astype(np.float32)
        codes = rng.zipf(1.3, size=(n, 26)) % CARDINALITY
        logit = -1 + 0.3 * np.log1p(numeric[:, 0]) - 0.2 * np.log1p(numeric[:, 1])
        logit = logit + sum(effects[j][codes[:, j]] for j in range(3))
        columns = {"label": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)}
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
