import math

import pytest
import torch

from distill import penalties
from distill.ranking import (
    pair_agreement,
    pair_engine,
    pairwise_distillation_loss,
    pairwise_logistic_loss,
    quantile_distillation_loss,
    quantile_ranking_loss,
)
from distill.ranking.pairs import ContentCache, make_pairs

PENALTIES = [
    "squared",
    "absolute",
    {"name": "pinball", "tau": 0.3},
    {"name": "pinball", "tau": [0.1, 0.5, 0.9]},
    {"name": "huber", "beta": 0.5},
    "log_cosh",
    {"name": "gsmelu", "alpha": 1.0, "beta": 0.5, "g_minus": -0.3, "g_plus": 1.0, "center": True},
    {"name": "smoothed_pinball", "tau": 0.7},
]


def naive_groups(group_ids, labels=None, unequal=False):
    """Double loop over groups: per group, the list of (first, second) item rows."""
    out = []
    for gid in sorted(set(group_ids.tolist())):
        rows = [k for k in range(len(group_ids)) if group_ids[k] == gid]
        pairs = []
        for pos, a in enumerate(rows):
            for b in rows[pos + 1 :]:
                if unequal and labels[a] == labels[b]:
                    continue
                pairs.append((b, a) if unequal and labels[a] < labels[b] else (a, b))
        out.append(pairs)
    return out


def naive_delta(s, a, b, signal, absolute=False):
    """Independent per-pair signal formulas (FORMULAS §5), pair_prob via its identity."""
    sa, sb = s[a], s[b]
    pa, pb = 1 / (1 + torch.exp(-sa)), 1 / (1 + torch.exp(-sb))
    delta = {
        "logit": sa - sb,
        "prob": pa - pb,
        "pair_prob": pa * (1 - pb) / (pa * (1 - pb) + pb * (1 - pa)),
        "squared": sa**2 - sb**2,
    }[signal]
    return delta.abs() if absolute else delta


def naive_loss(s, t, groups, rho, signal, normalize="pair", absolute=False):
    means, flat = [], []
    for pairs in groups:
        if not pairs:
            continue
        a, b = (torch.tensor(v) for v in zip(*pairs, strict=True))
        r = naive_delta(t, a, b, signal, absolute) - naive_delta(s, a, b, signal, absolute)
        values = rho(r)
        flat.append(values)
        means.append(values.mean())
    if not flat:
        return s.sum() * 0
    return torch.cat(flat).mean() if normalize == "pair" else torch.stack(means).mean()


def batch(seed, max_size=50, num_groups=6):
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, max_size + 1, (num_groups,), generator=gen)
    group_ids = torch.repeat_interleave(torch.randperm(99, generator=gen)[:num_groups] - 40, sizes)
    group_ids = group_ids[torch.randperm(len(group_ids), generator=gen)]
    labels = torch.randint(0, 4, (len(group_ids),), generator=gen).float()
    student = torch.randn(len(group_ids), generator=gen, dtype=torch.float64) * 2
    teacher = torch.randn(len(group_ids), generator=gen, dtype=torch.float64) * 2
    return group_ids, labels, student.requires_grad_(True), teacher


@pytest.fixture(params=["dense", "ragged"])
def path(request, monkeypatch):
    """Force every group through one path of the pair engine."""
    monkeypatch.setattr(pair_engine, "_plans", ContentCache(4))
    monkeypatch.setitem(pair_engine.DENSE_MIN_SIZE, "cpu", 2 if request.param == "dense" else None)
    return request.param


