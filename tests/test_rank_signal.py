"""The rank-difference signal of the pairwise loss against a per-group Python loop."""

import pytest
import torch

from distill import penalties
from distill.ranking import pairwise_distillation_loss
from distill.ranking.ranks import hard_ranks, soft_ranks
from test_ranking import batch, naive_groups


def loop_ranks(scores, group_ids, temperature=None):
    """Per item: ½ + Σ over the other items of its group of σ((s_j − s_i)/T) (or the step)."""
    ranks = []
    for i in range(len(scores)):
        rank = torch.tensor(0.5, dtype=scores.dtype)
        for j in range(len(scores)):
            if j == i or group_ids[j] != group_ids[i]:
                continue
            gap = scores[j] - scores[i]
            if temperature is None:
                rank = rank + (1.0 if gap > 0 else 0.5 if gap == 0 else 0.0)
            else:
                rank = rank + 1 / (1 + torch.exp(-gap / temperature))
        ranks.append(rank)
    return torch.stack(ranks)


@pytest.mark.parametrize("seed", [0, 1])
def test_soft_and_hard_ranks_match_loop(seed):
    group_ids, _, student, teacher = batch(seed, max_size=12)
    teacher = teacher.round()  # ties
    torch.testing.assert_close(
        soft_ranks(student, group_ids, temperature=0.7), loop_ranks(student, group_ids, 0.7)
    )
    torch.testing.assert_close(hard_ranks(teacher, group_ids), loop_ranks(teacher, group_ids))
    cold = soft_ranks(student.detach(), group_ids, temperature=1e-6)
    torch.testing.assert_close(cold, hard_ranks(student.detach(), group_ids))


@pytest.mark.parametrize("normalize", ["pair", "group"])
@pytest.mark.parametrize("spec", ["squared", "absolute", {"name": "huber", "beta": 0.5}])
def test_rank_signal_matches_loop(spec, normalize):
    group_ids, _, student, teacher = batch(3, max_size=10)
    rho = penalties.get(spec)
    student_ranks = loop_ranks(student, group_ids, 2.0)
    teacher_ranks = loop_ranks(teacher, group_ids)
    means, flat = [], []
    for pairs in naive_groups(group_ids):
        if pairs:
            values = torch.stack(
                [
                    rho(
                        (teacher_ranks[a] - teacher_ranks[b])
                        - (student_ranks[a] - student_ranks[b])
                    )
                    for a, b in pairs
                ]
            )
            flat.append(values)
            means.append(values.mean())
    expected = torch.cat(flat).mean() if normalize == "pair" else torch.stack(means).mean()
    out = pairwise_distillation_loss(
        student,
        teacher,
        group_ids,
        penalty=spec,
        signal="rank",
        temperature=2.0,
        normalize=normalize,
    )
    torch.testing.assert_close(out, expected)
    (grad,) = torch.autograd.grad(out, student)
    (expected_grad,) = torch.autograd.grad(expected, student)
    torch.testing.assert_close(grad, expected_grad)


def test_rank_signal_unequal_pairs_and_gradcheck():
    group_ids, labels, student, teacher = batch(5, max_size=8)
    student_ranks, teacher_ranks = (
        loop_ranks(student, group_ids, 1.0),
        loop_ranks(teacher, group_ids),
    )
    pairs = [p for group in naive_groups(group_ids, labels, unequal=True) for p in group]
    expected = torch.stack(
        [
            ((teacher_ranks[a] - teacher_ranks[b]) - (student_ranks[a] - student_ranks[b])) ** 2
            for a, b in pairs
        ]
    ).mean()
    out = pairwise_distillation_loss(
        student, teacher, group_ids, labels, signal="rank", pairs="unequal"
    )
    torch.testing.assert_close(out, expected)

    def loss(s):
        return pairwise_distillation_loss(s, teacher, group_ids, signal="rank", temperature=0.5)

    assert torch.autograd.gradcheck(loss, (student,))


def test_rank_signal_errors():
    group_ids, _, student, teacher = batch(0, max_size=5)
    with pytest.raises(ValueError, match="`temperature` must be in"):
        pairwise_distillation_loss(student, teacher, group_ids, signal="rank", temperature=0.0)
    with pytest.raises(ValueError, match="`signal` must be one of"):
        pairwise_distillation_loss(student, teacher, group_ids, signal="ranks")
    with pytest.raises(ValueError, match="`scores` shape"):
        soft_ranks(student, group_ids[:-1])


def test_rank_signal_from_a_config_term():
    from distill.config import Objective
    from distill.experiment.setup import fit_objective
    from distill.train.batches import Batch

    group_ids, _, student, teacher = batch(6, max_size=9)
    pairwise = {"signal": "rank", "temperature": 0.5, "penalty": "absolute"}
    (term,) = fit_objective(Objective(pairwise=pairwise), "ranking").terms
    rows = len(group_ids)
    data = Batch(torch.zeros(rows, 1), torch.zeros(rows), torch.arange(rows), groups=group_ids)
    student_ranks, teacher_ranks = (
        loop_ranks(student, group_ids, 0.5),
        loop_ranks(teacher, group_ids),
    )
    pairs = [p for group in naive_groups(group_ids) for p in group]
    expected = torch.stack(
        [
            (teacher_ranks[a] - teacher_ranks[b] - student_ranks[a] + student_ranks[b]).abs()
            for a, b in pairs
        ]
    ).mean()
    torch.testing.assert_close(term(student, data, teacher), expected)
