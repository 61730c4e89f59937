import math

import pytest
import torch

from distill.pairs import ContentCache, difference, group_layout, make_pairs


def naive_pairs(group_ids, labels=None, unequal=False):
    """Double loop over groups (sorted ids), items in input order."""
    ids = group_ids.tolist()
    out = []
    for g, gid in enumerate(sorted(set(ids))):
        rows = [k for k, v in enumerate(ids) if v == gid]
        for x in range(len(rows)):
            for z in range(x + 1, len(rows)):
                a, b = rows[x], rows[z]
                if unequal:
                    if labels[a] == labels[b]:
                        continue
                    if labels[a] < labels[b]:
                        a, b = b, a
                out.append((a, b, g))
    return out


def as_list(pairs):
    return list(zip(pairs.i.tolist(), pairs.j.tolist(), pairs.group.tolist(), strict=True))


def ragged_batch(num_groups=12, max_size=9, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, max_size + 1, (num_groups,), generator=gen)
    ids = torch.randperm(1000, generator=gen)[:num_groups] * 7 - 3000
    group_ids = torch.repeat_interleave(ids, sizes)
    group_ids = group_ids[torch.randperm(len(group_ids), generator=gen)]
    labels = torch.randint(0, 3, (len(group_ids),), generator=gen).float()
    return group_ids, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_pairs_match_naive_loop_on_unsorted_ids(seed):
    group_ids, _ = ragged_batch(seed=seed)
    assert as_list(make_pairs(group_ids)) == naive_pairs(group_ids)


@pytest.mark.parametrize("seed", [0, 1])
def test_unequal_pairs_are_oriented_by_label(seed):
    group_ids, labels = ragged_batch(seed=seed)
    found = make_pairs(group_ids, labels, pairs="unequal")
    assert as_list(found) == naive_pairs(group_ids, labels.tolist(), unequal=True)
    assert bool((labels[found.i] > labels[found.j]).all())


@pytest.mark.parametrize("size", [1, 2, 7])
def test_uniform_group_sizes_match_naive_loop(size):
    gen = torch.Generator().manual_seed(size)
    group_ids = torch.randperm(30, generator=gen).repeat_interleave(size)
    group_ids = group_ids[torch.randperm(len(group_ids), generator=gen)]
    assert as_list(make_pairs(group_ids)) == naive_pairs(group_ids)
    assert as_list(make_pairs(group_ids.sort().values)) == naive_pairs(group_ids.sort().values)


def test_sorted_input_and_layout():
    group_ids = torch.tensor([5, 5, 5, 9, 9, 11])
    assert as_list(make_pairs(group_ids)) == [(0, 1, 0), (0, 2, 0), (1, 2, 0), (3, 4, 1)]
    layout = group_layout(torch.tensor([4, 1, 4, 1, 2]))
    assert layout.order.tolist() == [1, 3, 4, 0, 2]
    assert layout.sizes.tolist() == [2, 1, 2]
    assert layout.starts.tolist() == [0, 2, 3]


def test_singletons_empty_and_equal_labels_give_no_pairs():
    assert len(make_pairs(torch.tensor([3, 1, 2])).i) == 0
    assert len(make_pairs(torch.zeros(0, dtype=torch.long)).i) == 0
    found = make_pairs(torch.tensor([0, 0, 0]), torch.ones(3), pairs="unequal")
    assert found.i.dtype == torch.int64
    assert len(found.i) == 0


def test_cache_is_keyed_on_content():
    group_ids = torch.tensor([0, 0, 1, 1, 1])
    first = make_pairs(group_ids, torch.tensor([1.0, 0.0, 2.0, 2.0, 1.0]), pairs="unequal")
    second = make_pairs(group_ids, torch.tensor([0.0, 1.0, 2.0, 2.0, 1.0]), pairs="unequal")
    assert as_list(first) == [(0, 1, 0), (2, 4, 1), (3, 4, 1)]
    assert as_list(second) == [(1, 0, 0), (2, 4, 1), (3, 4, 1)]
    assert as_list(make_pairs(group_ids.clone())) == naive_pairs(group_ids)


def test_sampling_caps_each_group_and_is_a_subset():
    group_ids, _ = ragged_batch(num_groups=20, max_size=12, seed=3)
    full = set(as_list(make_pairs(group_ids)))
    sampled = make_pairs(
        group_ids, max_pairs_per_group=5, generator=torch.Generator().manual_seed(1)
    )
    assert set(as_list(sampled)) <= full
    per_group = torch.bincount(make_pairs(group_ids).group)
    got = torch.bincount(sampled.group, minlength=len(per_group))
    assert got.tolist() == per_group.clamp(max=5).tolist()
    assert sampled.group.tolist() == sorted(sampled.group.tolist())


