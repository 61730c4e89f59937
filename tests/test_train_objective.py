import itertools
import math

import numpy as np
import pytest
import torch

from distill import ranking
from distill.models import MLP
from distill.train import (
    BinaryKDTerm,
    KDTerm,
    LabelsTerm,
    LogitMatchingTerm,
    Objective,
    PairwiseTerm,
    PointwiseTerm,
    QuantileHeadsTerm,
    make_term,
)
from distill.train.batches import Batch


def log_softmax_np(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def bce(a, b):
    return -(a * math.log(b) + (1 - a) * math.log(1 - b))


def pairs_of(groups):
    return [
        (i, j) for i, j in itertools.combinations(range(len(groups)), 2) if groups[i] == groups[j]
    ]


@pytest.fixture
def ranked():
    generator = torch.Generator().manual_seed(5)
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    labels = torch.tensor([2.0, 0.0, 1.0, 1.0, 1.0, 0.0, 3.0, 1.0, 0.0])
    student = torch.randn(9, generator=generator, dtype=torch.float64)
    teacher = torch.randn(9, generator=generator, dtype=torch.float64)
    batch = Batch(
        features=torch.zeros(9, 1), labels=labels.double(), ids=torch.arange(9), groups=groups
    )
    return student, teacher, batch


def test_labels_ce_and_bce_match_numpy():
    z = torch.randn(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 3, 1, 1, 2, 0])
    batch = Batch(features=z, labels=y, ids=torch.arange(6))
    expected = -np.mean(log_softmax_np(z.numpy())[np.arange(6), y.numpy()])
    assert float(LabelsTerm("ce")(z, batch, None)) == pytest.approx(expected)
    s = torch.randn(6, dtype=torch.float64)
    clicks = torch.tensor([1.0, 0, 0, 1, 0, 1], dtype=torch.float64)
    batch = Batch(features=z, labels=clicks, ids=torch.arange(6))
    expected = np.mean([bce(float(c), sigmoid(float(v))) for v, c in zip(s, clicks, strict=True)])
    assert float(LabelsTerm("bce")(s, batch, None)) == pytest.approx(expected)


def test_labels_pairwise_logistic_matches_ranknet_loop(ranked):
    scores, _, batch = ranked
    losses = [
        bce(
            1.0 if batch.labels[i] > batch.labels[j] else 0.0, sigmoid(float(scores[i] - scores[j]))
        )
        for i, j in pairs_of(batch.groups.tolist())
        if batch.labels[i] != batch.labels[j]
    ]
    term = LabelsTerm("pairwise_logistic")
    assert float(term(scores, batch, None)) == pytest.approx(np.mean(losses))


def test_kd_term_matches_hinton_formula():
    z = torch.randn(5, 3, dtype=torch.float64)
    v = torch.randn(5, 3, dtype=torch.float64)
    y = torch.tensor([0, 2, 1, 1, 0])
    batch = Batch(features=z, labels=y, ids=torch.arange(5))
    t, a = 3.0, 0.7
    p = np.exp(log_softmax_np(v.numpy() / t))
    kl = np.sum(p * (np.log(p) - log_softmax_np(z.numpy() / t))) / 5
    ce = -np.mean(log_softmax_np(z.numpy())[np.arange(5), y.numpy()])
    expected = a * t * t * kl + (1 - a) * ce
    assert float(KDTerm(temperature=t, alpha=a)(z, batch, v)) == pytest.approx(expected)


def test_binary_kd_term_matches_joint_model_formula():
    z = torch.randn(7, dtype=torch.float64)
    v = torch.randn(7, dtype=torch.float64) * 3
    y = torch.tensor([1.0, 0, 0, 1, 0, 0, 1], dtype=torch.float64)
    batch = Batch(features=z[:, None], labels=y, ids=torch.arange(7))
    t, w = 2.0, 0.3
    expected = np.mean(
        [
            w * bce(sigmoid(float(vi) / t), sigmoid(float(zi)))
            + (1 - w) * bce(float(yi), sigmoid(float(zi)))
            for zi, vi, yi in zip(z, v, y, strict=True)
        ]
    )
    term = BinaryKDTerm(temperature=t, soft_weight=w)
    assert float(term(z, batch, v)) == pytest.approx(expected)


