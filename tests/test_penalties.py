import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar

from distill import penalties as P

R = np.array([-1e4, -7.0, -1.5, -0.3, 0.0, 0.2, 0.9, 2.5, 100.0, 1e4])


def np_pinball(r, tau):
    return np.where(r >= 0, tau * r, (tau - 1) * r)


def np_huber(r, beta):
    return np.where(np.abs(r) < beta, r**2 / (2 * beta), np.abs(r) - beta / 2)


def np_smelu(x, beta):
    return np.where(x <= -beta, 0.0, np.where(x >= beta, x, (x + beta) ** 2 / (4 * beta)))


def np_gsmelu(x, alpha, beta, gm, gp, t):
    a = (gp - gm) / (2 * (alpha + beta))
    b = (alpha * gp + beta * gm) / (alpha + beta)
    c = t + (alpha**2 * (gp + gm) + 2 * alpha * beta * gm) / (2 * (alpha + beta))
    right = gp * x + t + gm * (alpha + beta) / 2 + gp * (alpha - beta) / 2
    return np.where(
        x <= -alpha, gm * (x + alpha) + t, np.where(x >= beta, right, a * x**2 + b * x + c)
    )


def t64(x):
    return torch.tensor(x, dtype=torch.float64)


def test_values_against_numpy_formulas():
    r = t64(R)
    np.testing.assert_allclose(P.squared(r).numpy(), R**2)
    np.testing.assert_allclose(P.absolute(r).numpy(), np.abs(R))
    np.testing.assert_allclose(P.pinball(r, 0.3).numpy(), np_pinball(R, 0.3))
    np.testing.assert_allclose(P.huber(r, 0.7).numpy(), np_huber(R, 0.7))
    np.testing.assert_allclose(P.smelu(r, 1.3).numpy(), np_smelu(R, 1.3))
    small = R[np.abs(R) < 50]
    np.testing.assert_allclose(P.log_cosh(t64(small)).numpy(), np.log(np.cosh(small)), atol=1e-12)
    np.testing.assert_allclose(P.log_cosh(t64([1e4])).numpy(), [1e4 - np.log(2)])
    kw = dict(alpha=0.5, beta=2.0, g_minus=-0.3, g_plus=1.2, t=0.4)
    np.testing.assert_allclose(P.gsmelu(r, **kw).numpy(), np_gsmelu(R, 0.5, 2.0, -0.3, 1.2, 0.4))


def test_multi_quantile_pinball_trailing_axis():
    r = torch.randn(4, 3, dtype=torch.float64)
    taus = [0.1, 0.5, 0.9]
    out = P.pinball(r, taus)
    assert out.shape == (4, 3, 3)
    for k, tau in enumerate(taus):
        np.testing.assert_allclose(out[..., k].numpy(), np_pinball(r.numpy(), tau))
    penalty = P.get({"name": "pinball", "tau": taus})
    expected = np.mean([np_pinball(r.numpy(), tau) for tau in taus], axis=0)
    np.testing.assert_allclose(penalty(r).numpy(), expected)
    assert P.pinball(r, torch.tensor(taus)).shape == (4, 3, 3)


def test_log_cosh_float32_no_overflow():
    r = torch.tensor([-200.0, -89.5, 90.0, 1e4])
    out = P.log_cosh(r)
    assert torch.isfinite(out).all()
    np.testing.assert_allclose(out.numpy(), np.abs(r.numpy()) - np.log(2), rtol=1e-6)


def test_huber_equals_torch_smooth_l1_and_scaled_huber_loss():
    r = torch.randn(50, dtype=torch.float64) * 3
    for beta in (0.1, 1.0, 4.0):
        zero = torch.zeros_like(r)
        torch.testing.assert_close(
            P.huber(r, beta), F.smooth_l1_loss(r, zero, reduction="none", beta=beta)
        )
        torch.testing.assert_close(
            P.huber(r, beta), F.huber_loss(r, zero, reduction="none", delta=beta) / beta
        )


def test_smelu_identity_with_huber():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    for beta in (0.2, 1.0, 3.0):
        torch.testing.assert_close(P.smelu(x, beta), (x + P.huber(x, beta) + beta / 2) / 2)


def _slopes(f, x0, eps=1e-7):
    left = (f(x0) - f(x0 - eps)) / eps
    right = (f(x0 + eps) - f(x0)) / eps
    return left, right


