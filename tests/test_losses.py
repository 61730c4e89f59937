import math

import numpy as np
import pytest
import torch

from distill.losses import (
    binary_kd_loss,
    kd_loss,
    logit_matching_loss,
    pointwise_distillation_loss,
)


def np_log_softmax(z, T):
    z = np.asarray(z, dtype=np.float64) / T
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def np_kd(z, v, y, T, alpha, ignore=-100, scale=True):
    """Loop oracle: batchmean soft term; CE mean over non-ignored rows."""
    n, c = z.shape
    log_p, log_q, log_q1 = np_log_softmax(v, T), np_log_softmax(z, T), np_log_softmax(z, 1.0)
    soft = [
        sum(math.exp(log_p[i, k]) * (log_p[i, k] - log_q[i, k]) for k in range(c)) for i in range(n)
    ]
    soft = np.array(soft) * (T**2 if scale else 1.0)
    if y is None:
        return soft.mean()
    rows = [i for i in range(n) if y[i] != ignore]
    ce = sum(-log_q1[i, y[i]] for i in rows) / max(len(rows), 1)
    return alpha * soft.mean() + (1 - alpha) * ce


def np_bce(a, logit):
    return -(a * -np.logaddexp(0, -logit) + (1 - a) * -np.logaddexp(0, logit))


@pytest.mark.parametrize("T,alpha", [(1.0, 0.9), (4.0, 0.5), (0.5, 0.0), (20.0, 1.0)])
def test_kd_loss_against_loop_oracle(T, alpha):
    z, v = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64) * 2
    y = torch.tensor([0, 4, 2, -100, 1, 3])
    got = kd_loss(z, v, y, temperature=T, alpha=alpha)
    assert got.item() == pytest.approx(np_kd(z.numpy(), v.numpy(), y.tolist(), T, alpha), rel=1e-10)
    unlabeled = kd_loss(z, v, temperature=T, alpha=alpha)
    assert unlabeled.item() == pytest.approx(np_kd(z.numpy(), v.numpy(), None, T, alpha), rel=1e-10)
    no_t2 = kd_loss(z, v, y, temperature=T, alpha=alpha, scale_t2=False)
    expected = np_kd(z.numpy(), v.numpy(), y.tolist(), T, alpha, scale=False)
    assert no_t2.item() == pytest.approx(expected, rel=1e-10)


def test_kd_reductions_and_sequence_shape():
    z, v = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 3, 4, dtype=torch.float64)
    y = torch.tensor([[0, 1, 2], [3, 0, 1]])
    per_example = kd_loss(z, v, y, reduction="none")
    assert per_example.shape == (2, 3)
    torch.testing.assert_close(per_example.sum(), kd_loss(z, v, y, reduction="sum"))
    flat = kd_loss(z.reshape(6, 4), v.reshape(6, 4), y.reshape(6))
    torch.testing.assert_close(kd_loss(z, v, y), flat)
    torch.testing.assert_close(kd_loss(z, v, y), per_example.mean())


def test_kd_ignore_index_inside_the_class_range():
    z, v = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    y = [0, 2, 3, 2, 1]
    got = kd_loss(z, v, torch.tensor(y), temperature=2.0, alpha=0.5, ignore_index=2)
    expected = np_kd(z.numpy(), v.numpy(), y, 2.0, 0.5, ignore=2)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_kd_all_targets_ignored_gives_soft_term_only():
    z, v = torch.randn(3, 4), torch.randn(3, 4)
    y = torch.full((3,), -100)
    out = kd_loss(z, v, y, alpha=0.25)
    torch.testing.assert_close(out, 0.25 * kd_loss(z, v))


def test_gradient_identity_soft_cross_entropy():
    z = torch.randn(1, 6, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 6, dtype=torch.float64)
    T = 3.0
    kd_loss(z, v, temperature=T, scale_t2=False).backward()
    q, p = np.exp(np_log_softmax(z.detach().numpy(), T)), np.exp(np_log_softmax(v.numpy(), T))
    np.testing.assert_allclose(z.grad.numpy(), (q - p) / T, rtol=1e-10)


def _kd_grad(z, v, T):
    z = z.clone().requires_grad_(True)
    kd_loss(z, v, temperature=T).backward()
    return z.grad


