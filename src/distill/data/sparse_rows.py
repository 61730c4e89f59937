"""libsvm rows as Parquet shards: the layout ``distill convert --format libsvm`` writes.

Columns: ``label`` (float64), ``qid`` (int64, only when the file has ``qid:`` tokens), ``index``
(``list<int64>``: a row's feature indices as written in the file) and ``value``
(``list<float32>``). Each shard's footer holds, under the key ``distill.libsvm``, the smallest
and largest index, the longest row and whether every value is 1, so a
:class:`~distill.data.streaming.StreamingTable` knows the ids' layout from the footers alone
and turns each record batch into the Dataset :func:`~distill.data.read_libsvm` gives for the
same rows. See docs/streaming.md.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from distill.data._checks import finite_features
from distill.data.dataset import Dataset
from distill.data.table import table_dataset

LABEL, QID, INDEX, VALUE = "label", "qid", "index", "value"
METADATA_KEY = b"distill.libsvm"
"""Footer key of a shard's index statistics (JSON)."""


@dataclasses.dataclass(frozen=True)
class SparseLayout:
    """How stored libsvm rows become Dataset ids (the choices ``read_libsvm`` makes per file).

    Attributes:
        index_base: 0 when some shard holds feature index 0, else 1 (id = index − base + 1).
        n_features: size of the id space (``num_embeddings = n_features + 1``).
        width: slots per row: the longest row (at least 1); shorter rows are 0-padded.
        ones: every value is 1 (one-hot rows: ``feature_values`` None).
    """

    index_base: int
    n_features: int
    width: int
    ones: bool


def is_sparse_schema(schema: pa.Schema) -> bool:
    """Whether shards of ``schema`` hold libsvm rows (list columns ``index`` and ``value``)."""
    names = schema.names
    return (
        INDEX in names
        and VALUE in names
        and pa.types.is_list(schema.field(INDEX).type)
        and pa.types.is_list(schema.field(VALUE).type)
    )


def shard_statistics(path: str, footer: bytes | None) -> dict:
    """The ``distill.libsvm`` footer entry of one shard, parsed (``footer``: its bytes).

    Raises:
        ValueError: a shard without it (not written by ``distill convert --format libsvm``).
    """
    if footer is None:
        raise ValueError(
            f"{path}: list columns {INDEX!r}/{VALUE!r} but no {METADATA_KEY.decode()!r} footer "
            "entry; write libsvm shards with `distill convert --format libsvm`"
        )
    return json.loads(footer)


def layout_of(statistics: list[dict]) -> SparseLayout:
    """The layout of a table from its shards' statistics (``read_libsvm``'s "auto" base)."""
    rows = [item for item in statistics if item["max_length"] > 0]
    base = 0 if any(item["min_index"] == 0 for item in rows) else 1
    largest = max((item["max_index"] for item in rows), default=base - 1)
    return SparseLayout(
        index_base=base,
        n_features=largest - base + 1,
        width=max(max(item["max_length"] for item in statistics), 1),
        ones=all(item["ones"] for item in statistics),
    )


class ShardStatistics:
    """Accumulates a shard's ``distill.libsvm`` footer entry from the record batches written."""

    def __init__(self) -> None:
        self.values = {"min_index": None, "max_index": None, "max_length": 0, "ones": True}

    def add(self, part: pa.Table) -> None:
        """Fold in the rows of ``part`` (layout columns)."""
        indices = pc.list_flatten(part[INDEX])
        values = self.values
        if len(indices):
            low, high = pc.min_max(indices).values()
            values["min_index"] = _fold(min, values["min_index"], low.as_py())
            values["max_index"] = _fold(max, values["max_index"], high.as_py())
            longest = pc.max(pc.list_value_length(part[INDEX])).as_py()
            values["max_length"] = max(values["max_length"], longest)
            values["ones"] = values["ones"] and bool(
                pc.all(pc.equal(pc.list_flatten(part[VALUE]), 1)).as_py()
            )

    def metadata(self) -> dict[bytes, bytes]:
        """The footer entry."""
        return {METADATA_KEY: json.dumps(self.values).encode()}


def _fold(pick, current, new):
    return new if current is None else pick(current, new)


def sparse_dataset(
    path: str,
    table: pa.Table,
    layout: SparseLayout,
    *,
    label: str,
    group: str | None,
    id: str | None,
    extras: list[str],
    allow_nan: bool = False,
    impute: float | None = None,
) -> Dataset:
    """The rows of a libsvm-layout Arrow table as ``read_libsvm``'s padded ids and values.

    Row i's features become ``features[i, :k]`` = ``index − index_base + 1`` (0-padded to
    ``layout.width``), their values ``feature_values[i, :k]`` (None when ``layout.ones``);
    labels, groups, ids and extras as :func:`~distill.data.table.table_dataset`.

    Raises:
        ValueError: a row longer than the layout's width or an index outside its id space
            (a shard that does not fit the layout it is read with), NaN/inf values unless
            ``allow_nan``/``impute``.
    """
    rows = table_dataset(
        path,
        table,
        features=[],
        label=label,
        group=group,
        id=id,
        categorical=[],
        hash_buckets=1,
        extras=extras,
    )
    column = table[INDEX].combine_chunks()
    counts = np.diff(column.offsets.to_numpy())
    indices = column.flatten().to_numpy()
    values = table[VALUE].combine_chunks().flatten().to_numpy().astype(np.float32)
    ids = indices - layout.index_base + 1
    if len(ids) and (counts.max() > layout.width or ids.min() < 1 or ids.max() > layout.n_features):
        raise ValueError(
            f"{path}: rows of up to {int(counts.max())} features with indices "
            f"{int(indices.min())}..{int(indices.max())} do not fit the table's layout (at most "
            f"{layout.width} features, indices {layout.index_base}.."
            f"{layout.n_features + layout.index_base - 1})"
        )
    row_of = np.repeat(np.arange(len(counts)), counts)
    slot = np.arange(len(indices)) - np.repeat(np.cumsum(counts) - counts, counts)
    padded = np.zeros((len(counts), layout.width), dtype=np.int64)
    weights = np.zeros((len(counts), layout.width), dtype=np.float32)
    padded[row_of, slot] = ids
    weights[row_of, slot] = values
    weights = finite_features(
        torch.from_numpy(weights), source=path, allow_nan=allow_nan, impute=impute
    )
    return dataclasses.replace(
        rows,
        features=torch.from_numpy(padded),
        feature_values=None if layout.ones else weights,
        feature_names=[f"slot{k}" for k in range(1, layout.width + 1)],
        num_embeddings=layout.n_features + 1,
        meta=rows.meta | {"index_base": layout.index_base},
    )
