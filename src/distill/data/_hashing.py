"""Stable hashing of categorical values into embedding ids (CRC-32, the same in every process)."""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def hashed_ids(column: pa.ChunkedArray, buckets: int, *, source: str, name: str) -> np.ndarray:
    """Local ids of one categorical column: 0 for a missing value, else 1 + crc32(text) % buckets.

    ``text`` is the value's UTF-8 string (integers as their decimal digits, so the integer 1005
    and the string "1005" share an id). CRC-32 is fixed, unlike Python's per-process salted
    ``hash()``, so ids agree across runs, files and machines.

    Args:
        column: a string, integer, boolean or dictionary column.
        buckets: number of hash buckets (ids 1 … ``buckets``).
        source: file named in errors; name: the column's name.

    Returns:
        int64 ``(N,)`` local ids in ``[0, buckets]``.

    Raises:
        ValueError: a floating-point (or other non-categorical) column.

    Example:
        >>> hashed_ids(pa.chunked_array([["a", None]]), 10, source="t.csv", name="c").tolist()
        [2, 0]
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    ):
        raise ValueError(
            f"{source}: categorical column {name!r} has type {column.type}; categorical columns "
            "must hold strings or integers"
        )
    encoded = pc.dictionary_encode(pc.cast(column, pa.string())).combine_chunks()
    words = encoded.dictionary.to_pylist()
    codes = np.array(
        [1 + zlib.crc32(word.encode()) % buckets for word in words] + [0], dtype=np.int64
    )
    return codes[pc.fill_null(encoded.indices, len(words)).to_numpy()]
