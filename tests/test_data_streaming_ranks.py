"""Each rank reads its own run of an epoch's shards: rows once across ranks, equal chunk counts,
groups whole, deterministic, and nothing outside its run is read."""

from __future__ import annotations

import pytest
import torch

from distill.data.streaming import StreamingTable
from distill.teachers.score_shards import score_shards
from test_data_streaming import open_table, write_shards
from test_teachers_score_shards import teacher_for


def rank_epoch(table, rank, world_size, *, batch_size, epoch=0, seed=5, shuffle=True):
    """The chunks of one rank, with the rows it read from each shard (record batches)."""
    read: list[tuple[str, int, int]] = []
    original = StreamingTable.read_shard

    def recording(self, shard, rows=None):
        for piece in original(self, shard, rows):
            read.append((shard.path, int(piece.ids.min()), int(piece.ids.max())))
            yield piece

    StreamingTable.read_shard = recording
    try:
        chunks = list(
            table.iter_chunks(
                batch_size=batch_size,
                seed=seed,
                epoch=epoch,
                shuffle=shuffle,
                rank=rank,
                world_size=world_size,
            )
        )
    finally:
        StreamingTable.read_shard = original
    return chunks, read


@pytest.mark.parametrize(("sizes", "world_size"), [([97, 130, 61, 88, 40], 2), ([300], 3)])
def test_ranks_split_every_epoch_exactly_once_with_equal_chunk_counts(tmp_path, sizes, world_size):
    write_shards(tmp_path, sizes)
    table = open_table(tmp_path, shuffle_buffer=50)
    rows = sum(sizes)
    for epoch in range(3):
        parts = [
            rank_epoch(table, rank, world_size, batch_size=32, epoch=epoch)
            for rank in range(world_size)
        ]
        ids = [torch.cat([chunk.ids for chunk in chunks]) for chunks, _ in parts]
        assert sorted(torch.cat(ids).tolist()) == list(range(rows))
        shares = sorted(len(part) for part in ids)
        assert shares[-1] - shares[0] <= 1  # balanced by rows
        counts = {len(chunks) for chunks, _ in parts}
        assert counts == {table.num_chunks(32, world_size)} == {-(-rows // 32)}
        for (chunks, read), own in zip(parts, ids, strict=True):
            sizes_seen = [len(chunk) for chunk in chunks]
            assert max(sizes_seen) - min(sizes_seen) <= 1  # about 32 / world_size rows each
            assert sum(hi - lo + 1 for _, lo, hi in read) == len(own)  # read only its rows
    again = rank_epoch(table, 1, world_size, batch_size=32, epoch=2)[0]
    assert torch.equal(torch.cat([c.ids for c in again]), ids[1])


def test_ranks_read_disjoint_shards_when_the_cut_falls_between_shards(tmp_path):
    write_shards(tmp_path, [60, 60, 60, 60])
    table = open_table(tmp_path)
    for epoch in range(2):
        paths = [
            {path for path, _, _ in rank_epoch(table, rank, 2, batch_size=20, epoch=epoch)[1]}
            for rank in range(2)
        ]
        assert len(paths[0]) == len(paths[1]) == 2 and not paths[0] & paths[1]
    orders = [
        [path for path, _, _ in rank_epoch(table, 0, 2, batch_size=20, epoch=e)[1]]
        for e in range(4)
    ]
    assert len({tuple(dict.fromkeys(order)) for order in orders}) > 1  # dealt anew per epoch


def test_grouped_ranks_keep_groups_whole(tmp_path):
    write_shards(tmp_path, [203, 150, 71], grouped=True, group_size=7)
    table = open_table(tmp_path, group="q", task="ranking", shuffle_buffer=40)
    groups = table.num_groups
    parts = [rank_epoch(table, rank, 2, batch_size=6, epoch=1)[0] for rank in range(2)]
    assert len(parts[0]) == len(parts[1]) == table.num_chunks(6, 2) == -(-groups // 6)
    seen: dict[int, int] = {}
    for chunks in parts:
        for chunk in chunks:
            for group in torch.unique(chunk.groups).tolist():
                assert group not in seen
                seen[group] = int((chunk.groups == group).sum())
    assert sorted(seen) == list(range(groups)) and sum(seen.values()) == 424
    shares = [sum(len(torch.unique(c.groups)) for c in chunks) for chunks in parts]
    assert abs(shares[0] - shares[1]) <= 1


def test_rank_ranges_keep_score_shards_aligned(tmp_path):
    write_shards(tmp_path, [70, 45])
    table = open_table(tmp_path)
    teacher = teacher_for(table)
    score_shards(teacher, table)
    scored = open_table(tmp_path, scores=["teacher_logit"], shuffle_buffer=30)
    for rank in range(3):
        for chunk in rank_epoch(scored, rank, 3, batch_size=12)[0]:
            expected = teacher.module(chunk.features, chunk.feature_values)
            torch.testing.assert_close(chunk.extras["teacher_logit"], expected)


def test_evaluation_order_is_file_order_per_rank(tmp_path):
    write_shards(tmp_path, [50, 50, 17])
    table = open_table(tmp_path, shuffle_buffer=10_000)
    ids = [
        torch.cat([c.ids for c in rank_epoch(table, r, 2, batch_size=8, shuffle=False)[0]])
        for r in range(2)
    ]
    assert torch.equal(torch.cat(ids), torch.arange(117))