def test_pointwise_and_logit_matching_terms():
    s = torch.randn(8, dtype=torch.float64)
    t = torch.randn(8, dtype=torch.float64)
    batch = Batch(features=s[:, None], labels=torch.zeros(8), ids=torch.arange(8))
    r = (t - s).numpy()
    assert float(PointwiseTerm(penalty="squared")(s, batch, t)) == pytest.approx(np.mean(r**2))
    huber = np.mean(np.where(np.abs(r) < 0.5, r**2 / (2 * 0.5), np.abs(r) - 0.25))
    term = PointwiseTerm(penalty={"name": "huber", "beta": 0.5})
    assert float(term(s, batch, t)) == pytest.approx(huber)
    assert float(LogitMatchingTerm()(s, batch, t)) == pytest.approx(np.mean(r**2))


def test_pairwise_term_matches_pair_loop(ranked):
    student, teacher, batch = ranked
    residuals = [
        float((teacher[i] - teacher[j]) - (student[i] - student[j]))
        for i, j in pairs_of(batch.groups.tolist())
    ]
    term = PairwiseTerm(penalty="squared", signal="logit", pairs="all")
    assert float(term(student, batch, teacher)) == pytest.approx(np.mean(np.square(residuals)))


@pytest.fixture
def big_groups():
    generator = torch.Generator().manual_seed(8)
    groups = torch.tensor([0] * 12 + [1] * 3 + [2] * 20)  # 66, 3 and 190 pairs
    labels = torch.randint(0, 3, (35,), generator=generator).double()
    student = torch.randn(35, generator=generator, dtype=torch.float64)
    teacher = torch.randn(35, generator=generator, dtype=torch.float64)
    batch = Batch(features=torch.zeros(35, 1), labels=labels, ids=torch.arange(35), groups=groups)
    return student, teacher, batch


def recorded_pairs(monkeypatch, loss_name):
    """Wrap ``distill.ranking.<loss_name>`` to record the ``pairs`` each call gets."""
    seen, real = [], getattr(ranking, loss_name)

    def spy(*args, **kwargs):
        seen.append(kwargs["pairs"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ranking, loss_name, spy)
    return seen


@pytest.mark.parametrize("pair_set", ["all", "unequal"])
def test_pairwise_term_bounds_pairs_per_group_with_a_new_draw_each_step(
    big_groups, monkeypatch, pair_set
):
    student, teacher, batch = big_groups
    seen = recorded_pairs(monkeypatch, "pairwise_distillation_loss")
    labels, groups = batch.labels.tolist(), batch.groups.tolist()
    allowed = {
        (i, j) if labels[i] >= labels[j] else (j, i)
        for i, j in pairs_of(groups)
        if pair_set == "all" or labels[i] != labels[j]
    }
    totals = np.bincount([groups[i] for i, _ in allowed], minlength=3)
    term = PairwiseTerm(penalty="absolute", pairs=pair_set, max_pairs_per_group=5)
    losses = [term(student, batch, teacher) for _ in range(2)]
    for loss, pairs in zip(losses, seen, strict=True):
        chosen = list(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True))
        oriented = {(i, j) if labels[i] >= labels[j] else (j, i) for i, j in chosen}
        assert len(oriented) == len(chosen) and oriented <= allowed
        assert pair_set == "all" or all(labels[i] > labels[j] for i, j in chosen)
        assert np.bincount(pairs.group, minlength=3).tolist() == np.minimum(totals, 5).tolist()
        r = [float((teacher[i] - teacher[j]) - (student[i] - student[j])) for i, j in chosen]
        assert float(loss) == pytest.approx(np.mean(np.abs(r)))
    assert not torch.equal(seen[0].j, seen[1].j)