def test_high_temperature_limit_is_logit_matching():
    n, c = 4, 5
    z = torch.randn(n, c, dtype=torch.float64)
    v = torch.randn(n, c, dtype=torch.float64)
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    limit = (z - v) / (c * n)
    errors = [(_kd_grad(z, v, T) - limit).abs().max().item() for T in (1e2, 1e3, 1e5)]
    assert errors[0] > 5 * errors[1] > 50 * errors[2]
    torch.testing.assert_close(_kd_grad(z, v, 1e5), limit, rtol=1e-4, atol=1e-9)
    zg = z.clone().requires_grad_(True)
    logit_matching_loss(zg, v).backward()
    torch.testing.assert_close(_kd_grad(z, v, 1e5), zg.grad / 2, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("T", [1e-3, 1.0, 1e3])
def test_extreme_logits_finite(T):
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], requires_grad=True)
    v = torch.tensor([[-1e4, 1e4, 0.0], [-1e4, 1e4, -1e4]])
    y = torch.tensor([0, 2])
    out = kd_loss(z, v, y, temperature=T)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(z.grad).all()
    expected = np_kd(z.detach().double().numpy(), v.double().numpy(), y.tolist(), T, 0.9)
    assert out.item() == pytest.approx(expected, rel=1e-5)
    b = binary_kd_loss(
        z, v, y.new_tensor([[1, 0, 1], [0, 1, 0]]), temperature=T, temper_student=True
    )
    assert torch.isfinite(b)
    for signal in ("logit", "prob"):
        assert torch.isfinite(pointwise_distillation_loss(z, v, penalty="log_cosh", signal=signal))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_runs_close_to_float32(dtype):
    z, v, y = torch.randn(8, 5), torch.randn(8, 5), torch.randint(0, 5, (8,))
    zh = z.to(dtype).requires_grad_(True)
    out = kd_loss(zh, v.to(dtype), y, temperature=2.0)
    out.backward()
    assert out.dtype == dtype and zh.grad.dtype == dtype
    ref = kd_loss(z.to(dtype).float(), v.to(dtype).float(), y, temperature=2.0)
    assert out.float().item() == pytest.approx(ref.item(), rel=2e-2)
    b = binary_kd_loss(zh[:, 0], v[:, 0].to(dtype), (y > 2).float().to(dtype), temperature=2.0)
    assert b.dtype == dtype and torch.isfinite(b)
    assert logit_matching_loss(zh, v.to(dtype), center=True).dtype == dtype
    p = pointwise_distillation_loss(zh, v.to(dtype), penalty={"name": "pinball", "tau": [0.2, 0.8]})
    assert p.dtype == dtype and torch.isfinite(p)


def test_gradcheck_float64():
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    v, y = torch.randn(3, 4, dtype=torch.float64), torch.tensor([1, -100, 3])
    assert torch.autograd.gradcheck(lambda s: kd_loss(s, v, y, temperature=2.0, alpha=0.7), (z,))
    probs = torch.softmax(v, -1)
    assert torch.autograd.gradcheck(
        lambda s: kd_loss(s, teacher_probs=probs, temperature=2.0), (z,)
    )
    labels = torch.rand(3, 4, dtype=torch.float64)
    for temper in (False, True):
        fn = lambda s, t=temper: binary_kd_loss(s, v, labels, temperature=1.5, temper_student=t)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (z,))
    assert torch.autograd.gradcheck(lambda s: logit_matching_loss(s, v, center=True), (z,))
    spec = {"name": "smoothed_pinball", "tau": [0.3, 0.6], "smoother": "softplus"}
    for signal in ("logit", "prob"):
        fn = lambda s, g=signal: pointwise_distillation_loss(s, v, penalty=spec, signal=g)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (z,))


def test_teacher_is_detached():
    z = torch.randn(4, 3, requires_grad=True)
    v = torch.randn(4, 3, requires_grad=True)
    total = kd_loss(z, v) + binary_kd_loss(z, v) + logit_matching_loss(z, v)
    total = total + pointwise_distillation_loss(z, v, penalty="absolute")
    total.backward()
    assert v.grad is None and z.grad is not None


