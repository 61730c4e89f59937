import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import OneHotEncoder

from distill.data import load_builtin, synthetic_ctr, synthetic_recommender


def test_digits_matches_sklearn_scaled():
    ds = load_builtin("digits")
    bunch = load_digits()
    assert ds.features.shape == (1797, 64) and ds.features.dtype == torch.float32
    assert np.allclose(ds.features.numpy(), bunch.data / 16.0)
    assert ds.labels.tolist() == bunch.target.tolist()
    assert float(ds.features.min()) >= 0.0 and float(ds.features.max()) == 1.0
    assert ds.meta["num_classes"] == 10


def test_unknown_builtin():
    with pytest.raises(ValueError, match="`name` must be one of 'digits'"):
        load_builtin("mnist")


def test_recommender_structure_and_determinism():
    ds = synthetic_recommender(50, 8, 6, 2, seed=1)
    assert ds.features.shape == (400, 6) and ds.labels.dtype == torch.float32
    assert ds.groups.tolist() == [g for g in range(50) for _ in range(8)]
    assert set(ds.labels.tolist()) <= {0.0, 1.0}
    assert ds.select_features(ds.meta["student_features"]).features.shape == (400, 2)
    again = synthetic_recommender(50, 8, 6, 2, seed=1)
    assert torch.equal(ds.features, again.features) and torch.equal(ds.labels, again.labels)
    assert not torch.equal(ds.labels, synthetic_recommender(50, 8, 6, 2, seed=2).labels)


def test_recommender_clicks_follow_true_prob_and_depend_on_all_features():
    ds = synthetic_recommender(400, 25, 8, 2, seed=0)
    p = ds.extras["true_prob"]
    assert abs(float(ds.labels.mean() - p.mean())) < 0.02
    # non-linear: a linear fit of the clean logit leaves a clear residual; misspecified student:
    # a non-parametric fit on the student's 2 features explains far less than on all 8.
    x, logit = ds.features.numpy(), ds.extras["clean_logit"].numpy()
    assert LinearRegression().fit(x, logit).score(x, logit) < 0.95
    full = KNeighborsRegressor(10).fit(x[:8000], logit[:8000]).score(x[8000:], logit[8000:])
    student = KNeighborsRegressor(10).fit(x[:8000, :2], logit[:8000])
    assert full > student.score(x[8000:, :2], logit[8000:]) + 0.2


def test_skewed_noise_separates_median_and_mean():
    gaps = {}
    for noise in ("normal", "skewed"):
        ds = synthetic_recommender(200, 50, 4, 1, noise=noise, seed=0)
        eps = torch.logit(ds.extras["true_prob"].double()) - ds.extras["clean_logit"].double()
        assert abs(float(eps.mean())) < 0.05 and abs(float(eps.std()) - 1) < 0.05
        gaps[noise] = float(eps.mean() - eps.median())
    assert abs(gaps["normal"]) < 0.05
    # standardised log-normal(0, 1): mean - median = (e^0.5 - 1) / sqrt((e - 1) e) = 0.30
    assert gaps["skewed"] > 0.25


def test_recommender_bad_options():
    with pytest.raises(ValueError, match=r"`student_features` must be <= n_features \(4\)"):
        synthetic_recommender(2, 2, 4, 5)
    with pytest.raises(ValueError, match="`noise` must be one of 'normal', 'skewed'"):
        synthetic_recommender(2, 2, 4, 1, noise="cauchy")


def test_ctr_ids_rate_and_zipf():
    ds = synthetic_ctr(20_000, fields=3, cardinality=[5, 50, 200], seed=0, click_rate=0.05)
    assert ds.features.dtype == torch.int64 and ds.features.shape == (20_000, 3)
    assert ds.num_embeddings == 256
    bounds = [(1, 5), (6, 55), (56, 255)]
    for column, (low, high) in enumerate(bounds):
        assert (
            low <= int(ds.features[:, column].min()) and int(ds.features[:, column].max()) <= high
        )
    assert abs(float(ds.extras["true_prob"].mean()) - 0.05) < 1e-3
    assert 0.04 < float(ds.labels.mean()) < 0.06
    counts = torch.bincount(ds.features[:, 2] - 56, minlength=200).sort(descending=True).values
    assert counts[0] > 10 * counts[100]  # Zipf-like: the top value is far more frequent


def test_ctr_interactions_are_not_additive():
    ds = synthetic_ctr(8000, fields=4, cardinality=10, seed=0)
    one_hot = OneHotEncoder().fit_transform(ds.features.numpy())
    logit = ds.extras["true_logit"].numpy()
    assert torch.allclose(torch.sigmoid(ds.extras["true_logit"]), ds.extras["true_prob"])
    assert LinearRegression().fit(one_hot, logit).score(one_hot, logit) < 0.9


def test_ctr_bad_options():
    with pytest.raises(ValueError, match=r"`click_rate` must be in \(0, 1\), got 1"):
        synthetic_ctr(10, click_rate=1.0)
    with pytest.raises(ValueError, match="`cardinality` has 2 entries for 3 fields"):
        synthetic_ctr(10, fields=3, cardinality=[4, 5])
