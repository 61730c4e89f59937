"""Streamed Parquet shards: exactly-once epochs, bounded buffers, groups whole, bad input."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from distill.data import read_table
from distill.data.streaming import StreamingTable


def write_shards(folder, sizes, *, seed=0, grouped=False, group_size=5):
    """Criteo-like shards: numeric I1, I2, categorical C1, C2, click y, optional group q."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths, first_group = [], 0
    for k, n in enumerate(sizes):
        columns = {
            "I1": rng.normal(size=n).astype(np.float32),
            "I2": rng.integers(0, 9, size=n),
            "C1": [f"a{v}" for v in rng.integers(0, 50, size=n)],
            "C2": rng.integers(0, 7, size=n),
            "y": (rng.random(n) < 0.3).astype(np.int64),
            "logit": rng.normal(size=n).astype(np.float32),
        }
        if grouped:
            columns["q"] = first_group + np.arange(n) // group_size
            first_group += -(-n // group_size)
        path = folder / f"part-{k:03d}.parquet"
        pq.write_table(pa.table(columns), path, row_group_size=97)
        paths.append(path)
    return paths


def open_table(source, **kwargs):
    options = dict(label="y", features=["I1", "I2"], categorical=["C1", "C2"], hash_buckets=64)
    return StreamingTable(source, **(options | kwargs))


def test_every_row_exactly_once_per_epoch_and_buffer_bound(tmp_path):
    write_shards(tmp_path, [500, 333, 1])
    table = open_table(tmp_path, shuffle_buffer=200)
    for epoch in range(2):
        chunks = list(table.iter_chunks(batch_size=64, seed=3, epoch=epoch))
        ids = torch.cat([chunk.ids for chunk in chunks])
        assert sorted(ids.tolist()) == list(range(834))
        assert len(chunks) == table.num_chunks(64) == 14
        assert all(len(chunk) == 64 for chunk in chunks[:-1])
    first = torch.cat([c.ids for c in table.iter_chunks(batch_size=64, seed=3, epoch=0)])
    again = torch.cat([c.ids for c in table.iter_chunks(batch_size=64, seed=3, epoch=0)])
    other = torch.cat([c.ids for c in table.iter_chunks(batch_size=64, seed=3, epoch=1)])
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert not torch.equal(first, torch.sort(first).values)  # shuffled


def test_rows_equal_the_in_memory_reader(tmp_path):
    paths = write_shards(tmp_path, [300, 200])
    table = open_table(tmp_path / "*.parquet")
    streamed = list(table.iter_chunks(batch_size=128, shuffle=False))
    for path, rows in zip(paths, (slice(0, 300), slice(300, 500)), strict=True):
        memory = read_table(
            path, label="y", features=["I1", "I2"], categorical=["C1", "C2"], hash_buckets=64
        )
        features = torch.cat([chunk.features for chunk in streamed])[rows]
        values = torch.cat([chunk.feature_values for chunk in streamed])[rows]
        assert torch.equal(features, memory.features)
        assert torch.equal(values, memory.feature_values)
        assert torch.equal(torch.cat([c.labels for c in streamed])[rows], memory.labels.float())
    assert table.num_embeddings == memory.num_embeddings and table.is_sparse
    labels = torch.cat([chunk.labels for chunk in streamed])
    assert torch.equal(table.read_labels(), labels)


def test_file_uri_list_and_extras(tmp_path):
    paths = write_shards(tmp_path, [40, 30])
    table = open_table(f"file://{tmp_path}", extras=["logit"])
    assert len(table) == 70 and [s.path for s in table.shards] == [str(p) for p in paths]
    chunk = next(table.iter_chunks(batch_size=70, shuffle=False))
    expected = np.concatenate([pq.read_table(p)["logit"].to_numpy() for p in paths])
    assert np.array_equal(chunk.extras["logit"].numpy(), expected)
    assert len(open_table([paths[1]])) == 30


def test_groups_stay_whole_and_every_group_once(tmp_path):
    write_shards(tmp_path, [203, 150], grouped=True, group_size=7)
    table = open_table(tmp_path, group="q", task="ranking", shuffle_buffer=50)
    assert table.num_groups == 29 + 22
    chunks = list(table.iter_chunks(batch_size=4, seed=1))
    assert len(chunks) == table.num_chunks(4)
    seen = {}
    for chunk in chunks:
        for group in torch.unique(chunk.groups).tolist():
            assert group not in seen
            rows = (chunk.groups == group).nonzero()[:, 0]
            assert torch.equal(rows, torch.arange(rows[0], rows[-1] + 1))  # contiguous, whole
            seen[group] = len(rows)
    assert sorted(seen) == list(range(51))
    assert sum(seen.values()) == 353


def test_group_split_across_shards_is_refused(tmp_path):
    paths = write_shards(tmp_path, [20, 20], grouped=True, group_size=10)
    shifted = pq.read_table(paths[1]).set_column(6, "q", pa.array(np.full(20, 1)))
    pq.write_table(shifted, paths[1])
    with pytest.raises(
        ValueError,
        match=r"part-001.parquet: group 1 of column 'q' also has rows in .*part-000.parquet; "
        r"a group's rows must be contiguous",
    ):
        open_table(tmp_path, group="q", task="ranking")


def test_group_not_contiguous_in_its_shard_is_refused(tmp_path):
    path = write_shards(tmp_path, [6], grouped=True, group_size=2)[0]
    table = pq.read_table(path)
    pq.write_table(table.set_column(6, "q", pa.array([0, 0, 1, 1, 0, 0])), path)
    with pytest.raises(
        ValueError, match=r"part-000.parquet: group 0 .* elsewhere in the same shard"
    ):
        open_table(tmp_path, group="q", task="ranking")


def test_different_schema_names_file_and_columns(tmp_path):
    paths = write_shards(tmp_path, [10, 10])
    table = pq.read_table(paths[1]).drop_columns(["C2"]).append_column("extra", pa.array(range(10)))
    table = table.set_column(0, "I1", pa.array(np.zeros(10)))  # float64 instead of float32
    pq.write_table(table, paths[1])
    with pytest.raises(
        ValueError,
        match=r"part-001.parquet: schema differs from the first shard .*part-000.parquet: "
        r"missing column\(s\) \['C2'\], extra column\(s\) \['extra'\], "
        r"other type\(s\) \['I1 \(float -> double\)'\]",
    ):
        open_table(tmp_path)


def test_corrupt_shard_is_named(tmp_path):
    paths = write_shards(tmp_path, [10, 10])
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"part-001.parquet: not a readable Parquet file"):
        open_table(tmp_path)