def test_teacher_probs_equals_logits_path_and_topk_teacher():
    z, v, y = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64), None
    probs = torch.softmax(v / 3.0, -1)
    torch.testing.assert_close(
        kd_loss(z, teacher_probs=probs, temperature=3.0), kd_loss(z, v, y, temperature=3.0)
    )
    one_hot = torch.nn.functional.one_hot(v.argmax(-1), 6).double()
    expected = -np_log_softmax(z.numpy(), 2.0)[np.arange(5), v.argmax(-1).numpy()].mean() * 4
    assert kd_loss(z, teacher_probs=one_hot, temperature=2.0).item() == pytest.approx(expected)


def test_binary_kd_against_numpy():
    z, v = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (7, 3))
    zn, vn, yn = z.numpy(), v.numpy(), y.numpy().astype(float)
    for T, W in ((1.0, 0.5), (3.0, 0.8), (0.2, 0.0)):
        teacher = 1 / (1 + np.exp(-vn / T))
        expected = W * np_bce(teacher, zn) + (1 - W) * np_bce(yn, zn)
        out = binary_kd_loss(z, v, y, temperature=T, soft_weight=W, reduction="none")
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)
        tempered = W * T**2 * np_bce(teacher, zn / T) + (1 - W) * np_bce(yn, zn)
        out = binary_kd_loss(z, v, y.double(), temperature=T, soft_weight=W, temper_student=True)
        assert out.item() == pytest.approx(tempered.mean(), rel=1e-10)
        soft_only = binary_kd_loss(z[:, 0], v[:, 0], temperature=T, soft_weight=W, reduction="sum")
        assert soft_only.item() == pytest.approx(np_bce(teacher[:, 0], zn[:, 0]).sum(), rel=1e-10)
    step = binary_kd_loss(z, v, temperature=0.0, reduction="none")
    np.testing.assert_allclose(step.numpy(), np_bce((vn > 0).astype(float), zn), rtol=1e-10)


def test_logit_matching_against_numpy():
    z, v = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    zn, vn = z.numpy(), v.numpy()
    assert logit_matching_loss(z, v).item() == pytest.approx(((zn - vn) ** 2).mean())
    centred = (zn - zn.mean(1, keepdims=True)) - (vn - vn.mean(1, keepdims=True))
    assert logit_matching_loss(z, v, center=True).item() == pytest.approx((centred**2).mean())
    assert logit_matching_loss(z, v + 3.0, center=True).item() == pytest.approx((centred**2).mean())
    assert logit_matching_loss(z, v, reduction="none").shape == (4, 5)
    with pytest.raises(ValueError, match=r"`center=True` needs logits with a class axis \(N, C\)"):
        logit_matching_loss(z[:, 0], v[:, 0], center=True)


def test_pointwise_against_numpy():
    s, t = torch.randn(20, dtype=torch.float64), torch.randn(20, dtype=torch.float64) * 3
    r = t.numpy() - s.numpy()
    got = pointwise_distillation_loss(s, t, penalty={"name": "pinball", "tau": 0.8})
    assert got.item() == pytest.approx(np.maximum(0.8 * r, -0.2 * r).mean())
    multi = pointwise_distillation_loss(
        s, t, penalty={"name": "pinball", "tau": [0.1, 0.9]}, reduction="sum"
    )
    expected = np.mean([np.maximum(q * r, (q - 1) * r) for q in (0.1, 0.9)], axis=0).sum()
    assert multi.item() == pytest.approx(expected)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    rp = sig(t.numpy()) - sig(s.numpy())
    prob = pointwise_distillation_loss(s, t, penalty="squared", signal="prob", reduction="none")
    np.testing.assert_allclose(prob.numpy(), rp**2, rtol=1e-10)


