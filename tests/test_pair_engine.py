import pytest
import torch

from distill.ranking import pair_engine
from distill.ranking.pair_engine import bucket_size, pair_counts, pair_sum
from distill.ranking.pairs import ContentCache, make_pairs


def ragged(seed, max_size=50, num_groups=10, heads=None):
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, max_size + 1, (num_groups,), generator=gen)
    group_ids = torch.repeat_interleave(torch.randperm(500, generator=gen)[:num_groups], sizes)
    group_ids = group_ids[torch.randperm(len(group_ids), generator=gen)]
    labels = torch.randint(0, 3, (len(group_ids),), generator=gen).float()  # many ties
    shape = (len(group_ids),) if heads is None else (len(group_ids), heads)
    first = torch.randn(shape, generator=gen, dtype=torch.float64)
    second = torch.randn(len(group_ids), generator=gen, dtype=torch.float64)
    return group_ids, labels, first, second


def term(first, second):
    """Asymmetric in the pair order and using both items, so orientation errors show."""
    return 0.7 * torch.relu(first[0] - second[0]) + torch.sigmoid(first[1] * second[1])


def head_term(first, second):
    """One value per pair: the K heads summed."""
    return term(first, second).sum(-1)


def naive(group_ids, labels, x, y, *, unequal, normalize):
    """Double loop over groups: per-group lists of per-pair terms."""
    per_group = []
    for gid in sorted(set(group_ids.tolist())):
        rows = [k for k in range(len(group_ids)) if group_ids[k] == gid]
        values = []
        for a_pos, a in enumerate(rows):
            for b in rows[a_pos + 1 :]:
                first, second = a, b
                if unequal:
                    if labels[a] == labels[b]:
                        continue
                    if labels[a] < labels[b]:
                        first, second = b, a
                values.append(term((x[first], y[first]), (x[second], y[second])))
        per_group.append(values)
    if normalize == "pair":
        flat = [v for values in per_group for v in values]
        return sum(flat) / max(len(flat), 1) if flat else x.sum() * 0
    means = [sum(values) / len(values) for values in per_group if values]
    return sum(means) / len(means) if means else x.sum() * 0


@pytest.fixture(autouse=True)
def fresh_plan_cache(monkeypatch):
    monkeypatch.setattr(pair_engine, "_plans", ContentCache(4))


@pytest.mark.parametrize("path", ["dense", "ragged", "auto"])
@pytest.mark.parametrize("pairs", ["all", "unequal"])
@pytest.mark.parametrize("normalize", ["pair", "group"])
def test_paths_match_naive_loop_values_and_gradients(path, pairs, normalize):
    group_ids, labels, x, y = ragged(seed=len(path) + len(pairs), max_size=30, num_groups=6)
    x.requires_grad_(True)
    got = pair_sum(
        (x, y), group_ids, labels, term=term, pairs=pairs, normalize=normalize, path=path
    )
    expected = naive(group_ids, labels, x, y, unequal=pairs == "unequal", normalize=normalize)
    assert torch.allclose(got, expected)
    grad, expected_grad = (torch.autograd.grad(v, x)[0] for v in (got, expected))
    assert torch.allclose(grad, expected_grad)


def test_auto_mixes_dense_and_ragged_groups(monkeypatch):
    monkeypatch.setitem(pair_engine.DENSE_MIN_SIZE, "cpu", 20)
    group_ids, labels, x, y = ragged(seed=5, max_size=40, num_groups=8)
    plan = pair_engine._plan(group_ids, labels, "unequal", "pair", x.dtype, "auto")
    assert plan.blocks and len(plan.pairs.i) > 0
    got = pair_sum((x, y), group_ids, labels, term=term, pairs="unequal")
    assert torch.allclose(got, naive(group_ids, labels, x, y, unequal=True, normalize="pair"))


@pytest.mark.parametrize("path", ["dense", "ragged"])
def test_multi_head_items_and_sum_reduction(path):
    group_ids, _, x, y = ragged(seed=7, max_size=12, num_groups=5, heads=3)
    got = pair_sum((x, y.unsqueeze(-1)), group_ids, term=head_term, reduction="sum", path=path)
    pairs = make_pairs(group_ids)
    expected = head_term((x[pairs.i], y[pairs.i, None]), (x[pairs.j], y[pairs.j, None])).sum()
    assert torch.allclose(got, expected)


