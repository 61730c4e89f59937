"""Closed-form pair sums against enumerated pairs (an independent path) and a naive double loop."""

import itertools

import pytest
import torch

from distill import penalties
from distill.ranking import (
    pair_engine,
    pair_sums,
    pairwise_distillation_loss,
    quantile_ranking_loss,
)
from distill.ranking.pairs import ContentCache, make_pairs

CLOSED = [
    "squared",
    "absolute",
    {"name": "pinball", "tau": 0.3},
    {"name": "pinball", "tau": [0.1, 0.5, 0.95]},
    {"name": "huber", "beta": 0.4},
    {"name": "huber", "beta": 5.0},
    {"name": "smelu", "beta": 0.7},
    {"name": "smoothed_pinball", "tau": 0.8, "beta": 0.3},
    {"name": "smoothed_pinball", "tau": [0.2, 0.9], "beta": 1.5},
]


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    monkeypatch.setattr(pair_engine, "_plans", ContentCache(4))
    monkeypatch.setattr(pair_sums, "_plans", ContentCache(4))


def ragged(seed, *, num_groups=8, max_size=25, levels=3, integer=False):
    """Shuffled rows of ragged groups (sizes 1..max_size), labels with many ties."""
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, max_size + 1, (num_groups,), generator=gen)
    group_ids = torch.repeat_interleave(torch.randperm(100, generator=gen)[:num_groups], sizes)
    group_ids = group_ids[torch.randperm(len(group_ids), generator=gen)]
    labels = torch.randint(0, levels, (len(group_ids),), generator=gen).float()
    if integer:  # many exactly tied residuals
        student = torch.randint(-2, 3, (len(group_ids),), generator=gen).double()
        teacher = torch.randint(-2, 3, (len(group_ids),), generator=gen).double()
    else:
        student = torch.randn(len(group_ids), generator=gen, dtype=torch.float64)
        teacher = 2 * torch.randn(len(group_ids), generator=gen, dtype=torch.float64)
    return group_ids, labels, student.requires_grad_(True), teacher


def enumerated(
    student, teacher, group_ids, labels, *, penalty, signal, pairs, normalize, reduction
):
    """The same loss with every pair listed (the pair engine's ragged path)."""
    rho = penalties.get(penalty)
    h = {"logit": lambda x: x, "prob": torch.sigmoid, "squared": torch.square}[signal]
    u = h(teacher) - h(student)
    return pair_engine.pair_sum(
        (u,),
        group_ids,
        labels if pairs == "unequal" else None,
        term=lambda first, second: rho(first[0] - second[0]),
        pairs=pairs,
        normalize=normalize,
        reduction=reduction,
        path="ragged",
    )


def assert_same_loss_and_grad(closed, reference, inputs):
    assert torch.allclose(closed, reference, rtol=1e-10, atol=1e-12), (closed, reference)
    got, expected = (torch.autograd.grad(value, inputs) for value in (closed, reference))
    for a, b in zip(got, expected, strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), (a - b).abs().max()


@pytest.mark.parametrize("penalty", CLOSED, ids=str)
@pytest.mark.parametrize("pairs", ["all", "unequal"])
@pytest.mark.parametrize("normalize", ["pair", "group"])
def test_closed_form_equals_enumeration(penalty, pairs, normalize):
    for seed, signal, reduction in [
        (0, "logit", "mean"),
        (1, "prob", "sum"),
        (2, "squared", "mean"),
    ]:
        group_ids, labels, student, teacher = ragged(seed)
        options = dict(penalty=penalty, signal=signal, pairs=pairs, normalize=normalize)
        closed = pairwise_distillation_loss(
            student, teacher, group_ids, labels, reduction=reduction, **options
        )
        reference = enumerated(student, teacher, group_ids, labels, reduction=reduction, **options)
        assert_same_loss_and_grad(closed, reference, (student,))


