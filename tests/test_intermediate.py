"""Intermediate-layer losses against NumPy/loop oracles, gradcheck, and their errors."""

import numpy as np
import pytest
import torch

import distill
from distill.intermediate import (
    attention_distillation_loss,
    hidden_distillation_loss,
    hint_loss,
    hint_regressor,
    projection,
)
from distill.nn import HiddenDistillationLoss, HintLoss


def _np(x):
    return x.detach().double().numpy()


def test_hidden_loss_matches_a_numpy_oracle_with_and_without_projection():
    torch.manual_seed(0)
    student, teacher = torch.randn(3, 5, 4), torch.randn(3, 5, 6)
    w = projection(4, 6)
    weight, bias = _np(w.weight), _np(w.bias)
    mapped = np.einsum("btd,ed->bte", _np(student), weight) + bias
    expected = ((mapped - _np(teacher)) ** 2).mean()
    got = hidden_distillation_loss(student, teacher, projection=w)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    same = torch.randn(3, 5, 4)
    total = sum(
        (float(student[b, t, d]) - float(same[b, t, d])) ** 2
        for b in range(3)
        for t in range(5)
        for d in range(4)
    )
    assert hidden_distillation_loss(student, same).item() == pytest.approx(total / 60, rel=1e-5)
    assert hidden_distillation_loss(student, same, reduction="sum").item() == pytest.approx(
        total, rel=1e-5
    )
    unreduced = hidden_distillation_loss(student, same, reduction="none")
    assert unreduced.shape == (3, 5, 4)
    assert unreduced.sum().item() == pytest.approx(total, rel=1e-5)


def test_embedding_loss_is_the_projected_mse_and_exported():
    torch.manual_seed(1)
    student, teacher = torch.randn(2, 3, 4), torch.randn(2, 3, 8)
    w = projection(4, 8, bias=False)
    expected = ((_np(student) @ _np(w.weight).T - _np(teacher)) ** 2).mean()
    got = distill.embedding_distillation_loss(student, teacher, projection=w)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert distill.hidden_distillation_loss is hidden_distillation_loss
    assert distill.attention_distillation_loss is attention_distillation_loss


def test_attention_mse_is_the_mean_over_heads_of_per_head_mse():
    torch.manual_seed(2)
    student, teacher = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    s, t = _np(student), _np(teacher)
    heads = s.shape[1]
    per_head = [((s[:, i] - t[:, i]) ** 2).mean() for i in range(heads)]
    expected = sum(per_head) / heads
    assert attention_distillation_loss(student, teacher).item() == pytest.approx(expected, rel=1e-5)


def test_attention_kl_matches_a_row_loop_including_zero_teacher_mass():
    torch.manual_seed(3)
    student = torch.randn(2, 2, 3, 5).softmax(-1)
    teacher = torch.randn(2, 2, 3, 5).softmax(-1)
    teacher[0, 0, 0] = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0])
    s, t = _np(student), _np(teacher)
    rows = []
    for b in range(2):
        for h in range(2):
            for q in range(3):
                rows.append(
                    sum(
                        t[b, h, q, k] * (np.log(t[b, h, q, k]) - np.log(s[b, h, q, k]))
                        for k in range(5)
                        if t[b, h, q, k] > 0
                    )
                )
    got = attention_distillation_loss(student, teacher, kind="kl")
    assert got.item() == pytest.approx(np.mean(rows), rel=1e-5)
    unreduced = attention_distillation_loss(student, teacher, kind="kl", reduction="none")
    assert unreduced.shape == (2, 2, 3)
    np.testing.assert_allclose(_np(unreduced).ravel(), rows, rtol=1e-5, atol=1e-7)


def test_hint_loss_is_half_the_squared_norm_per_example():
    torch.manual_seed(4)
    guided, hint = torch.randn(3, 4, 6, 6), torch.randn(3, 8, 4, 4)
    regressor = hint_regressor((4, 6, 6), (8, 4, 4))
    mapped = _np(regressor(guided))
    expected = [0.5 * ((mapped[i] - _np(hint)[i]) ** 2).sum() for i in range(3)]
    got = hint_loss(guided, hint, regressor=regressor, reduction="none")
    np.testing.assert_allclose(_np(got), expected, rtol=1e-5)
    assert hint_loss(guided, hint, regressor=regressor).item() == pytest.approx(
        np.mean(expected), rel=1e-5
    )
    mlp = hint_regressor((5,), (3,))
    assert isinstance(mlp, torch.nn.Linear) and (mlp.in_features, mlp.out_features) == (5, 3)


