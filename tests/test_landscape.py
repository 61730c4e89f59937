"""Loss-landscape lab: minimisers against FORMULAS §7, checked with scipy oracles."""

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from distill.landscape import (
    bimodal,
    empirical,
    expected_loss,
    expected_loss_landscape,
    huber_beta_for_prob_mean,
    normal,
    parse_loss,
    plot_landscape,
    read_sample,
    skew_normal,
    skewed_laplace,
)

NODES = 4001
SKEW, LOC, SCALE = 4.0, 0.5, 1.5
ORACLE = stats.skewnorm(SKEW, loc=LOC, scale=SCALE)


@pytest.fixture(scope="module")
def teacher():
    return skew_normal(skew=SKEW, loc=LOC, scale=SCALE, num_nodes=NODES)


def prob_mean_oracle(rv) -> float:
    low, high = rv.ppf(1e-12), rv.ppf(1 - 1e-12)
    mean_prob, _ = integrate.quad(lambda t: special.expit(t) * rv.pdf(t), low, high)
    return float(special.logit(mean_prob))


def minimiser(result, label):
    return next(row.logit for row in result.minimisers if row.loss == label)


def test_reference_points_match_scipy(teacher):
    assert teacher.logit_mean == pytest.approx(ORACLE.mean(), abs=2e-3)
    assert teacher.median == pytest.approx(ORACLE.median(), abs=1e-6)
    assert teacher.prob_mean == pytest.approx(prob_mean_oracle(ORACLE), abs=2e-3)


def test_logit_domain_minimisers_follow_formulas(teacher):
    losses = ["squared", "logistic", "absolute", "log_cosh", {"name": "huber", "beta": 1.0}]
    losses += [{"name": "pinball", "tau": tau} for tau in (0.1, 0.5, 0.9)]
    result = expected_loss_landscape(teacher, losses)
    median, mean = ORACLE.median(), ORACLE.mean()
    assert minimiser(result, "squared") == pytest.approx(mean, abs=2e-3)
    assert minimiser(result, "logistic") == pytest.approx(prob_mean_oracle(ORACLE), abs=2e-3)
    assert minimiser(result, "absolute") == pytest.approx(median, abs=2e-3)
    for tau in (0.1, 0.5, 0.9):
        found = minimiser(result, f"pinball(tau={tau})")
        assert found == pytest.approx(ORACLE.ppf(tau), abs=3e-3)
    for label in ("huber(beta=1.0)", "log_cosh"):
        assert median + 0.01 < minimiser(result, label) < mean - 0.01


def test_pinball_matches_numpy_quantile_of_a_sample():
    values = np.random.default_rng(0).standard_normal(5001) ** 3
    result = expected_loss_landscape(empirical(values), [{"name": "pinball", "tau": 0.3}])
    found = result.minimisers[0].logit
    sorted_values = np.sort(values)
    # the τ-quantile of a sample: any point between the two order statistics around τ·n
    assert sorted_values[1499] - 1e-9 <= found <= sorted_values[1500] + 1e-9
    assert found == pytest.approx(np.quantile(values, 0.3), abs=1e-3)


def test_probability_domain_minimisers(teacher):
    result = expected_loss_landscape(teacher, ["squared", "absolute"], domain="prob")
    assert minimiser(result, "squared") == pytest.approx(prob_mean_oracle(ORACLE), abs=2e-3)
    assert minimiser(result, "absolute") == pytest.approx(ORACLE.median(), abs=2e-3)
    assert result.minimisers[0].prob == pytest.approx(special.expit(result.minimisers[0].logit))


