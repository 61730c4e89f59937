import pytest
import torch

from distill.ranking import (
    pairwise_distillation_loss,
    pairwise_logistic_loss,
    quantile_ranking_loss,
)
from distill.ranking.objective import RankingObjective


def batch():
    gen = torch.Generator().manual_seed(0)
    group_ids = torch.tensor([4, 4, 4, 1, 1, 9, 9, 9, 9])
    student = torch.randn(9, generator=gen, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(9, generator=gen, dtype=torch.float64)
    clicks = torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 1, 0], dtype=torch.float64)
    return student, teacher, group_ids, clicks


def test_total_is_the_weighted_sum_of_the_terms():
    student, teacher, group_ids, clicks = batch()
    objective = RankingObjective(
        label="bce",
        pointwise={"name": "huber", "beta": 0.5},
        pairwise={"name": "pinball", "tau": 0.3},
        weights={"label": 0.2, "pointwise": 0.5, "pairwise": 2.0},
        pairs="unequal",
    )
    total, terms = objective(student, teacher, group_ids, clicks)
    p = torch.sigmoid(student)
    bce = -(clicks * torch.log(p) + (1 - clicks) * torch.log(1 - p)).mean()
    r = teacher - student
    huber = torch.where(r.abs() < 0.5, r**2 / 1.0, r.abs() - 0.25).mean()
    pairwise = pairwise_distillation_loss(
        student,
        teacher,
        group_ids,
        clicks,
        penalty={"name": "pinball", "tau": 0.3},
        pairs="unequal",
    )
    assert torch.allclose(terms["label"], bce)
    assert torch.allclose(terms["pointwise"], huber)
    assert torch.allclose(terms["pairwise"], pairwise)
    assert torch.allclose(total, 0.2 * bce + 0.5 * huber + 2.0 * pairwise)
    total.backward()
    assert bool(torch.isfinite(student.grad).all())


def test_defaults_ranknet_plus_squared_pairwise():
    student, teacher, group_ids, clicks = batch()
    objective = RankingObjective()
    total, terms = objective(student, teacher, group_ids, clicks)
    assert sorted(terms) == ["label", "pairwise"]
    assert torch.allclose(terms["label"], pairwise_logistic_loss(student, group_ids, clicks))
    assert torch.allclose(total, terms["label"] + terms["pairwise"])
    assert "label='pairwise_logistic'" in repr(objective)


def test_public_through_distill_ranking():
    import distill
    import distill.ranking

    assert distill.ranking.RankingObjective is RankingObjective is distill.RankingObjective


def test_distillation_only_needs_no_labels():
    student, teacher, group_ids, _ = batch()
    total, terms = RankingObjective(label=None, pairwise="absolute")(student, teacher, group_ids)
    assert list(terms) == ["pairwise"] and torch.equal(total, terms["pairwise"])


def test_quantile_head_term():
    student, teacher, group_ids, _ = batch()
    heads = torch.stack([student * 1.5, student - 1.0], dim=1)
    objective = RankingObjective(label=None, pairwise=None, quantile=[0.2, 0.8])
    total, terms = objective(student, teacher, group_ids, quantile_scores=heads)
    expected = quantile_ranking_loss(heads, teacher, group_ids, taus=[0.2, 0.8])
    assert list(terms) == ["quantile"] and torch.allclose(total, expected)
    with pytest.raises(ValueError, match="`quantile_scores` are required by the 'quantile' term"):
        objective(student, teacher, group_ids)


def test_bad_configuration_and_inputs():
    student, teacher, group_ids, _ = batch()
    with pytest.raises(ValueError, match="needs at least one of"):
        RankingObjective(label=None, pairwise=None)
    with pytest.raises(
        ValueError, match=r"`weights` has key\(s\) \['pointwise'\] for terms that are off"
    ):
        RankingObjective(weights={"pointwise": 1.0})
    with pytest.raises(ValueError, match=r"`weights\['label'\]` must be in \[0, inf\), got -1"):
        RankingObjective(weights={"label": -1.0})
    with pytest.raises(ValueError, match="`label` must be one of 'bce', 'pairwise_logistic'"):
        RankingObjective(label="softmax")
    with pytest.raises(ValueError, match="`signal` must be one of"):
        RankingObjective(signal="rank")
    with pytest.raises(ValueError, match=r"`quantile` must be in \[0, 1\], got 2"):
        RankingObjective(quantile=[0.5, 2.0])
    with pytest.raises(ValueError, match="`labels` are required by the 'label' term"):
        RankingObjective()(student, teacher, group_ids)
    with pytest.raises(ValueError, match="`teacher_scores` are required by the 'pairwise' term"):
        RankingObjective(label=None)(student, None, group_ids)