def test_losses_pass_gradcheck_in_float64():
    torch.manual_seed(5)
    s = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 3, 6, dtype=torch.float64)
    w = projection(4, 6).double()
    assert torch.autograd.gradcheck(lambda x: hidden_distillation_loss(x, t, projection=w), (s,))
    a = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: attention_distillation_loss(x, b), (a,))
    pt = b.softmax(-1)
    assert torch.autograd.gradcheck(
        lambda x: attention_distillation_loss(x.softmax(-1), pt, kind="kl"), (a,)
    )
    g = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    r = hint_regressor((3, 5, 5), (4, 3, 3)).double()
    h = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: hint_loss(x, h, regressor=r), (g,))


def test_the_teacher_is_a_constant():
    s = torch.randn(2, 3, requires_grad=True)
    t = torch.randn(2, 3, requires_grad=True)
    hidden_distillation_loss(s, t).backward()
    assert s.grad is not None and t.grad is None


def test_width_mismatch_without_projection_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match=r"`student_hidden` has shape \(2, 3, 4\) but the "
        r"teacher's is \(2, 3, 8\); pass `projection`",
    ):
        hidden_distillation_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, 8))
    with pytest.raises(ValueError, match=r"after `projection` has shape \(2, 3, 5\)"):
        hidden_distillation_loss(
            torch.zeros(2, 3, 4), torch.zeros(2, 3, 8), projection=projection(4, 5)
        )
    with pytest.raises(ValueError, match="pass `regressor`"):
        hint_loss(torch.zeros(2, 4), torch.zeros(2, 3))


def test_attention_errors():
    with pytest.raises(ValueError, match=r"equal shapes, got \(2, 4, 3, 3\) and \(2, 2, 3, 3\)"):
        attention_distillation_loss(torch.zeros(2, 4, 3, 3), torch.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"\(batch, heads, queries, keys\)"):
        attention_distillation_loss(torch.zeros(2, 3, 3), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="must hold attention probabilities for kind='kl'"):
        scores = torch.randn(1, 1, 2, 2)
        attention_distillation_loss(scores, scores.softmax(-1), kind="kl")
    with pytest.raises(ValueError, match="`kind` must be one of 'mse', 'kl', got 'l1'"):
        attention_distillation_loss(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), kind="l1")
    with pytest.raises(TypeError, match="`student_attn` must be a floating-point tensor"):
        attention_distillation_loss(torch.zeros(1, 1, 1, 1, dtype=torch.long), torch.zeros(1))


def test_regressor_errors():
    with pytest.raises(ValueError, match="the same rank"):
        hint_regressor((4,), (4, 2, 2))
    with pytest.raises(ValueError, match=r"the hint \(4, 6, 6\) is larger than the guided"):
        hint_regressor((4, 5, 5), (4, 6, 6))
    with pytest.raises(ValueError, match=r"must be \(D,\) or \(C, H, W\)"):
        hint_regressor((4, 5), (4, 5))


def test_module_forms_own_their_maps_and_train_them():
    loss_fn = HiddenDistillationLoss(4, 6)
    student, teacher = torch.randn(3, 2, 4), torch.randn(3, 2, 6)
    w = loss_fn.projection
    expected = ((_np(student) @ _np(w.weight).T + _np(w.bias) - _np(teacher)) ** 2).mean()
    loss = loss_fn(student, teacher)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert w.weight.grad is not None
    assert HiddenDistillationLoss(4, 4).projection is None
    assert list(HiddenDistillationLoss(4, 4).parameters()) == []
    hint = HintLoss((4,), (3,))
    guided, target = torch.randn(5, 4), torch.randn(5, 3)
    mapped = _np(hint.regressor(guided))
    assert hint(guided, target).item() == pytest.approx(
        0.5 * ((mapped - _np(target)) ** 2).sum(axis=1).mean(), rel=1e-5
    )
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        HintLoss((4,), (3,), reduction="avg")