@pytest.mark.parametrize("signal", ["logit", "prob", "pair_prob", "squared"])
@pytest.mark.parametrize("pairs", ["all", "unequal"])
def test_every_penalty_matches_naive_loop(path, signal, pairs):
    group_ids, labels, student, teacher = batch(seed=len(signal) + len(pairs))
    groups = naive_groups(group_ids, labels, unequal=pairs == "unequal")
    for spec in PENALTIES:
        rho = penalties.get(spec)
        got = pairwise_distillation_loss(
            student, teacher, group_ids, labels, penalty=spec, signal=signal, pairs=pairs
        )
        expected = naive_loss(student, teacher, groups, rho, signal)
        assert torch.allclose(got, expected), spec
        grad, expected_grad = (torch.autograd.grad(v, student)[0] for v in (got, expected))
        assert torch.allclose(grad, expected_grad), spec


@pytest.mark.parametrize("signal", ["logit", "pair_prob"])
def test_absolute_signal_and_group_normalisation(path, signal):
    group_ids, _, student, teacher = batch(seed=3, max_size=20)
    groups = naive_groups(group_ids)
    got = pairwise_distillation_loss(
        student,
        teacher,
        group_ids,
        penalty="huber",
        signal=signal,
        absolute=True,
        normalize="group",
    )
    rho = penalties.get("huber")
    expected = naive_loss(student, teacher, groups, rho, signal, "group", absolute=True)
    assert torch.allclose(got, expected)


def test_golden_vector():
    scores = torch.tensor([0.0, 3.0, 1.0, 2.0])
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0])
    group = torch.zeros(4, dtype=torch.long)

    def loss(penalty):
        return pairwise_distillation_loss(
            scores, labels, group, labels, penalty=penalty, pairs="unequal", reduction="sum"
        )

    assert loss({"name": "pinball", "tau": 0.5}).item() == pytest.approx(3.0)
    assert loss({"name": "pinball", "tau": 1.0}).item() == pytest.approx(5.0)
    squared_pinball = {"name": "smoothed_pinball", "tau": 0.5, "smoother": "relu2"}
    assert loss(squared_pinball).item() == pytest.approx(7.0)


def test_gradcheck_float64():
    group_ids, labels, student, teacher = batch(seed=4, max_size=8, num_groups=3)
    for signal in ("logit", "pair_prob"):
        assert torch.autograd.gradcheck(
            lambda s, sig=signal: pairwise_distillation_loss(
                s, teacher, group_ids, labels, penalty="log_cosh", signal=sig, pairs="unequal"
            ),
            (student,),
        )


def test_none_and_sum_reductions():
    group_ids, _, student, teacher = batch(seed=5, max_size=10)
    per_pair = pairwise_distillation_loss(student, teacher, group_ids, reduction="none")
    found = make_pairs(group_ids)
    expected = ((teacher[found.i] - teacher[found.j]) - (student[found.i] - student[found.j])) ** 2
    assert torch.allclose(per_pair, expected)
    total = pairwise_distillation_loss(student, teacher, group_ids, reduction="sum")
    assert torch.allclose(per_pair.sum(), total)


def test_explicit_sampled_pairs():
    group_ids, labels, student, teacher = batch(seed=6)
    sampled = make_pairs(group_ids, labels, pairs="unequal", max_pairs_per_group=10)
    got = pairwise_distillation_loss(student, teacher, group_ids, pairs=sampled, penalty="absolute")
    residual = (teacher[sampled.i] - teacher[sampled.j]) - (student[sampled.i] - student[sampled.j])
    assert torch.allclose(got, residual.abs().mean())


@pytest.mark.parametrize("path_name", ["dense", "ragged"])
def test_no_pairs_is_zero_with_finite_grads(path_name, monkeypatch):
    monkeypatch.setattr(pair_engine, "_plans", ContentCache(4))
    monkeypatch.setitem(pair_engine.DENSE_MIN_SIZE, "cpu", 2 if path_name == "dense" else None)
    student = torch.randn(5, requires_grad=True)
    cases = [
        (torch.arange(5), None, "all"),
        (torch.zeros(5, dtype=torch.long), torch.ones(5), "unequal"),
    ]
    for group_ids, labels, pairs in cases:
        loss = pairwise_distillation_loss(
            student, torch.randn(5), group_ids, labels, penalty="log_cosh", pairs=pairs
        )
        (grad,) = torch.autograd.grad(loss, student)
        assert loss.item() == 0.0
        assert bool(torch.isfinite(grad).all())


