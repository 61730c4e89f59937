import collections
import itertools
import math

import pytest
import scipy.stats
import torch

from distill.ranking import pair_sampling
from distill.ranking.pairs import ContentCache, difference, group_layout, make_pairs


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


def sampled(group_ids, labels=None, bound=5, seed=0):
    kind = "all" if labels is None else "unequal"
    gen = torch.Generator().manual_seed(seed)
    return make_pairs(group_ids, labels, pairs=kind, max_pairs_per_group=bound, generator=gen)


@pytest.mark.parametrize("unequal", [False, True])
@pytest.mark.parametrize("bound", [2, 5, 30])
def test_sampling_is_a_capped_distinct_subsequence_of_the_naive_pairs(unequal, bound):
    # groups of 1..14 items: 0..91 pairs, so all three regimes (P <= b, b < P <= 2b, P > 2b)
    group_ids, labels = ragged_batch(num_groups=40, max_size=14, seed=bound)
    labels = labels if unequal else None
    expected = naive_pairs(group_ids, None if labels is None else labels.tolist(), unequal)
    got = as_list(sampled(group_ids, labels, bound))
    assert len(set(got)) == len(got)
    position = {pair: k for k, pair in enumerate(expected)}
    assert [position[pair] for pair in got] == sorted(position[pair] for pair in got)
    totals = torch.bincount(torch.tensor([g for _, _, g in expected]), minlength=40)
    counts = torch.bincount(torch.tensor([g for _, _, g in got]), minlength=40)
    assert counts.tolist() == totals.clamp(max=bound).tolist()
    assert (totals > 2 * bound).any() and ((totals > bound) & (totals <= 2 * bound)).any()
    small = {g for g, total in enumerate(totals.tolist()) if total <= bound}
    assert [p for p in got if p[2] in small] == [p for p in expected if p[2] in small]


@pytest.mark.parametrize("unequal", [False, True])
def test_bound_at_least_every_group_total_keeps_all_pairs(unequal):
    group_ids, labels = ragged_batch(num_groups=15, max_size=8, seed=5)
    labels = labels if unequal else None
    kind = "unequal" if unequal else "all"
    assert as_list(sampled(group_ids, labels, bound=28)) == as_list(
        make_pairs(group_ids, labels, pairs=kind)
    )


def test_sampling_edge_cases():
    assert len(sampled(torch.tensor([4, 1, 2])).i) == 0  # singletons
    assert len(sampled(torch.zeros(0, dtype=torch.long)).i) == 0
    ties = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    found = sampled(ties, torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, 0.0, 2.0, 0.0]), bound=1)
    assert as_list(found) in ([(4, 5, 1)], [(4, 7, 1)], [(6, 5, 1)], [(6, 7, 1)])


def test_sampling_is_reproducible():
    group_ids, labels = ragged_batch(num_groups=30, max_size=14, seed=6)
    for kind_labels in (None, labels):
        assert as_list(sampled(group_ids, kind_labels, seed=3)) == as_list(
            sampled(group_ids, kind_labels, seed=3)
        )
        assert as_list(sampled(group_ids, kind_labels, seed=3)) != as_list(
            sampled(group_ids, kind_labels, seed=4)
        )


def test_sampling_does_not_list_the_pairs_of_a_big_group():
    group_ids = torch.zeros(300_000, dtype=torch.long)  # 4.5e10 pairs: listing them cannot fit
    found = sampled(group_ids, bound=50)
    assert len(set(zip(found.i.tolist(), found.j.tolist(), strict=True))) == 50
    assert bool((found.i < found.j).all())


def subset_pvalue(subsets, num_pairs, bound):
    """Chi-square p-value of the observed k-subsets against the uniform law over all of them."""
    observed = collections.Counter(subsets)
    support = list(itertools.combinations(range(num_pairs), bound))
    assert set(observed) <= set(support)
    counts = [observed[subset] for subset in support]
    return scipy.stats.chisquare(counts).pvalue


def subsets_of_copies(found, copies, size, local_pairs):
    """The sampled pair subset of each copy of one group (copies of ``size`` items each)."""
    index = {pair: k for k, pair in enumerate(local_pairs)}
    chosen = [[] for _ in range(copies)]
    for a, b, g in as_list(found):
        chosen[g].append(index[(a - g * size, b - g * size)])
    return [tuple(sorted(c)) for c in chosen]


UNIFORMITY_CASES = [
    # (labels of one group, bound): "all" 6 pairs keep 2 (drawn) / 3 (keyed);
    # "unequal" 8 pairs keep 3 (drawn) / 4 (keyed)
    (None, 2),
    (None, 3),
    ([2.0, 1.0, 1.0, 0.0, 0.0], 3),
    ([0.0, 1.0, 2.0, 0.0, 1.0], 4),
]


@pytest.mark.parametrize(("group_labels", "bound"), UNIFORMITY_CASES)
def test_sampled_subsets_are_uniform(group_labels, bound):
    size = 4 if group_labels is None else 5
    labels = None if group_labels is None else torch.tensor(group_labels)
    one_group = torch.zeros(size, dtype=torch.long)
    local = [(a, b) for a, b, _ in naive_pairs(one_group, group_labels, labels is not None)]
    copies = 40 * math.comb(len(local), bound)
    group_ids = torch.arange(copies).repeat_interleave(size)
    labels = None if labels is None else labels.repeat(copies)
    found = sampled(group_ids, labels, bound, seed=11)
    subsets = subsets_of_copies(found, copies, size, local)
    assert subset_pvalue(subsets, len(local), bound) > 1e-4


def test_uniformity_check_rejects_a_biased_sampler():
    weights = torch.arange(1.0, 7.0)  # pair k drawn with weight k + 1, without replacement
    gen = torch.Generator().manual_seed(0)
    draws = torch.multinomial(weights.expand(600, 6), 2, generator=gen)
    subsets = [tuple(sorted(row)) for row in draws.tolist()]
    assert subset_pvalue(subsets, 6, 2) < 1e-4


def test_later_draw_rounds_stay_exact_and_uniform(monkeypatch):
    # one draw per round: every group needs many rounds (sequential sampling)
    monkeypatch.setattr(pair_sampling, "_draws_per_round", lambda totals, limit: totals * 0 + 1)
    size, bound, copies = 4, 2, 600
    found = sampled(torch.arange(copies).repeat_interleave(size), bound=bound, seed=2)
    local = [(a, b) for a, b, _ in naive_pairs(torch.zeros(size, dtype=torch.long))]
    assert torch.bincount(found.group).tolist() == [bound] * copies
    assert subset_pvalue(subsets_of_copies(found, copies, size, local), 6, bound) > 1e-4


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