def test_sampling_is_reproducible_and_uniform():
    group_ids = torch.arange(3000).repeat_interleave(4)  # 6 pairs per group, keep 2
    draw = lambda seed: make_pairs(  # noqa: E731
        group_ids, max_pairs_per_group=2, generator=torch.Generator().manual_seed(seed)
    )
    assert torch.equal(draw(7).i, draw(7).i) and torch.equal(draw(7).j, draw(7).j)
    assert not torch.equal(draw(7).j, draw(8).j)
    sampled = draw(0)
    local = (sampled.i % 4) * 4 + sampled.j % 4
    freq = torch.bincount(local, minlength=16)[[1, 2, 3, 6, 7, 11]].double() / 3000
    assert torch.allclose(freq, torch.full((6,), 1 / 3, dtype=torch.double), atol=0.03)


def test_sampling_of_unequal_pairs():
    group_ids, labels = ragged_batch(seed=4)
    sampled = make_pairs(group_ids, labels, pairs="unequal", max_pairs_per_group=2)
    assert bool((labels[sampled.i] > labels[sampled.j]).all())


def test_difference_signals_against_scalar_math():
    scores = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    i, j = torch.tensor([0, 2]), torch.tensor([1, 0])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    s = scores.tolist()
    expected = {
        "logit": [s[0] - s[1], s[2] - s[0]],
        "prob": [sig(s[0]) - sig(s[1]), sig(s[2]) - sig(s[0])],
        "pair_prob": [sig(s[0] - s[1]), sig(s[2] - s[0])],
        "squared": [s[0] ** 2 - s[1] ** 2, s[2] ** 2 - s[0] ** 2],
    }
    heads = torch.stack([scores, 2 * scores], dim=1)
    assert torch.allclose(difference(heads, i, j)[:, 1], 2 * difference(scores, i, j))
    for signal, values in expected.items():
        got = difference(scores, i, j, signal=signal)
        assert torch.allclose(got, torch.tensor(values, dtype=torch.float64))
        assert torch.allclose(difference(scores, i, j, signal=signal, absolute=True), got.abs())


def test_pair_prob_identity():
    scores = torch.randn(40, dtype=torch.float64) * 3
    found = make_pairs(torch.zeros(40, dtype=torch.long))
    p_i, p_j = torch.sigmoid(scores[found.i]), torch.sigmoid(scores[found.j])
    identity = p_i * (1 - p_j) / (p_i * (1 - p_j) + p_j * (1 - p_i))
    got = difference(scores, found.i, found.j, signal="pair_prob")
    assert torch.allclose(got, identity)


def test_difference_is_stable_for_extreme_logits():
    scores = torch.tensor([1e4, -1e4, 0.0])
    found = make_pairs(torch.zeros(3, dtype=torch.long))
    for signal in ("logit", "prob", "pair_prob", "squared"):
        assert bool(torch.isfinite(difference(scores, found.i, found.j, signal=signal)).all())


def test_bad_inputs():
    with pytest.raises(TypeError, match="`group_ids` must be an integer tensor, got dtype"):
        make_pairs(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="`labels` are required when `pairs` is 'unequal'"):
        make_pairs(torch.tensor([0, 0]), pairs="unequal")
    with pytest.raises(ValueError, match=r"`labels` shape \(3,\) does not match `group_ids`"):
        make_pairs(torch.tensor([0, 0]), torch.zeros(3), pairs="unequal")
    with pytest.raises(ValueError, match="`labels` must not contain NaN"):
        make_pairs(torch.tensor([0, 0]), torch.tensor([0.0, math.nan]), pairs="unequal")
    with pytest.raises(ValueError, match="`pairs` must be one of 'all', 'unequal', got 'ties'"):
        make_pairs(torch.tensor([0, 0]), pairs="ties")
    with pytest.raises(ValueError, match="`max_pairs_per_group` must be >= 1, got 0"):
        make_pairs(torch.tensor([0, 0]), max_pairs_per_group=0)
    with pytest.raises(ValueError, match=r"`group_ids` must be 1-D \(N,\), got shape \(1, 2\)"):
        make_pairs(torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="`signal` must be one of"):
        difference(torch.zeros(2), torch.tensor([0]), torch.tensor([1]), signal="rank")
    with pytest.raises(
        TypeError, match="`j` must be an integer index tensor, got dtype torch.float32"
    ):
        difference(torch.zeros(2), torch.tensor([0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"`j` shape \(2,\) does not match `i` shape \(1,\)"):
        difference(torch.zeros(2), torch.tensor([0]), torch.tensor([1, 0]))


def test_content_cache_confirms_contents_not_just_the_digest():
    cache = ContentCache(2)
    ids = torch.tensor([0, 1, 2])
    cache.put(("all",), (ids, None), "plan")
    assert cache.get(("all",), ids.clone(), None) == "plan"
    assert cache.get(("all",), torch.tensor([2, 1, 0]), None) is None  # same sum
    assert cache.get(("unequal",), ids, None) is None
    cache.put(("b",), (ids, None), 1)
    cache.put(("c",), (ids, None), 2)
    assert cache.get(("all",), ids, None) is None  # least recently used was evicted