@pytest.mark.parametrize("case", range(60))
def test_a_mangled_shard_is_read_as_pyarrow_reads_it_or_named(tmp_path, case):
    """Seeded truncations, byte flips and zeroed runs of the second shard (of a grouped table
    in odd cases): reading it whole either gives the rows pyarrow reads from the file (the
    oracle) or a ValueError naming it."""
    grouped = {"group": "q", "task": "ranking"} if case % 2 else {}
    paths = write_shards(tmp_path, [300, 300], grouped=bool(grouped))
    data = bytearray(paths[1].read_bytes())
    rng = np.random.default_rng(case)
    kind = case % 3
    if kind == 0:
        data = data[: int(rng.integers(0, len(data)))]
    elif kind == 1:
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
            data[at] ^= 1 << int(rng.integers(0, 8))
    else:
        start, length = int(rng.integers(0, len(data) - 16)), int(rng.integers(4, 64))
        data[start : start + length] = bytes(len(data[start : start + length]))
    paths[1].write_bytes(bytes(data))
    try:
        expected = pq.read_table(paths[1]).column("I1").to_numpy()
    except (OSError, pa.ArrowException):
        expected = None
    try:
        table = open_table(tmp_path, **grouped)
        chunks = list(table.iter_chunks(batch_size=32, shuffle=False))
    except ValueError as error:
        assert str(paths[1]) in str(error) or str(paths[0]) in str(error), error
        return
    assert expected is not None, "pyarrow refuses the file but it was read"
    rows = torch.cat([chunk.feature_values[:, 0] for chunk in chunks])[300:]
    np.testing.assert_array_equal(rows.numpy(), expected)


def test_empty_glob_folder_and_unknown_column(tmp_path):
    with pytest.raises(ValueError, match=r"nothing\*.parquet: the glob matches no file"):
        open_table(tmp_path / "nothing*.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: the folder holds no Parquet shard"):
        open_table(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"missing: no such file or folder"):
        open_table(tmp_path / "missing")
    write_shards(tmp_path / "data", [5])
    with pytest.raises(ValueError, match=r"no column\(s\) \['C9'\]; columns are \['I1'"):
        open_table(tmp_path / "data", categorical=["C9"])
    with pytest.raises(ValueError, match=r"`impute` of a streamed table must be a number"):
        open_table(tmp_path / "data", impute="mean")
    with pytest.raises(ValueError, match=r"a streamed group column must hold integers, 'C1'"):
        open_table(tmp_path / "data", group="C1", task="ranking")
