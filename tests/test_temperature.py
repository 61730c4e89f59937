import itertools

import numpy as np
import pytest
import torch

from distill.temperature import (
    ensemble_probs,
    log_softmax_t,
    sigmoid_t,
    smooth_labels,
    softmax_t,
    top_k_probs,
)


def np_softmax(z, T):
    z = np.asarray(z, dtype=np.float64) / T
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_softmax_t_matches_numpy_and_sums_to_one():
    z = torch.randn(5, 7, dtype=torch.float64)
    for T in (0.3, 1.0, 4.0):
        np.testing.assert_allclose(softmax_t(z, T).numpy(), np_softmax(z.numpy(), T), rtol=1e-12)
        np.testing.assert_allclose(
            log_softmax_t(z, T).numpy(), np.log(np_softmax(z.numpy(), T)), rtol=1e-10
        )
    out = softmax_t(z.T.contiguous(), 2.0, dim=0)
    np.testing.assert_allclose(out.T.numpy(), np_softmax(z.numpy(), 2.0), rtol=1e-12)


def test_temperature_limits():
    z = torch.tensor([[1.0, 3.0, 3.0, -2.0]])
    assert torch.equal(softmax_t(z, 0.0), torch.tensor([[0.0, 0.5, 0.5, 0.0]]))
    assert torch.equal(softmax_t(z, float("inf")), torch.full((1, 4), 0.25))
    np.testing.assert_allclose(softmax_t(z, 1e6).numpy(), 0.25, atol=1e-5)
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.equal(sigmoid_t(x, 0.0), torch.tensor([0.0, 0.5, 1.0]))
    assert torch.equal(sigmoid_t(x, float("inf")), torch.full((3,), 0.5))
    np.testing.assert_allclose(
        sigmoid_t(x, 2.0).numpy(), 1 / (1 + np.exp(-x.numpy() / 2)), rtol=1e-6
    )
    assert log_softmax_t(z, 0.0)[0, 0] == float("-inf")


def test_raising_t_flattens_and_scale_invariance():
    z = torch.tensor([0.0, 1.0, 3.0])
    entropies = [-(p * p.log()).sum() for p in (softmax_t(z, T) for T in (0.5, 1.0, 2.0, 8.0))]
    assert all(a < b for a, b in itertools.pairwise(entropies))
    torch.testing.assert_close(softmax_t(3.0 * z, 6.0), softmax_t(z, 2.0))


@pytest.mark.parametrize("T", [1e-3, 1.0, 1e3])
def test_extreme_logits_stay_finite(T):
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    for fn in (softmax_t, log_softmax_t):
        assert torch.isfinite(fn(z, T)).all()
    assert torch.isfinite(sigmoid_t(z, T)).all()
    for dtype in (torch.float16, torch.bfloat16):
        p = softmax_t(z.to(dtype), T)
        assert p.dtype == dtype and torch.isfinite(p).all()
        torch.testing.assert_close(p.float().sum(-1), torch.ones(2), atol=1e-2, rtol=0)


def test_gradcheck_float64():
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: softmax_t(x, 2.5), (z,))
    assert torch.autograd.gradcheck(lambda x: log_softmax_t(x, 0.7), (z,))
    assert torch.autograd.gradcheck(lambda x: sigmoid_t(x, 3.0), (z,))


def test_ensemble_means_against_numpy():
    members = torch.randn(3, 4, 5, dtype=torch.float64)
    v, T = members.numpy(), 2.0
    arithmetic = np.mean([np_softmax(m, T) for m in v], axis=0)
    log_geo = np.mean([np.log(np_softmax(m, T)) for m in v], axis=0)
    geometric = np.exp(log_geo) / np.exp(log_geo).sum(-1, keepdims=True)
    out_a = ensemble_probs(members, temperature=T)
    out_g = ensemble_probs(list(members), temperature=T, mean="geometric")
    np.testing.assert_allclose(out_a.numpy(), arithmetic, rtol=1e-12)
    np.testing.assert_allclose(out_g.numpy(), geometric, rtol=1e-12)
    torch.testing.assert_close(out_g, softmax_t(members.mean(0), T))


def test_ensemble_binary():
    members = torch.randn(4, 6, dtype=torch.float64)
    sig = 1 / (1 + np.exp(-members.numpy() / 3.0))
    out = ensemble_probs(members, temperature=3.0, binary=True)
    np.testing.assert_allclose(out.numpy(), sig.mean(0), rtol=1e-12)
    geo = ensemble_probs(members, temperature=3.0, binary=True, mean="geometric")
    g1, g0 = np.exp(np.log(sig).mean(0)), np.exp(np.log(1 - sig).mean(0))
    np.testing.assert_allclose(geo.numpy(), g1 / (g1 + g0), rtol=1e-12)


def test_ensemble_bad_input():
    with pytest.raises(ValueError, match=r"`teacher_logits\[1\]` shape \(2, 4\) does not match"):
        ensemble_probs([torch.zeros(2, 3), torch.zeros(2, 4)])
    with pytest.raises(ValueError, match="at least 1 member, got 0"):
        ensemble_probs([])
    with pytest.raises(ValueError, match=r"at least 2 dimension\(s\), got shape \(3,\)"):
        ensemble_probs(torch.zeros(3))
    with pytest.raises(ValueError, match="`mean` must be one of 'arithmetic', 'geometric'"):
        ensemble_probs(torch.zeros(2, 2, 3), mean="harmonic")


def test_top_k_against_loop():
    probs = torch.softmax(torch.randn(6, 8, dtype=torch.float64), -1)
    out = top_k_probs(probs, 3)
    for row, got in zip(probs.tolist(), out.tolist(), strict=True):
        keep = sorted(range(8), key=lambda i: -row[i])[:3]
        total = sum(row[i] for i in keep)
        expected = [row[i] / total if i in keep else 0.0 for i in range(8)]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="`k` must be <= the number of classes 8, got 9"):
        top_k_probs(probs, 9)
    with pytest.raises(ValueError, match="`k` must be >= 1, got 0"):
        top_k_probs(probs, 0)


def test_smooth_labels_against_formula():
    y = torch.tensor([0, 2, 1])
    out = smooth_labels(y, 3, 0.3)
    expected = np.full((3, 3), 0.1)
    expected[np.arange(3), y.numpy()] += 0.7
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    assert out.dtype == torch.float32
    with pytest.raises(ValueError, match=r"`epsilon` must be in \[0, 1\], got 1.5"):
        smooth_labels(y, 3, 1.5)
    with pytest.raises(ValueError, match=r"`target` values must be in \[0, 3\), got 5"):
        smooth_labels(torch.tensor([5]), 3, 0.1)
    with pytest.raises(TypeError, match="`target` must be an integer tensor of class indices"):
        smooth_labels(torch.tensor([1.0]), 3, 0.1)


def test_bad_temperature_and_logits():
    with pytest.raises(ValueError, match=r"`temperature` must be in \[0, inf\), got -1"):
        softmax_t(torch.zeros(3), -1.0)
    with pytest.raises(ValueError, match=r"`temperature` must be in \[0, inf\), got nan"):
        sigmoid_t(torch.zeros(3), float("nan"))
    with pytest.raises(TypeError, match="`logits` must be a floating-point tensor, got dtype"):
        softmax_t(torch.tensor([1, 2]), 1.0)