@pytest.mark.parametrize(
    "kw",
    [
        dict(alpha=1.0, beta=1.0, g_minus=0.0, g_plus=1.0, t=0.0),
        dict(alpha=0.5, beta=2.0, g_minus=-0.3, g_plus=1.2, t=0.4),
        dict(alpha=-0.5, beta=1.5, g_minus=0.7, g_plus=-0.2, t=-1.0),
    ],
)
def test_gsmelu_continuity_at_knots(kw):
    def f(x):
        return P.gsmelu(t64([x]), **kw).item()

    for knot in (-kw["alpha"], kw["beta"]):
        assert f(knot - 1e-9) == pytest.approx(f(knot + 1e-9), abs=1e-8)
        left, right = _slopes(f, knot)
        assert left == pytest.approx(right, abs=1e-5)
    assert f(-kw["alpha"]) == pytest.approx(kw["t"], abs=1e-12)
    x = t64([-kw["alpha"] - 1.0, kw["beta"] + 1.0])
    x.requires_grad_(True)
    P.gsmelu(x, **kw).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [kw["g_minus"], kw["g_plus"]])


def test_gsmelu_smelu_special_case_and_minimum():
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    for beta in (0.5, 2.0):
        out = P.gsmelu(x, alpha=beta, beta=beta, g_minus=0.0, g_plus=1.0)
        torch.testing.assert_close(out, P.smelu(x, beta))
    kw = dict(alpha=0.8, beta=1.7, g_minus=-0.4, g_plus=0.9)
    found = minimize_scalar(
        lambda v: P.gsmelu(t64([v]), **kw, t=0.3).item(), bounds=(-5, 5), method="bounded"
    )
    x_m = -(0.8 * 0.9 + 1.7 * -0.4) / (0.9 + 0.4)
    assert found.x == pytest.approx(x_m, abs=1e-4)
    centered = P.gsmelu(x, **kw, t=0.3, center=True)
    assert centered.min().item() >= -1e-12
    assert P.gsmelu(t64([0.0]), **kw, t=0.3, center=True).item() == pytest.approx(0.0, abs=1e-12)
    found = minimize_scalar(
        lambda v: P.gsmelu(t64([v]), **kw, t=0.3, center=True).item(),
        bounds=(-5, 5),
        method="bounded",
    )
    assert found.x == pytest.approx(0.0, abs=1e-4) and found.fun == pytest.approx(0.0, abs=1e-8)


def test_golden_pair_vector():
    """FORMULAS §5: scores [0, 3, 1, 2], labels [0, 0, 1, 1] as teacher, unequal pairs, summed."""
    scores, labels = [0.0, 3.0, 1.0, 2.0], [0.0, 0.0, 1.0, 1.0]
    pairs = [(i, j) for i in range(4) for j in range(4) if labels[i] > labels[j]]
    r = t64([(labels[i] - labels[j]) - (scores[i] - scores[j]) for i, j in pairs])
    assert P.pinball(r, 0.5).sum().item() == 3.0
    assert P.pinball(r, 1.0).sum().item() == 5.0
    assert P.smoothed_pinball(r, 0.5, smoother="relu2").sum().item() == 7.0


def test_smoothed_pinball_smelu_equals_gsmelu_form():
    r = torch.linspace(-6, 6, 121, dtype=torch.float64)
    for tau, beta in ((0.2, 1.0), (0.5, 0.3), (0.9, 2.0)):
        out = P.smoothed_pinball(r, tau, smoother="smelu", beta=beta)
        form = P.gsmelu(r, alpha=beta, beta=beta, g_minus=tau - 1, g_plus=tau, t=(1 - tau) * beta)
        torch.testing.assert_close(out, form)
        outside = r.abs() >= beta
        torch.testing.assert_close(out[outside], P.pinball(r, tau)[outside])


def test_smoothed_pinball_other_smoothers_against_numpy():
    r = np.linspace(-30, 30, 61)
    tau, beta = 0.3, 0.5

    def combine(phi):
        return tau * phi(r) + (1 - tau) * phi(-r)

    softplus = combine(lambda x: beta * np.logaddexp(0, x / beta))
    relu2 = combine(lambda x: np.maximum(x, 0) ** 2)
    swish = combine(lambda x: x / (1 + np.exp(-x / beta)))
    for name, expected in (("softplus", softplus), ("relu2", relu2), ("swish", swish)):
        out = P.smoothed_pinball(t64(r), tau, smoother=name, beta=beta).numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


@pytest.fixture
def skewed_sample():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.exponential(1.0, 400), rng.normal(0, 0.2, 200)])


def _argmin(penalty, sample):
    t = t64(sample)

    def objective(s):
        return penalty(t - s).mean().item()

    return minimize_scalar(objective, bounds=(sample.min(), sample.max()), method="bounded").x