def test_none_reduction_is_per_pair_in_make_pairs_order():
    group_ids, _, x, y = ragged(seed=8, max_size=10)
    found = make_pairs(group_ids)
    per_pair = pair_sum((x, y), group_ids, term=term, reduction="none")
    expected = torch.stack(
        [term((x[a], y[a]), (x[b], y[b])) for a, b in zip(*found[:2], strict=True)]
    )
    assert torch.allclose(per_pair, expected)
    total = pair_sum((x, y), group_ids, term=term, reduction="sum", path="dense")
    assert torch.allclose(per_pair.sum(), total)
    grouped = pair_sum((x, y), group_ids, term=term, normalize="group", reduction="none")
    mean = pair_sum((x, y), group_ids, term=term, normalize="group")
    assert torch.allclose(grouped.sum() / (torch.bincount(found.group) > 0).sum(), mean)


def test_explicit_pairs():
    group_ids, _, x, y = ragged(seed=9, max_size=20)
    sampled = make_pairs(group_ids, max_pairs_per_group=4)
    got = pair_sum((x, y), group_ids, term=term, pairs=sampled)
    values = torch.stack(
        [term((x[a], y[a]), (x[b], y[b])) for a, b in zip(*sampled[:2], strict=True)]
    )
    assert torch.allclose(got, values.mean())


@pytest.mark.parametrize("path", ["dense", "ragged"])
def test_no_pairs_gives_zero_with_finite_gradients(path):
    x = torch.randn(4, requires_grad=True)
    for group_ids, labels in [
        (torch.arange(4), None),
        (torch.zeros(4, dtype=torch.long), torch.ones(4)),
    ]:
        pairs = "all" if labels is None else "unequal"
        loss = pair_sum(
            (x,), group_ids, labels, term=lambda a, b: a[0] - b[0], pairs=pairs, path=path
        )
        (grad,) = torch.autograd.grad(loss, x)
        assert loss.item() == 0.0
        assert bool(torch.isfinite(grad).all())


def test_bucket_size_bounds_padding():
    sizes = torch.arange(1, 3000)
    padded = bucket_size(sizes)
    assert bool((padded >= sizes).all())
    assert bool((padded[:8] == sizes[:8]).all())
    assert bool((padded <= sizes * 1.25).all())
    assert len(torch.unique(padded)) < 60


def test_pair_counts_against_naive():
    group_ids, labels, _, _ = ragged(seed=11, max_size=15)
    counts = torch.bincount(make_pairs(group_ids, labels, pairs="unequal").group)
    got = pair_counts(group_ids, labels)
    assert got.tolist() == counts.tolist() + [0] * (len(got) - len(counts))
    sizes = torch.unique(group_ids, return_counts=True)[1]
    assert pair_counts(group_ids, None).tolist() == (sizes * (sizes - 1) // 2).tolist()


def test_auto_is_ragged_on_cpu():
    group_ids, labels, x, _ = ragged(seed=12, max_size=200, num_groups=3)
    plan = pair_engine._plan(group_ids, labels, "all", "pair", x.dtype, "auto")
    assert plan.blocks == [] and len(plan.pairs.i) == len(make_pairs(group_ids).i)


def test_plan_is_cached_by_content():
    group_ids = torch.tensor([0, 0, 1, 1, 1])
    x = torch.randn(5)
    pair_sum((x,), group_ids, term=lambda a, b: a[0] - b[0])
    pair_sum((x,), group_ids.clone(), term=lambda a, b: a[0] - b[0])
    assert len(pair_engine._plans.entries) == 1


def test_bad_options():
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="`normalize` must be one of 'pair', 'group', got 'item'"):
        pair_sum((x,), torch.zeros(2, dtype=torch.long), term=term, normalize="item")
    with pytest.raises(ValueError, match="`path` must be one of"):
        pair_sum((x,), torch.zeros(2, dtype=torch.long), term=term, path="gpu")
