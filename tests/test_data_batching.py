import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from distill.data import GroupBatchSampler, RowBatchSampler

# groups of sizes 3, 1, 4, 2, 5, 2, 1 (ids not sorted, rows of group 5 not adjacent)
GROUPS = torch.tensor([8, 8, 8, 2, 5, 5, 5, 0, 0, 3, 3, 3, 3, 3, 9, 9, 4, 5])
SIZES = {8: 3, 2: 1, 5: 4, 0: 2, 3: 5, 9: 2, 4: 1}


def _batch_groups(batch):
    return [int(g) for g in torch.unique(GROUPS[batch])]


def _assert_whole(batch):
    for g in _batch_groups(batch):
        assert int((GROUPS[batch] == g).sum()) == SIZES[g]


def test_groups_per_batch_covers_every_row_once():
    sampler = GroupBatchSampler(GROUPS, groups_per_batch=3, seed=0)
    batches = list(sampler)
    assert len(sampler) == len(batches) == 3
    assert sorted(torch.cat(batches).tolist()) == list(range(len(GROUPS)))
    assert [len(_batch_groups(b)) for b in batches] == [3, 3, 1]
    for batch in batches:
        _assert_whole(batch)
    # rows of one group keep data order
    rows_of_5 = [r for b in batches for r in b.tolist() if GROUPS[r] == 5]
    assert rows_of_5 == [4, 5, 6, 17]


def test_item_budget_packs_greedily():
    sampler = GroupBatchSampler(GROUPS, max_items=5, shuffle=False)
    sizes = [len(b) for b in sampler]
    # ascending group ids 0,2,3,4,5,8,9 -> sizes 2,1,5,1,4,3,2 -> [2+1], [5], [1+4], [3+2]
    assert sizes == [3, 5, 5, 5]
    for batch in sampler:
        _assert_whole(batch)
    big = GroupBatchSampler(GROUPS, max_items=2, shuffle=False)
    assert max(len(b) for b in big) == 5  # a group over budget is its own batch


def test_shuffle_is_seeded_per_epoch():
    def order(seed, epoch):
        sampler = GroupBatchSampler(GROUPS, groups_per_batch=2, seed=seed)
        sampler.set_epoch(epoch)
        return [b.tolist() for b in sampler]

    assert order(0, 1) == order(0, 1)
    assert order(0, 0) != order(0, 1)
    assert order(0, 1) != order(1, 1)


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_get_disjoint_whole_groups_and_equal_counts(drop_last):
    world = 3
    samplers = [
        GroupBatchSampler(
            GROUPS, groups_per_batch=1, seed=5, rank=r, world_size=world, drop_last=drop_last
        )
        for r in range(world)
    ]
    per_rank = [list(s) for s in samplers]
    assert len({len(batches) for batches in per_rank}) == 1
    expected = 2 if drop_last else 3  # 7 groups over 3 ranks: drop 1 or pad 2
    assert len(per_rank[0]) == expected
    seen = [g for batches in per_rank for b in batches for g in _batch_groups(b)]
    if drop_last:
        assert len(seen) == len(set(seen)) == 6
    else:
        assert set(seen) == set(SIZES) and len(seen) == 9


def test_row_sampler_and_dataloader():
    sampler = RowBatchSampler(10, batch_size=4, seed=0, drop_last=True)
    batches = list(sampler)
    assert [len(b) for b in batches] == [4, 4]
    assert len(set(torch.cat(batches).tolist())) == 8
    loader = DataLoader(
        TensorDataset(torch.arange(10.0)),
        batch_sampler=RowBatchSampler(10, batch_size=3, shuffle=False),
    )
    assert [x.tolist() for (x,) in loader] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "give exactly one of `groups_per_batch` and `max_items`"),
        ({"groups_per_batch": 2, "max_items": 3}, ValueError, "exactly one"),
        ({"groups_per_batch": 0}, ValueError, "`groups_per_batch` must be >= 1, got 0"),
        ({"max_items": 4, "rank": 2, "world_size": 2}, ValueError, r"`rank` must be < world_size"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        GroupBatchSampler(GROUPS, **kwargs)
    with pytest.raises(TypeError, match="`groups` must be an int64 tensor"):
        GroupBatchSampler(GROUPS.float(), max_items=3)