@pytest.mark.parametrize("penalty", CLOSED, ids=str)
@pytest.mark.parametrize("case", ["ties", "groups_of_one", "equal_labels", "one_big_group"])
def test_closed_form_edge_layouts(penalty, case):
    """Tied residuals keep the enumerated subgradient (0 at r = 0 for |r| and pinball)."""
    group_ids, labels, student, teacher = ragged(3, integer=case == "ties")
    if case == "groups_of_one":
        group_ids = torch.arange(len(group_ids)) * 7
    elif case == "equal_labels":
        labels = torch.ones_like(labels)
    elif case == "one_big_group":
        group_ids, labels, student, teacher = ragged(4, num_groups=1, max_size=400, levels=5)
    for pairs, normalize in itertools.product(["all", "unequal"], ["pair", "group"]):
        options = dict(penalty=penalty, signal="logit", pairs=pairs, normalize=normalize)
        closed = pairwise_distillation_loss(student, teacher, group_ids, labels, **options)
        reference = enumerated(student, teacher, group_ids, labels, reduction="mean", **options)
        assert_same_loss_and_grad(closed, reference, (student,))


def test_no_pairs_and_no_items_give_zero_with_finite_gradients():
    for size in (0, 3):
        student = torch.randn(size, dtype=torch.float64, requires_grad=True)
        teacher = torch.randn(size, dtype=torch.float64)
        for penalty in ("absolute", "huber"):
            loss = pairwise_distillation_loss(
                student, teacher, torch.arange(size), torch.zeros(size), penalty=penalty
            )
            loss.backward()
            assert loss.item() == 0.0 and torch.isfinite(student.grad).all()
        student.grad = None
        loss = pairwise_distillation_loss(
            student,
            teacher,
            torch.zeros(size, dtype=torch.long),
            torch.zeros(size),
            penalty="squared",
            pairs="unequal",
        )
        loss.backward()
        assert loss.item() == 0.0 and torch.equal(student.grad, torch.zeros(size).double())


def naive_loss(student, teacher, group_ids, labels, rho, *, unequal):
    """Plain Python double loop over every pair, ``mean`` over pairs."""
    total, count = 0.0, 0
    rows = range(len(group_ids))
    for a in rows:
        for b in rows:
            if a >= b or group_ids[a] != group_ids[b]:
                continue
            first, second = a, b
            if unequal:
                if labels[a] == labels[b]:
                    continue
                first, second = (a, b) if labels[a] > labels[b] else (b, a)
            r = (teacher[first] - student[first]) - (teacher[second] - student[second])
            total, count = total + rho(r.reshape(1))[0], count + 1
    return total / count


@pytest.mark.parametrize("penalty", ["absolute", {"name": "pinball", "tau": 0.9}, "huber", "smelu"])
def test_closed_form_equals_naive_double_loop(penalty):
    group_ids, labels, student, teacher = ragged(5, num_groups=4, max_size=9)
    rho = penalties.get(penalty)
    for pairs in ("all", "unequal"):
        closed = pairwise_distillation_loss(
            student, teacher, group_ids, labels, penalty=penalty, pairs=pairs
        )
        reference = naive_loss(student, teacher, group_ids, labels, rho, unequal=pairs == "unequal")
        assert_same_loss_and_grad(closed, reference, (student,))


@pytest.mark.parametrize("penalty", ["absolute", {"name": "huber", "beta": 0.3}, "smelu"])
def test_closed_form_gradcheck(penalty):
    group_ids, labels, student, teacher = ragged(6, num_groups=3, max_size=12)
    for pairs in ("all", "unequal"):
        assert torch.autograd.gradcheck(
            lambda s, pairs=pairs: pairwise_distillation_loss(
                s, teacher, group_ids, labels, penalty=penalty, pairs=pairs, normalize="group"
            ),
            (student,),
        )


