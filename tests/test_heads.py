import numpy as np
import pytest
import torch
from torch import nn

from distill.models import MLP
from distill.ranking import quantile_distillation_loss, quantile_ranking_loss
from distill.ranking.heads import QuantileHeads, TwoStepMedian, with_quantile_heads
from distill.ranking.pairs import make_pairs


def scorer(in_features=4):
    return nn.Sequential(nn.Linear(in_features, 1), nn.Flatten(0))


def test_affine_heads_start_at_the_score():
    heads = QuantileHeads([0.1, 0.5, 0.9])
    scores = torch.randn(6)
    assert torch.equal(heads(scores), scores[:, None].expand(6, 3))
    assert heads.taus == (0.1, 0.5, 0.9)
    assert "taus=[0.1, 0.5, 0.9], mode='affine'" in repr(heads)


def test_affine_median_head_is_l1_on_the_scaled_difference():
    group_ids = torch.tensor([3, 3, 1, 3, 1, 1, 1])
    scores, teacher = torch.randn(7, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    heads = QuantileHeads([0.5]).double()
    with torch.no_grad():
        heads.scale.fill_(2.5)
        heads.bias.fill_(-0.7)
    loss = quantile_ranking_loss(heads(scores), teacher, group_ids, taus=heads.taus)
    s, t = scores.numpy(), teacher.numpy()
    found = make_pairs(group_ids)
    i, j = found.i.numpy(), found.j.numpy()
    expected = 0.5 * np.mean(np.abs((t[i] - t[j]) - 2.5 * (s[i] - s[j])))
    assert loss.item() == pytest.approx(expected)


@pytest.mark.parametrize("mode", ["affine", "linear"])
def test_wrapped_model_serves_the_unchanged_score(mode):
    model = MLP(4, hidden=(8,))
    wrapped = with_quantile_heads(model, [0.2, 0.5, 0.8], mode)
    x = torch.randn(5, 4)
    score, quantiles = wrapped.train()(x)
    assert score.shape == (5,) and quantiles.shape == (5, 3)
    assert torch.allclose(score, model(x))
    assert torch.allclose(quantiles, score[:, None].expand(5, 3))  # heads start at the score
    assert torch.equal(wrapped.eval()(x), model.eval()(x))
    assert wrapped.model is model and wrapped.taus == (0.2, 0.5, 0.8)


def test_linear_heads_shape_the_shared_body():
    model = MLP(4, hidden=(8,))
    wrapped = with_quantile_heads(model, [0.1, 0.9], "linear")
    x, teacher = torch.randn(10, 4), torch.randn(10)
    _, quantiles = wrapped(x)
    quantile_distillation_loss(quantiles, teacher, taus=wrapped.taus).backward()
    assert model.body[0][0].weight.grad.abs().sum() > 0
    assert model.head.weight.grad is None  # the serving head is not trained by the heads
    assert wrapped.heads.linear.weight.grad.abs().sum() > 0


def test_quantile_heads_learn_the_quantiles():
    torch.manual_seed(0)
    teacher = torch.distributions.Exponential(1.0).sample((1000,))
    heads = QuantileHeads([0.1, 0.5, 0.9])
    score = torch.zeros(1000)
    optimiser = torch.optim.Adam(heads.parameters(), lr=0.1)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, 150, gamma=0.2)
    for _ in range(450):
        optimiser.zero_grad()
        quantile_distillation_loss(heads(score), teacher, taus=heads.taus).backward()
        optimiser.step()
        schedule.step()
    expected = np.quantile(teacher.numpy(), [0.1, 0.5, 0.9])
    assert np.allclose(heads.bias.detach().numpy(), expected, atol=0.02)


def test_two_step_median_pulls_to_the_median_not_the_mean():
    torch.manual_seed(1)
    x = torch.ones(3000, 1)
    teacher = torch.distributions.Exponential(1.0).sample((3000,))  # median ln 2, mean 1
    two_step = TwoStepMedian(scorer(1), penalty={"name": "huber", "beta": 0.1})
    optimiser = torch.optim.Adam(two_step.median_model.parameters(), lr=0.05)
    for _ in range(400):
        optimiser.zero_grad()
        two_step.median_loss(x, teacher).backward()
        optimiser.step()
    two_step.freeze()
    median = two_step.median(x)
    assert median.mean().item() == pytest.approx(float(np.median(teacher.numpy())), abs=0.03)
    student = torch.zeros(3000, requires_grad=True)
    optimiser = torch.optim.SGD([student], lr=0.02)
    for _ in range(300):
        optimiser.zero_grad()
        two_step.student_loss(student, x, reduction="sum").backward()
        optimiser.step()
    assert torch.allclose(student.detach(), median, atol=1e-3)
    assert all(not p.requires_grad for p in two_step.median_model.parameters())
    assert "frozen=True" in repr(two_step)


def test_two_step_from_student_copies():
    student = scorer()
    two_step = TwoStepMedian.from_student(student)
    assert two_step.median_model is not student
    x = torch.randn(3, 4)
    assert torch.equal(two_step.median_model(x), student(x))


def test_bad_inputs():
    with pytest.raises(ValueError, match="`in_features` is required when `mode` is 'linear'"):
        QuantileHeads([0.5], mode="linear")
    with pytest.raises(ValueError, match="`in_features` applies only to mode 'linear', got 3"):
        QuantileHeads([0.5], in_features=3)
    with pytest.raises(ValueError, match=r"`taus` must be in \[0, 1\], got 1.5"):
        QuantileHeads([0.5, 1.5])
    with pytest.raises(ValueError, match="`taus` must be a non-empty sequence of quantiles"):
        QuantileHeads([])
    with pytest.raises(ValueError, match="`mode` must be one of 'affine', 'linear', got 'mlp'"):
        with_quantile_heads(scorer(), [0.5], "mlp")
    with pytest.raises(TypeError, match="mode 'linear' needs a model with `forward_features`"):
        with_quantile_heads(scorer(), [0.5], "linear")
    with pytest.raises(ValueError, match="`model.head` must have 1 output, got 3"):
        with_quantile_heads(MLP(4, out_features=3), [0.5], "linear")
    with pytest.raises(ValueError, match=r"affine heads take scores of shape \(N,\), got \(2, 1\)"):
        QuantileHeads([0.5])(torch.zeros(2, 1))
    two_step = TwoStepMedian(scorer())
    with pytest.raises(RuntimeError, match="call `freeze\\(\\)` after step 1"):
        two_step.student_loss(torch.zeros(2), torch.zeros(2, 4))
    two_step.freeze()
    with pytest.raises(RuntimeError, match="`median_loss` belongs to step 1"):
        two_step.median_loss(torch.zeros(2, 4), torch.zeros(2))
    with pytest.raises(ValueError, match=r"`student_scores` shape \(3,\) does not match"):
        two_step.student_loss(torch.zeros(3), torch.zeros(2, 4))