def test_minimisers_on_skewed_sample(skewed_sample):
    t = skewed_sample
    mean, median = t.mean(), np.median(t)
    assert median < mean - 0.1
    assert _argmin(P.squared, t) == pytest.approx(mean, abs=1e-4)
    assert _argmin(P.absolute, t) == pytest.approx(median, abs=1e-2)
    for tau in (0.1, 0.8):
        assert _argmin(lambda r, tau=tau: P.pinball(r, tau), t) == pytest.approx(
            np.quantile(t, tau), abs=2e-2
        )
    for penalty in (lambda r: P.huber(r, 1.0), P.log_cosh):
        s = _argmin(penalty, t)
        assert median + 0.02 < s < mean - 0.02
    symmetric = P.get({"name": "pinball", "tau": [0.25, 0.5, 0.75]})
    assert _argmin(symmetric, t) == pytest.approx(median, abs=0.05)


def test_expectile_minimiser(skewed_sample):
    t, tau = skewed_sample, 0.8
    e = t.mean()
    for _ in range(200):
        w = np.where(t > e, tau, 1 - tau)
        e = (w * t).sum() / w.sum()
    penalty = P.get({"name": "smoothed_pinball", "tau": tau, "smoother": "relu2"})
    assert _argmin(penalty, t) == pytest.approx(e, abs=1e-4)


def test_gradcheck_float64():
    r = (torch.randn(12, dtype=torch.float64) * 2).requires_grad_(True)
    specs = [
        "squared",
        "log_cosh",
        {"name": "huber", "beta": 0.7},
        {"name": "smelu", "beta": 1.1},
        {"name": "gsmelu", "alpha": 1.0, "beta": 0.5, "g_minus": -0.2, "g_plus": 0.8},
        {"name": "smoothed_pinball", "tau": [0.2, 0.7], "smoother": "softplus", "beta": 0.5},
        {"name": "smoothed_pinball", "tau": 0.3, "smoother": "swish"},
    ]
    for spec in specs:
        assert torch.autograd.gradcheck(P.get(spec), (r,)), spec


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_runs(dtype):
    r = torch.tensor([-1e4, -2.0, 0.0, 0.5, 1e4]).to(dtype)
    for name in P.PENALTIES:
        spec = {"name": name, **({"tau": [0.1, 0.9]} if "pinball" in name else {})}
        if name == "gsmelu":
            spec.update(alpha=1.0, beta=1.0, g_minus=-0.5, g_plus=0.5)
        out = P.get(spec)(r)
        assert out.dtype == dtype and out.shape == r.shape
        if name != "squared":
            assert torch.isfinite(out).all(), name


def test_get_names_defaults_and_errors():
    assert (
        P.get("huber") == P.get({"name": "huber", "beta": 1.0}) == P.Penalty("huber", {"beta": 1.0})
    )
    assert repr(P.get("absolute")) == "Penalty(absolute)"
    p = P.get(
        {
            "name": "gsmelu",
            "alpha": 1,
            "beta": 1,
            "g_minus": -0.5,
            "g_plus": 0.5,
            "t": 0.0,
            "center": True,
        }
    )
    assert p.name == "gsmelu" and p.params["center"] is True
    q = P.get({"name": "smoothed_pinball", "tau": (0.1, 0.9), "smoother": "softplus", "beta": 0.2})
    assert repr(q) == "Penalty(smoothed_pinball, tau=[0.1, 0.9], smoother='softplus', beta=0.2)"
    assert P.get(q.spec()) == q and hash(P.get(q.spec())) == hash(q) and P.get(q) is q
    with pytest.raises(
        ValueError, match="`penalty` must be one of 'squared', 'absolute'.*got 'l3'"
    ):
        P.get("l3")
    with pytest.raises(
        ValueError,
        match="penalty 'huber' got unknown key\\(s\\) \\['delta'\\]; allowed keys: 'beta'",
    ):
        P.get({"name": "huber", "delta": 1.0})
    with pytest.raises(
        ValueError, match="penalty 'gsmelu' needs key\\(s\\) \\['g_minus', 'g_plus'\\]"
    ):
        P.get({"name": "gsmelu", "alpha": 1, "beta": 1})
    with pytest.raises(ValueError, match="`penalty` mapping needs a 'name' key"):
        P.get({"tau": 0.5})
    with pytest.raises(
        TypeError, match="`penalty` must be a name, a mapping or a Penalty, got int"
    ):
        P.get(3)
    with pytest.raises(ValueError, match=r"`beta` must be in \(0, inf\), got -1"):
        P.get({"name": "huber", "beta": -1})