def test_multi_quantile_sets(teacher):
    symmetric = {"name": "pinball", "tau": [0.1, 0.3, 0.5, 0.7, 0.9]}
    upper = {"name": "pinball", "tau": [0.5, 0.7, 0.9]}
    lower = {"name": "pinball", "tau": [0.1, 0.3, 0.5]}
    smooth = {"name": "smoothed_pinball", "tau": [0.1, 0.5, 0.9], "beta": 1.0}
    result = expected_loss_landscape(teacher, [symmetric, upper, lower, smooth])
    found = [row.logit for row in result.minimisers]
    median, mean = ORACLE.median(), ORACLE.mean()
    assert found[0] == pytest.approx(median, abs=2e-3)
    assert ORACLE.ppf(0.5) + 0.05 < found[1] < ORACLE.ppf(0.9)
    assert ORACLE.ppf(0.1) < found[2] < median - 0.05
    assert median < found[3] < mean


def test_shifted_penalty_minimiser_outside_the_support():
    # uncentred G-SmeLU: minimum at r = x_m = -(α·g₊ + β·g₋)/(g₊ − g₋) = -0.5, so the
    # minimiser of E[ρ(t − s)] for t ∈ {0, 0.1} lies at s = t − x_m, beyond max t
    gsmelu = {"name": "gsmelu", "alpha": 1.0, "beta": 1.0, "g_minus": -1.0, "g_plus": 3.0}
    result = expected_loss_landscape(empirical([0.0, 0.1]), [gsmelu])
    values = np.array([0.0, 0.1])

    def risk(s):
        r = values - s  # inside [-α, β] the penalty is a·r² + b·r + c with a = 1, b = 1
        return np.mean(r**2 + r)

    oracle = optimize.minimize_scalar(risk, bounds=(-2, 2), method="bounded").x
    assert result.minimisers[0].logit == pytest.approx(oracle, abs=1e-5)
    assert oracle > 0.5


def test_expected_loss_values_against_closed_forms():
    teacher = normal(loc=1.0, scale=2.0, num_nodes=NODES)
    s = np.array([-1.0, 0.0, 2.5])
    squared = expected_loss(teacher, "squared")(s)
    np.testing.assert_allclose(squared, 4.0 + (s - 1.0) ** 2, rtol=2e-3)
    rv = stats.norm(1.0, 2.0)
    absolute = [integrate.quad(lambda t, v=v: abs(t - v) * rv.pdf(t), -19, 21)[0] for v in s]
    np.testing.assert_allclose(expected_loss(teacher, "absolute")(s), absolute, rtol=2e-3)


def test_huber_beta_for_prob_mean_lands_on_prob_mean():
    # skew-normal(4) at loc 0: median < prob mean < logit mean, so some β reaches it
    rv = stats.skewnorm(4.0)
    beta = huber_beta_for_prob_mean(skew_normal(skew=4.0, num_nodes=NODES))
    target = prob_mean_oracle(rv)
    assert rv.median() < target < rv.mean()

    def huber_risk(s: float) -> float:
        huber = lambda t: np.where(  # noqa: E731
            abs(t - s) < beta, (t - s) ** 2 / (2 * beta), abs(t - s) - beta / 2
        )
        return integrate.quad(lambda t: huber(t) * rv.pdf(t), -3, 8, limit=200)[0]

    oracle = optimize.minimize_scalar(huber_risk, bounds=(target - 1, target + 1), method="bounded")
    assert oracle.x == pytest.approx(target, abs=5e-3)


def test_huber_beta_unreachable_raises():
    # loc < 0 and a right tail: the prob mean lies above the logit mean, out of Huber's reach
    teacher = skew_normal(skew=4.0, loc=-3.0, scale=2.0, num_nodes=1001)
    with pytest.raises(ValueError, match="no `beta` in"):
        huber_beta_for_prob_mean(teacher)


