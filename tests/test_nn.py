import math

import numpy as np
import pytest
import torch

from distill.nn import (
    BinaryKDLoss,
    KDLoss,
    LogitMatchingLoss,
    PairwiseDistillationLoss,
    PairwiseLogisticLoss,
    PointwiseDistillationLoss,
)


def test_kd_module_value_against_numpy_and_repr():
    z, v = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([0, 2, -100, 1])
    loss_fn = KDLoss(temperature=2.0, alpha=0.75)
    log_q = torch.log_softmax(z / 2, -1).numpy()
    p = torch.softmax(v / 2, -1).numpy()
    soft = 4.0 * (p * (np.log(p) - log_q)).sum(-1).mean()
    ce = -np.mean([torch.log_softmax(z, -1)[i, y[i]].item() for i in (0, 1, 3)])
    assert loss_fn(z, v, y).item() == pytest.approx(0.75 * soft + 0.25 * ce, rel=1e-10)
    probs = torch.softmax(v / 2, -1)
    assert loss_fn(z, teacher_probs=probs).item() == pytest.approx(soft, rel=1e-10)
    assert repr(loss_fn) == (
        "KDLoss(temperature=2.0, alpha=0.75, scale_t2=True, ignore_index=-100, reduction='mean')"
    )
    assert list(loss_fn.state_dict()) == []


def test_binary_module_value_and_repr():
    z, v, y = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0])
    loss_fn = BinaryKDLoss(temperature=2.0, soft_weight=0.25, reduction="sum")
    t = 1 / (1 + np.exp(-v.numpy() / 2))
    zn = z.numpy()
    bce = lambda a: a * np.logaddexp(0, -zn) + (1 - a) * np.logaddexp(0, zn)  # noqa: E731
    expected = (0.25 * bce(t) + 0.75 * bce(y.numpy())).sum()
    assert loss_fn(z, v, y).item() == pytest.approx(expected, rel=1e-6)
    expected_repr = "temperature=2.0, soft_weight=0.25, temper_student=False, reduction='sum'"
    assert expected_repr in repr(loss_fn)


def test_logit_and_pointwise_modules():
    z, v = torch.tensor([[1.0, 3.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    assert LogitMatchingLoss()(z, v).item() == pytest.approx((1 + 9 + 1 + 1) / 4)
    assert LogitMatchingLoss(center=True)(z, v).item() == pytest.approx((1 + 1 + 1 + 1) / 4)
    loss_fn = PointwiseDistillationLoss(penalty={"name": "pinball", "tau": 0.9}, reduction="sum")
    s, t = torch.tensor([0.0, 0.0]), torch.tensor([1.0, -2.0])
    assert loss_fn(s, t).item() == pytest.approx(0.9 * 1 + 0.1 * 2)
    assert repr(loss_fn) == (
        "PointwiseDistillationLoss(penalty=Penalty(pinball, tau=0.9), signal='logit', "
        "reduction='sum')"
    )


def test_modules_train_a_student():
    torch.manual_seed(0)
    teacher, student = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    x = torch.randn(64, 4)
    loss_fn = KDLoss(temperature=2.0)
    optimiser = torch.optim.SGD(student.parameters(), lr=0.5)
    first = loss_fn(student(x), teacher(x)).item()
    for _ in range(100):
        optimiser.zero_grad()
        loss_fn(student(x), teacher(x)).backward()
        optimiser.step()
    assert loss_fn(student(x), teacher(x)).item() < 0.05 * first
    assert all(p.grad is None for p in teacher.parameters())


def test_validation_at_construction():
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, inf\), got 0"):
        KDLoss(temperature=0.0)
    with pytest.raises(ValueError, match=r"`alpha` must be in \[0, 1\], got 2"):
        KDLoss(alpha=2)
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, inf\), got inf"):
        BinaryKDLoss(temperature=math.inf, temper_student=True)
    with pytest.raises(ValueError, match=r"`soft_weight` must be in \[0, 1\], got 1.5"):
        BinaryKDLoss(soft_weight=1.5)
    with pytest.raises(ValueError, match="`reduction` must be one of 'none', 'mean', 'sum'"):
        LogitMatchingLoss(reduction="avg")
    with pytest.raises(ValueError, match="penalty 'huber' got unknown key"):
        PointwiseDistillationLoss(penalty={"name": "huber", "delta": 1.0})
    with pytest.raises(ValueError, match="`signal` must be one of 'logit', 'prob', got 'rank'"):
        PointwiseDistillationLoss(penalty="absolute", signal="rank")


def _naive_pairwise(student, teacher, groups, penalty):
    total, count = 0.0, 0
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            if groups[a] == groups[b]:
                r = (teacher[a] - teacher[b]) - (student[a] - student[b])
                total, count = total + penalty(r), count + 1
    return total / count


def test_pairwise_wrappers_match_naive_loops_and_show_options():
    student, teacher = np.array([0.5, -1.0, 2.0, 0.0, 1.0]), np.array([1.0, 0.0, -2.0, 3.0, 0.5])
    groups = [4, 9, 4, 9, 4]
    loss_fn = PairwiseDistillationLoss(penalty={"name": "pinball", "tau": 0.25})
    got = loss_fn(torch.tensor(student), torch.tensor(teacher), torch.tensor(groups))
    expected = _naive_pairwise(student, teacher, groups, lambda r: max(0.25 * r, -0.75 * r))
    assert got.item() == pytest.approx(expected)
    assert "pairs='all'" in repr(loss_fn) and "tau=0.25" in repr(loss_fn)

    labels = torch.tensor([1.0, 0.0, 0.0, 2.0, 1.0])
    ranknet = PairwiseLogisticLoss()(torch.tensor(student), torch.tensor(groups), labels)
    # unequal-label pairs, better item first: (0,2), (4,2), (3,1)
    diffs = [student[0] - student[2], student[4] - student[2], student[3] - student[1]]
    assert ranknet.item() == pytest.approx(np.mean([math.log1p(math.exp(-d)) for d in diffs]))


def test_pairwise_wrappers_validate_at_construction():
    with pytest.raises(ValueError, match="`pairs` must be one of 'all', 'unequal', got 'both'"):
        PairwiseDistillationLoss(pairs="both")
    with pytest.raises(ValueError, match="`ties` must be one of 'drop', 'half', got 'keep'"):
        PairwiseLogisticLoss(ties="keep")