@pytest.mark.parametrize("pairs", ["all", "unequal"])
@pytest.mark.parametrize("normalize", ["pair", "group"])
def test_quantile_heads_closed_form_equals_enumeration(pairs, normalize):
    group_ids, labels, _, teacher = ragged(7)
    heads = torch.randn(len(group_ids), 3, dtype=torch.float64, requires_grad=True)
    taus = [0.1, 0.5, 0.8]
    options = dict(taus=taus, pairs=pairs, normalize=normalize, signal="prob")
    closed = quantile_ranking_loss(heads, teacher, group_ids, labels, **options)
    per_pair = quantile_ranking_loss(heads, teacher, group_ids, labels, reduction="none", **options)
    counts = torch.bincount(make_pairs(group_ids, labels, pairs=pairs).group)
    denominator = len(per_pair) if normalize == "pair" else int((counts > 0).sum())
    assert_same_loss_and_grad(closed, per_pair.sum() / denominator, (heads,))


def test_float32_scores_give_float32_loss_close_to_float64():
    group_ids, _, student, teacher = ragged(8)
    for penalty in ("absolute", "huber"):
        low = pairwise_distillation_loss(
            student.float(), teacher.float(), group_ids, penalty=penalty
        )
        high = pairwise_distillation_loss(student, teacher, group_ids, penalty=penalty)
        assert low.dtype == torch.float32
        assert torch.allclose(low.double(), high, rtol=1e-5)


@pytest.mark.parametrize(
    ("penalty", "expected"),
    [
        ("squared", pair_sums.PairForm(square=1.0)),
        ({"name": "pinball", "tau": [0.2, 0.4]}, pair_sums.PairForm(absolute=0.5, linear=(-0.2,))),
        ("log_cosh", None),
        ({"name": "smoothed_pinball", "tau": 0.5, "smoother": "softplus"}, None),
        ({"name": "gsmelu", "alpha": 1, "beta": 1, "g_minus": 0, "g_plus": 1}, None),
    ],
    ids=str,
)
def test_penalty_form_recognises_closed_penalties_only(penalty, expected):
    form = pair_sums.penalty_form(penalties.get(penalty))
    if expected is None:
        assert form is None
    else:
        assert form._replace(linear=tuple(round(v, 12) for v in form.linear)) == expected


def test_auto_uses_closed_form_and_enumerates_the_rest(monkeypatch):
    group_ids, labels, student, teacher = ragged(9)

    def no_enumeration(*args, **kwargs):
        raise AssertionError("pairs were enumerated")

    monkeypatch.setattr(pair_engine, "_plan", no_enumeration)
    for penalty in CLOSED:
        pairwise_distillation_loss(student, teacher, group_ids, labels, penalty=penalty)
    enumerate_cases = [
        dict(penalty="log_cosh"),
        dict(penalty="absolute", signal="pair_prob"),
        dict(penalty="absolute", absolute=True),
        dict(penalty="absolute", reduction="none"),
    ]
    for options in enumerate_cases:
        with pytest.raises(AssertionError, match="pairs were enumerated"):
            pairwise_distillation_loss(student, teacher, group_ids, labels, **options)
    explicit = make_pairs(group_ids, max_pairs_per_group=5, generator=torch.Generator())
    monkeypatch.undo()
    sampled = pairwise_distillation_loss(
        student, teacher, group_ids, penalty="absolute", pairs=explicit
    )
    by_hand = (teacher - student)[explicit.i] - (teacher - student)[explicit.j]
    assert torch.allclose(sampled, by_hand.abs().mean())


def test_closed_path_that_does_not_apply_is_an_error():
    group_ids, _, student, teacher = ragged(10)
    with pytest.raises(ValueError, match="`path` 'closed' needs a `form`.*reduction='none'"):
        pair_engine.pair_sum(
            (teacher - student,),
            group_ids,
            term=lambda first, second: (first[0] - second[0]).abs(),
            form=pair_sums.PairForm(absolute=1.0),
            reduction="none",
            path="closed",
        )