def test_other_families_against_scipy():
    laplace = skewed_laplace(skew=1.0, loc=0.5, scale=1.0, num_nodes=NODES)
    oracle = stats.laplace_asymmetric(np.exp(-0.5), loc=0.5, scale=1.0)
    assert laplace.logit_mean == pytest.approx(oracle.mean(), abs=3e-3)
    assert laplace.median == pytest.approx(oracle.median(), abs=1e-6)
    mixture = bimodal(loc=-1.0, scale=0.5, loc2=2.0, scale2=1.0, weight=0.3, num_nodes=NODES)

    def cdf(x):
        return 0.3 * stats.norm.cdf(x, -1.0, 0.5) + 0.7 * stats.norm.cdf(x, 2.0, 1.0)

    assert mixture.median == pytest.approx(optimize.brentq(lambda x: cdf(x) - 0.5, -5, 5), abs=1e-4)
    assert mixture.logit_mean == pytest.approx(0.3 * -1.0 + 0.7 * 2.0, abs=2e-3)


def test_read_sample_formats(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = np.array([0.5, -1.0, 2.0, 3.0])
    pq.write_table(pa.table({"score": values}), tmp_path / "s.parquet")
    cache = tmp_path / "scores"
    cache.mkdir()
    for shard, part in enumerate((values[:2], values[2:])):
        pq.write_table(pa.table({"logits": part}), cache / f"scores-{shard:05d}-of-00002.parquet")
    np.save(tmp_path / "s.npy", values)
    (tmp_path / "s.txt").write_text("0.5\n-1\n\n2\n3\n")
    for name in ("s.parquet", "s.npy", "s.txt"):
        dist = read_sample(tmp_path / name, column="score")
        np.testing.assert_array_equal(dist.nodes, np.sort(values))
    np.testing.assert_array_equal(read_sample(cache).nodes, np.sort(values))
    multiclass = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(6)), 3)
    pq.write_table(pa.table({"logits": multiclass}), tmp_path / "m.parquet")
    with pytest.raises(ValueError, match="column 'logits' must hold one number per row"):
        read_sample(tmp_path / "m.parquet")
    (tmp_path / "bad.txt").write_text("1.0\nabc\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected one number, got 'abc'"):
        read_sample(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match=r"`column` must be one of \['score'\], got 'x'"):
        read_sample(tmp_path / "s.parquet", column="x")


def test_parse_loss():
    assert parse_loss("squared") == "squared"
    assert parse_loss("pinball:0.1,0.5,0.9") == {"name": "pinball", "tau": [0.1, 0.5, 0.9]}
    assert parse_loss("huber:2") == {"name": "huber", "beta": 2.0}
    assert parse_loss("gsmelu:alpha=1:beta=0.5:g_minus=-1:g_plus=1:center=true") == {
        "name": "gsmelu",
        "alpha": 1.0,
        "beta": 0.5,
        "g_minus": -1.0,
        "g_plus": 1.0,
        "center": True,
    }
    assert parse_loss("smoothed_pinball:0.5:smoother=softplus")["smoother"] == "softplus"
    with pytest.raises(ValueError, match="write parameters of 'gsmelu' as key=value"):
        parse_loss("gsmelu:1")


def test_bad_input_messages(teacher):
    with pytest.raises(ValueError, match="`losses` must name at least one loss"):
        expected_loss_landscape(teacher, [])
    with pytest.raises(ValueError, match="`domain` must be one of 'logit', 'prob', got 'odds'"):
        expected_loss(teacher, "squared", domain="odds")
    with pytest.raises(ValueError, match=r"`grid` must be 1-D, finite, .* got shape \(1,\)"):
        expected_loss_landscape(teacher, ["squared"], grid=[0.0])
    with pytest.raises(ValueError, match="`scale` must be in"):
        normal(scale=0.0)
    with pytest.raises(ValueError, match=r"`values` must be finite, got 1 NaN/inf"):
        empirical([0.0, float("nan")])


def test_plot_writes_png_with_one_line_per_loss(tmp_path, teacher):
    result = expected_loss_landscape(teacher, ["squared", "absolute"], num_points=51)
    figure = plot_landscape(result, tmp_path / "l.png")
    assert (tmp_path / "l.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert {"squared", "absolute", "logit mean", "prob mean", "median"} <= set(labels)
    data = result.to_dict()
    assert len(data["curves"]["squared"]) == 51 and data["domain"] == "logit"