def test_quantile_heads_term_bounds_pairs_per_group(big_groups, monkeypatch):
    student, teacher, batch = big_groups
    seen = recorded_pairs(monkeypatch, "quantile_ranking_loss")
    term = QuantileHeadsTerm(taus=[0.5], max_pairs_per_group=4)
    loss = term((student, student[:, None]), batch, teacher)
    assert np.bincount(seen[0].group).tolist() == [4, 3, 4]
    r = [
        float((teacher[i] - teacher[j]) - (student[i] - student[j]))
        for i, j in zip(seen[0].i.tolist(), seen[0].j.tolist(), strict=True)
    ]
    assert float(loss) == pytest.approx(np.mean(0.5 * np.abs(r)))


def test_pair_bound_is_validated():
    with pytest.raises(ValueError, match="`max_pairs_per_group` must be >= 1, got 0"):
        PairwiseTerm(max_pairs_per_group=0)
    with pytest.raises(TypeError, match="`max_pairs_per_group` must be an integer, got float"):
        QuantileHeadsTerm(max_pairs_per_group=2.0)
    with pytest.raises(ValueError, match="`max_pairs_per_group` needs pair targets, got `pairs`"):
        QuantileHeadsTerm(pairs=None, max_pairs_per_group=3)
    assert make_term({"name": "pairwise", "max_pairs_per_group": 7}).max_pairs_per_group == 7


def test_quantile_heads_wrap_and_pinball_against_teacher(ranked):
    _, teacher, batch = ranked
    term = QuantileHeadsTerm(taus=[0.2, 0.8], mode="linear", pairs=None)
    model = term.wrap_model(MLP(3, (4,), 1)).double()
    x = torch.randn(9, 3, dtype=torch.float64)
    score, quantiles = model(x)
    assert score.shape == (9,) and quantiles.shape == (9, 2)
    model.eval()
    assert model(x).shape == (9,)
    r = (teacher[:, None] - quantiles).detach().numpy()
    taus = np.array([0.2, 0.8])
    expected = np.mean(np.sum(np.maximum(taus * r, (taus - 1) * r), axis=1))
    assert float(term((score, quantiles), batch, teacher).detach()) == pytest.approx(expected)


def test_objective_sums_weighted_terms_and_logs_each():
    z = torch.randn(4, 3, dtype=torch.float64)
    v = torch.randn(4, 3, dtype=torch.float64)
    batch = Batch(features=z, labels=torch.tensor([0, 1, 2, 0]), ids=torch.arange(4))
    objective = Objective.from_specs(
        [
            {"name": "labels", "loss": "ce", "weight": 0.25},
            {"name": "logit_matching", "weight": 2.0},
        ]
    )
    total, parts = objective(z, batch, v, step=1)
    assert set(parts) == {"loss/labels", "loss/logit_matching"}
    expected = 0.25 * LabelsTerm("ce")(z, batch, v) + 2.0 * LogitMatchingTerm()(z, batch, v)
    assert float(total) == pytest.approx(float(expected))
    assert objective.uses_teacher and objective.phase(1) is None
    assert repr(objective).startswith("Objective([LabelsTerm(loss='ce', weight=0.25)")


def test_objective_errors():
    with pytest.raises(ValueError, match="`terms` must hold at least one loss term"):
        Objective([])
    with pytest.raises(ValueError, match=r"distinct names, got \['labels', 'labels'\]"):
        Objective([LabelsTerm(), LabelsTerm("bce")])
    with pytest.raises(ValueError, match=r"`weight of term 'kd'` must be in \[0, inf\), got -1"):
        Objective([KDTerm(weight=-1.0)])
    with pytest.raises(ValueError, match="`name` of an objective term must be one of 'labels'"):
        make_term({"name": "distill_everything"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'temprature'"):
        make_term({"name": "kd", "temprature": 2.0})