def test_extreme_logits_and_float32_match_float64():
    group_ids, _, student, teacher = batch(seed=7, max_size=30)
    big = pairwise_distillation_loss(
        student.detach() * 1e4, teacher * 1e4, group_ids, penalty="log_cosh", signal="pair_prob"
    )
    assert math.isfinite(big.item())
    for signal in ("logit", "prob", "pair_prob"):
        double = pairwise_distillation_loss(student, teacher, group_ids, signal=signal)
        single = pairwise_distillation_loss(
            student.float(), teacher.float(), group_ids, signal=signal
        )
        assert single.dtype == torch.float32
        assert torch.allclose(single.double(), double, rtol=1e-5)
        half = pairwise_distillation_loss(
            student.bfloat16(), teacher.bfloat16(), group_ids, signal=signal
        )
        assert half.dtype == torch.bfloat16
        assert torch.allclose(half.double(), double, rtol=0.05)


def naive_bce(logit, target):
    return -(
        target * torch.log(torch.sigmoid(logit)) + (1 - target) * torch.log(torch.sigmoid(-logit))
    )


@pytest.mark.parametrize("ties", ["drop", "half"])
def test_pairwise_logistic_matches_naive_ranknet(path, ties):
    group_ids, labels, student, _ = batch(seed=8, max_size=25)
    values = []
    for pairs in naive_groups(group_ids):
        for a, b in pairs:
            if ties == "drop" and labels[a] == labels[b]:
                continue
            target = 1.0 if labels[a] > labels[b] else (0.5 if labels[a] == labels[b] else 0.0)
            if ties == "drop" and target == 0.0:
                a, b, target = b, a, 1.0
            values.append(naive_bce(student[a] - student[b], torch.tensor(target)))
    got = pairwise_logistic_loss(student, group_ids, labels, ties=ties)
    expected = torch.stack(values).mean()
    assert torch.allclose(got, expected)
    grad, expected_grad = (torch.autograd.grad(v, student)[0] for v in (got, expected))
    assert torch.allclose(grad, expected_grad)


@pytest.mark.parametrize("signal", ["logit", "prob"])
def test_quantile_ranking_loss_sums_heads(path, signal):
    group_ids, labels, _, teacher = batch(seed=9, max_size=20)
    heads = torch.randn(len(group_ids), 3, dtype=torch.float64, requires_grad=True)
    taus = [0.1, 0.5, 0.8]
    groups = naive_groups(group_ids, labels, unequal=True)
    expected = sum(
        naive_loss(
            heads[:, k], teacher, groups, penalties.get({"name": "pinball", "tau": tau}), signal
        )
        for k, tau in enumerate(taus)
    )
    got = quantile_ranking_loss(
        heads, teacher, group_ids, labels, taus=taus, signal=signal, pairs="unequal"
    )
    assert torch.allclose(got, expected)
    grad, expected_grad = (torch.autograd.grad(v, heads)[0] for v in (got, expected))
    assert torch.allclose(grad, expected_grad)


def test_single_median_head_is_half_l1():
    group_ids, _, student, teacher = batch(seed=10, max_size=15)
    got = quantile_ranking_loss(student[:, None], teacher, group_ids, taus=[0.5])
    l1 = pairwise_distillation_loss(student, teacher, group_ids, penalty="absolute")
    assert torch.allclose(got, 0.5 * l1)