def test_bad_inputs():
    r = torch.zeros(3)
    with pytest.raises(ValueError, match=r"`tau` must be in \[0, 1\], got 1.2"):
        P.pinball(r, 1.2)
    with pytest.raises(ValueError, match=r"`tau` must be in \[0, 1\], got -0.1"):
        P.pinball(r, [0.5, -0.1])
    with pytest.raises(ValueError, match=r"`tau` must be a number or a non-empty 1-D sequence"):
        P.smoothed_pinball(r, [[0.5]])
    with pytest.raises(ValueError, match=r"`beta` must be in \(0, inf\), got 0"):
        P.huber(r, 0.0)
    with pytest.raises(ValueError, match=r"`beta` must be in \(0, inf\), got 0"):
        P.smelu(r, 0)
    with pytest.raises(
        TypeError, match="`r` must be a floating-point tensor, got dtype torch.int64"
    ):
        P.squared(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"`alpha \+ beta` must be in \(0, inf\), got 0"):
        P.gsmelu(r, alpha=1.0, beta=-1.0, g_minus=0.0, g_plus=1.0)
    with pytest.raises(ValueError, match="`center=True` needs g_minus <= 0 <= g_plus"):
        P.gsmelu(r, alpha=1.0, beta=1.0, g_minus=0.2, g_plus=1.0, center=True)
    with pytest.raises(ValueError, match="`smoother` must be one of 'smelu', 'softplus'"):
        P.smoothed_pinball(r, 0.5, smoother="tanh")


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.85])
@pytest.mark.parametrize("beta", [0.2, 1.0, 3.0])
def test_sigmoid_smoother_gradient_is_sigmoid_step(tau, beta):
    r = np.linspace(-8, 8, 81)
    out = lambda x: P.smoothed_pinball(t64(x), tau, smoother="sigmoid", beta=beta).numpy()  # noqa: E731
    step = 1e-5
    numeric = (out(r + step) - out(r - step)) / (2 * step)
    expected = tau - 1 / (1 + np.exp(r / beta))  # τ − σ(−r/β)
    np.testing.assert_allclose(numeric, expected, atol=1e-7)
    np.testing.assert_allclose(out(r), tau * r + beta * np.logaddexp(0, -r / beta), rtol=1e-12)


def test_sigmoid_smoother_is_softplus_smoother_up_to_a_constant():
    r = t64(np.linspace(-40, 40, 161))
    for tau, beta in ((0.2, 0.5), (0.7, 2.0), ([0.1, 0.5, 0.9], 1.0)):
        sigmoid = P.smoothed_pinball(r, tau, smoother="sigmoid", beta=beta)
        softplus = P.smoothed_pinball(r, tau, smoother="softplus", beta=beta)
        gap = (sigmoid - softplus).numpy()
        np.testing.assert_allclose(gap, gap.flat[0], atol=1e-7)  # torch softplus: threshold 20
        assert abs(gap.flat[0]) < 1e-7  # the constant is 0: β·softplus(x/β) = x + β·softplus(−x/β)


def test_sigmoid_smoother_stable_and_in_get():
    r = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4])
    out = P.get({"name": "smoothed_pinball", "tau": 0.3, "smoother": "sigmoid", "beta": 0.01})(r)
    assert torch.isfinite(out).all()
    bump = torch.tensor([0.0, 0.0, 0.01 * math.log(2), 0.0, 0.0])  # β·log 2 at r = 0 only
    torch.testing.assert_close(out, P.pinball(r, 0.3) + bump)
    with pytest.raises(ValueError, match="smoother"):
        P.smoothed_pinball(r, 0.3, smoother="tanh")


@pytest.mark.parametrize("taus", [[0.5], [0.2, 0.8], [0.1, 0.3, 0.5, 0.7, 0.9]])
def test_expectile_symmetric_set_minimiser_is_exactly_the_mean(skewed_sample, taus):
    t = skewed_sample
    penalty = P.get({"name": "smoothed_pinball", "tau": taus, "smoother": "relu2"})
    assert _argmin(penalty, t) == pytest.approx(t.mean(), abs=1e-6)
    assert abs(t.mean() - np.median(t)) > 0.1  # the skew separates mean and median
    r = t64(np.linspace(-3, 3, 13))
    torch.testing.assert_close(penalty(r), r.square() / 2)  # τ and 1 − τ terms add to r²


def test_pinball_half_is_half_of_absolute():
    r = t64(R)
    torch.testing.assert_close(P.pinball(r, 0.5), P.absolute(r) / 2)
