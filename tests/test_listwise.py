"""Listwise (ListNet) distillation against a per-group NumPy loop."""

import numpy as np
import pytest
import torch

from distill import listwise_distillation_loss
from distill.config import Objective
from distill.experiment.setup import fit_objective
from distill.train.batches import Batch


def loop_loss(student, teacher, group_ids, temperature):
    """Per group (Python loop, NumPy): −Σ softmax(t/T)·log softmax(s/T)."""
    losses = {}
    s, t, g = student.detach().numpy(), teacher.numpy(), group_ids.numpy()
    for gid in sorted(set(g.tolist())):
        rows = g == gid
        zs, zt = s[rows] / temperature, t[rows] / temperature
        log_q = zs - zs.max() - np.log(np.exp(zs - zs.max()).sum())
        p = np.exp(zt - zt.max()) / np.exp(zt - zt.max()).sum()
        losses[gid] = (-(p * log_q).sum(), rows.sum())
    return losses


def ragged(seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.tensor([1, 7, 2, 30, 5, 1, 12])
    group_ids = torch.repeat_interleave(torch.tensor([9, -3, 4, 0, 17, 2, 5]), sizes)
    group_ids = group_ids[torch.randperm(len(group_ids), generator=gen)]
    student = (torch.randn(len(group_ids), generator=gen, dtype=dtype) * 3).requires_grad_(True)
    teacher = torch.randn(len(group_ids), generator=gen, dtype=dtype) * 3
    return group_ids, student, teacher


@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
def test_listwise_matches_per_group_loop(temperature):
    group_ids, student, teacher = ragged(0)
    expected = loop_loss(student, teacher, group_ids, temperature)
    per_group = listwise_distillation_loss(
        student, teacher, group_ids, temperature=temperature, reduction="none"
    )
    np.testing.assert_allclose(per_group.detach().numpy(), [v for v, _ in expected.values()])
    with_pairs = [v for v, n in expected.values() if n > 1]
    mean = listwise_distillation_loss(student, teacher, group_ids, temperature=temperature)
    assert mean.item() == pytest.approx(np.mean(with_pairs))
    total = listwise_distillation_loss(student, teacher, group_ids, reduction="sum")
    assert total.item() == pytest.approx(
        sum(v for v, _ in loop_loss(student, teacher, group_ids, 1).values())
    )


def test_listwise_gradient_against_autograd_loop_and_gradcheck():
    group_ids, student, teacher = ragged(1)
    loss = listwise_distillation_loss(student, teacher, group_ids, temperature=2.0)
    (grad,) = torch.autograd.grad(loss, student)
    reference = 0
    groups = [g for g in group_ids.unique() if (group_ids == g).sum() > 1]
    for g in groups:
        rows = group_ids == g
        p = torch.softmax(teacher[rows] / 2.0, 0)
        reference = reference - (p * torch.log_softmax(student[rows] / 2.0, 0)).sum()
    (expected,) = torch.autograd.grad(reference / len(groups), student)
    torch.testing.assert_close(grad, expected)

    def f(s):
        return listwise_distillation_loss(s, teacher, group_ids, temperature=0.7)

    assert torch.autograd.gradcheck(f, (student,))


def test_listwise_minimum_at_teacher_up_to_group_shift_and_extremes():
    group_ids, _, teacher = ragged(2)
    shift = group_ids.double() * 11.0  # one constant per group
    at_teacher = listwise_distillation_loss(teacher + shift, teacher, group_ids)
    entropy = np.mean([v for v, n in loop_loss(teacher, teacher, group_ids, 1.0).values() if n > 1])
    assert at_teacher.item() == pytest.approx(entropy)  # KL = 0: only the teacher's entropy
    other = listwise_distillation_loss(teacher.flip(0), teacher, group_ids)
    assert float(other) > float(at_teacher)
    huge = torch.tensor([1e4, -1e4, 3.0, 1e4], dtype=torch.float32, requires_grad=True)
    ids = torch.tensor([0, 0, 1, 1])
    out = listwise_distillation_loss(huge, huge.detach().flip(0), ids, temperature=1e-3)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(huge.grad).all()
    single = torch.zeros(3, requires_grad=True)
    empty = listwise_distillation_loss(single, torch.ones(3), torch.tensor([0, 1, 2]))
    empty.backward()
    assert empty.item() == 0.0 and torch.isfinite(single.grad).all()


def test_listwise_errors():
    group_ids, student, teacher = ragged(3)
    with pytest.raises(ValueError, match="`temperature` must be in"):
        listwise_distillation_loss(student, teacher, group_ids, temperature=-1.0)
    with pytest.raises(ValueError, match="`group_ids` shape"):
        listwise_distillation_loss(student, teacher, group_ids[:-1])
    with pytest.raises(TypeError, match="`group_ids` must be an integer tensor"):
        listwise_distillation_loss(student, teacher, group_ids.float())
    with pytest.raises(ValueError, match=r"`student_scores` must have shape \(N,\)"):
        listwise_distillation_loss(student[:, None], teacher[:, None], group_ids)
    with pytest.raises(ValueError, match="`teacher_scores` must be finite"):
        listwise_distillation_loss(student, teacher * np.inf, group_ids)


def test_listwise_config_term_calls_the_loss():
    group_ids, student, teacher = ragged(4)
    objective = fit_objective(Objective(listwise={"temperature": 2.5, "weight": 0.5}), "ranking")
    (term,) = objective.terms
    assert (term.name, term.weight, term.temperature) == ("listwise", 0.5, 2.5)
    batch = Batch(
        features=torch.zeros(len(group_ids), 1),
        labels=torch.zeros(len(group_ids)),
        ids=torch.arange(len(group_ids)),
        groups=group_ids,
    )
    expected = np.mean(
        [v for v, n in loop_loss(student, teacher, group_ids, 2.5).values() if n > 1]
    )
    assert term(student, batch, teacher).item() == pytest.approx(expected)


def test_module_wrappers_call_the_functions():
    from distill.nn import ListwiseDistillationLoss, PairwiseDistillationLoss
    from distill.ranking import pairwise_distillation_loss

    group_ids, student, teacher = ragged(6)
    module = ListwiseDistillationLoss(temperature=3.0, reduction="sum")
    assert "temperature=3.0" in repr(module)
    expected = sum(v for v, _ in loop_loss(student, teacher, group_ids, 3.0).values())
    assert module(student, teacher, group_ids).item() == pytest.approx(expected)
    rank = PairwiseDistillationLoss(signal="rank", temperature=0.5)
    assert "temperature=0.5" in repr(rank)
    direct = pairwise_distillation_loss(student, teacher, group_ids, signal="rank", temperature=0.5)
    torch.testing.assert_close(rank(student, teacher, group_ids), direct)
    with pytest.raises(ValueError, match="`temperature` must be in"):
        ListwiseDistillationLoss(temperature=0.0)