def test_bad_inputs():
    z, v = torch.randn(6, 5), torch.randn(6, 4)
    with pytest.raises(
        ValueError,
        match=r"`teacher_logits` shape \(6, 4\) does not match `student_logits` shape \(6, 5\)",
    ):
        kd_loss(z, v)
    v = torch.randn(6, 5)
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, inf\), got -1"):
        kd_loss(z, v, temperature=-1.0)
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, inf\), got 0"):
        kd_loss(z, v, temperature=0.0)
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, inf\), got inf"):
        kd_loss(z, v, temperature=math.inf)
    with pytest.raises(ValueError, match=r"`alpha` must be in \[0, 1\], got 1.5"):
        kd_loss(z, v, alpha=1.5)
    with pytest.raises(
        TypeError, match="`student_logits` must be a floating-point tensor, got dtype torch.int64"
    ):
        kd_loss(torch.ones(6, 5, dtype=torch.long), v)
    with pytest.raises(
        TypeError,
        match="`teacher_logits` has dtype torch.float64 but `student_logits` has torch.float32",
    ):
        kd_loss(z, v.double())
    with pytest.raises(
        ValueError, match="`teacher_logits` is on device meta but `student_logits` is on cpu"
    ):
        kd_loss(z, v.to("meta"))
    with pytest.raises(
        ValueError, match="give exactly one of `teacher_logits` and `teacher_probs`"
    ):
        kd_loss(z, v, teacher_probs=torch.softmax(v, -1))
    with pytest.raises(
        ValueError, match="give exactly one of `teacher_logits` and `teacher_probs`"
    ):
        kd_loss(z)
    with pytest.raises(
        ValueError,
        match=r"`teacher_probs` rows must sum to 1 \(within 0.0001\), got a row summing to 2",
    ):
        kd_loss(z, teacher_probs=torch.softmax(v, -1) * 2)
    with pytest.raises(ValueError, match="`teacher_probs` must be non-negative, got -1"):
        kd_loss(
            z, teacher_probs=torch.full((6, 5), 0.25).index_fill_(1, torch.tensor([0]), -1.0) + 0.0
        )
    with pytest.raises(ValueError, match=r"`target` values must be in \[0, 5\) or -100, got 5"):
        kd_loss(z, v, torch.tensor([0, 1, 2, 3, 4, 5]))
    with pytest.raises(
        ValueError,
        match=r"`target` shape \(5,\) does not match `student_logits` shape without its class axis",
    ):
        kd_loss(z, v, torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError, match="`target` must be an integer tensor of class indices"):
        kd_loss(z, v, torch.zeros(6))
    with pytest.raises(
        ValueError,
        match=r"`student_logits` must have a class axis, shape \(N, C\) or \(\.\.\., C\), got",
    ):
        kd_loss(z[:, 0], v[:, 0])
    with pytest.raises(
        ValueError, match="`reduction` must be one of 'none', 'mean', 'sum', got 'batchmean'"
    ):
        kd_loss(z, v, reduction="batchmean")


def test_bad_inputs_binary_and_pointwise():
    z, v = torch.randn(6), torch.randn(6)
    with pytest.raises(ValueError, match=r"`temperature` must be in \[0, inf\), got -2"):
        binary_kd_loss(z, v, temperature=-2.0)
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, inf\), got 0"):
        binary_kd_loss(z, v, temperature=0.0, temper_student=True)
    with pytest.raises(ValueError, match=r"`soft_weight` must be in \[0, 1\], got -0.1"):
        binary_kd_loss(z, v, soft_weight=-0.1)
    with pytest.raises(ValueError, match=r"`target` values must be in \[0, 1\], got 2"):
        binary_kd_loss(z, v, torch.tensor([0, 1, 2, 0, 1, 0]))
    with pytest.raises(
        ValueError, match=r"`target` shape \(5,\) does not match `student_logits` shape \(6,\)"
    ):
        binary_kd_loss(z, v, torch.zeros(5))
    with pytest.raises(
        ValueError, match=r"`teacher` shape \(6, 1\) does not match `student` shape \(6,\)"
    ):
        pointwise_distillation_loss(z, v[:, None], penalty="absolute")
    with pytest.raises(ValueError, match=r"`tau` must be in \[0, 1\], got 1.2"):
        pointwise_distillation_loss(z, v, penalty={"name": "pinball", "tau": 1.2})
    with pytest.raises(ValueError, match=r"`beta` must be in \(0, inf\), got 0"):
        pointwise_distillation_loss(z, v, penalty={"name": "huber", "beta": 0})
    with pytest.raises(
        ValueError, match="`signal` must be one of 'logit', 'prob', got 'pair_prob'"
    ):
        pointwise_distillation_loss(z, v, penalty="absolute", signal="pair_prob")