def test_quantile_distillation_loss_pointwise():
    heads = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    teacher = torch.tensor([1.0, 0.0])
    # item 0: r = (1, 0) -> 0.2*1 + 0; item 1: r = (-2, 1) -> 0.8*2 + 0.9*1
    got = quantile_distillation_loss(heads, teacher, taus=[0.2, 0.9], reduction="none")
    assert torch.allclose(got, torch.tensor([0.2, 2.5]))
    prob = quantile_distillation_loss(heads, teacher, taus=[0.2, 0.9], signal="prob")
    r = torch.sigmoid(teacher)[:, None] - torch.sigmoid(heads)
    tau = torch.tensor([0.2, 0.9])
    expected = torch.where(r > 0, tau * r, (tau - 1) * r).sum(1).mean()
    assert torch.allclose(prob, expected)


def test_pair_agreement_counts_pairs_within_threshold():
    group_ids, _, student, teacher = batch(seed=11, max_size=20)
    inside, total = 0, 0
    for pairs in naive_groups(group_ids):
        for a, b in pairs:
            residual = (teacher[a] - teacher[b]) - (student[a] - student[b]).detach()
            inside += int(abs(residual.item()) <= 1.0)
            total += 1
    assert pair_agreement(student, teacher, group_ids, 1.0) == pytest.approx(inside / total)
    assert pair_agreement(teacher, teacher, group_ids, 0.0) == 1.0
    assert pair_agreement(student, teacher, torch.arange(len(student)), 0.1) == 1.0


def test_bad_inputs():
    s, t, g = torch.zeros(3), torch.zeros(3), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"`teacher_scores` shape \(2,\) does not match"):
        pairwise_distillation_loss(s, torch.zeros(2), g)
    with pytest.raises(
        ValueError, match="`group_ids` length 2 does not match `student_scores` length 3"
    ):
        pairwise_distillation_loss(s, t, g[:2])
    with pytest.raises(ValueError, match=r"`student_scores` must be finite, got 1 NaN/inf value"):
        pairwise_distillation_loss(torch.tensor([0.0, math.nan, 1.0]), t, g)
    with pytest.raises(ValueError, match="`teacher_scores` must be finite"):
        pairwise_distillation_loss(s, torch.tensor([0.0, math.inf, 1.0]), g)
    with pytest.raises(
        TypeError, match="`group_ids` must be an integer tensor, got dtype torch.float32"
    ):
        pairwise_distillation_loss(s, t, g.float())
    with pytest.raises(ValueError, match="`labels` are required when `pairs` is 'unequal'"):
        pairwise_distillation_loss(s, t, g, pairs="unequal")
    with pytest.raises(ValueError, match=r"`labels` shape \(2,\) does not match `group_ids` shape"):
        pairwise_distillation_loss(s, t, g, torch.zeros(2), pairs="unequal")
    with pytest.raises(ValueError, match="`penalty` must be one of"):
        pairwise_distillation_loss(s, t, g, penalty="cubic")
    with pytest.raises(ValueError, match="`signal` must be one of"):
        pairwise_distillation_loss(s, t, g, signal="ranks")
    with pytest.raises(ValueError, match=r"`student_scores` must have shape \(N,\), got \(3, 1\)"):
        pairwise_distillation_loss(s[:, None], t[:, None], g)
    with pytest.raises(TypeError, match="`scores` must be a floating-point tensor"):
        pairwise_logistic_loss(torch.zeros(3, dtype=torch.long), g, t)
    with pytest.raises(ValueError, match="`ties` must be one of 'drop', 'half', got 'skip'"):
        pairwise_logistic_loss(s, g, t, ties="skip")
    with pytest.raises(
        ValueError, match="`taus` has 2 quantiles but `quantile_scores` has 1 heads"
    ):
        quantile_ranking_loss(s[:, None], t, g, taus=[0.1, 0.9])
    with pytest.raises(ValueError, match=r"`taus` must be in \[0, 1\], got 1.5"):
        quantile_distillation_loss(s[:, None], t, taus=[1.5])
    with pytest.raises(ValueError, match=r"`threshold` must be in \[0, inf\), got -1"):
        pair_agreement(s, t, g, -1.0)
