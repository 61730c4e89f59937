import pytest
import torch

from distill.data import Dataset, parse_feature_spec, split


def _dataset(n=12, d=5):
    return Dataset(
        features=torch.arange(n * d, dtype=torch.float32).reshape(n, d),
        labels=torch.arange(n) % 3,
        groups=torch.tensor([7, 7, 7, 2, 2, 9, 9, 9, 9, 4, 5, 5])[:n],
        extras={"true_prob": torch.linspace(0, 1, n)},
    )


def test_defaults_ids_and_names():
    ds = _dataset()
    assert len(ds) == 12
    assert ds.ids.tolist() == list(range(12))
    assert ds.feature_names == ["1", "2", "3", "4", "5"]
    assert not ds.is_sparse


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": torch.zeros(3)}, ValueError, "`labels` has 3 rows but `features` has 4"),
        ({"labels": torch.zeros(4, dtype=torch.float64)}, TypeError, "`labels` must have dtype"),
        ({"features": torch.zeros(4)}, ValueError, "`features` must have 2 dimension"),
        ({"groups": torch.zeros(4, dtype=torch.int32)}, TypeError, "`groups` must have dtype"),
        ({"feature_names": ["a"]}, ValueError, "1 names for 2 columns"),
        ({"extras": {"p": torch.zeros(5)}}, ValueError, r"`extras\['p'\]` must be a tensor"),
        (
            {"features": torch.ones(4, 2, dtype=torch.int64), "feature_values": torch.ones(4, 3)},
            ValueError,
            r"`feature_values` shape \(4, 3\) does not match `features` shape \(4, 2\)",
        ),
    ],
)
def test_bad_construction(kwargs, error, match):
    args = {"features": torch.zeros(4, 2), "labels": torch.zeros(4), **kwargs}
    with pytest.raises(error, match=match):
        Dataset(**args)


def test_subset_takes_rows_of_every_tensor():
    ds = _dataset()
    sub = ds.subset([5, 0, 11])
    assert sub.ids.tolist() == [5, 0, 11]
    assert sub.groups.tolist() == [9, 7, 5]
    assert torch.equal(sub.features[1], ds.features[0])
    assert torch.equal(sub.extras["true_prob"], ds.extras["true_prob"][[5, 0, 11]])
    mask = ds.labels == 0
    assert ds.subset(mask).ids.tolist() == [0, 3, 6, 9]
    with pytest.raises(ValueError, match=r"bool `index` must have shape \(12,\)"):
        ds.subset(torch.ones(3, dtype=torch.bool))


def test_sparse_subset_and_select_keep_values():
    ds = Dataset(
        features=torch.tensor([[1, 4, 0], [2, 3, 5]]),
        labels=torch.tensor([0.0, 1.0]),
        feature_values=torch.tensor([[0.5, 1.0, 0.0], [2.0, 3.0, 4.0]]),
        num_embeddings=6,
    )
    assert ds.is_sparse
    picked = ds.select_features("2-3")
    assert picked.features.tolist() == [[4, 0], [3, 5]]
    assert picked.feature_values.tolist() == [[1.0, 0.0], [3.0, 4.0]]
    assert picked.num_embeddings == 6


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1-3,5", [0, 1, 2, 4]),
        ("5, 1", [4, 0]),
        ("2", [1]),
        (["e", "a"], [4, 0]),
        ([0, 3], [0, 3]),
    ],
)
def test_feature_spec(spec, expected):
    assert parse_feature_spec(spec, ["a", "b", "c", "d", "e"]) == expected


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("0-3", ValueError, r"range '0-3' must lie in 1-5 \(1-based, inclusive\)"),
        ("4-6", ValueError, "must lie in 1-5"),
        ("3-1", ValueError, "must lie in 1-5"),
        ("1-2-3", ValueError, "part '1-2-3' is not a position or range"),
        ("a", ValueError, "part 'a' is not a position"),
        (["a", "zz"], ValueError, r"unknown feature\(s\) \['zz'\]"),
        ([0, 5], ValueError, r"indices must be in \[0, 4\], got \[5\]"),
        (["a", 1], TypeError, "range string, a list of names or a list of int"),
    ],
)
def test_feature_spec_errors(spec, error, match):
    with pytest.raises(error, match=match):
        parse_feature_spec(spec, ["a", "b", "c", "d", "e"])


def test_select_features_names_and_order():
    ds = _dataset().select_features("4,1-2")
    assert ds.feature_names == ["4", "1", "2"]
    assert ds.features[1].tolist() == [8.0, 5.0, 6.0]


def test_split_keeps_groups_whole_and_is_seeded():
    ds = _dataset()
    parts = split(ds, (0.5, 0.25, 0.25), seed=3)
    seen = [set(p.groups.tolist()) for p in parts]
    assert [len(s) for s in seen] == [3, 1, 1]  # 5 groups: ends at floor(2.5+.5), floor(3.75+.5)
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and not (seen[0] & seen[2])
    assert sorted(torch.cat([p.ids for p in parts]).tolist()) == list(range(12))
    for part in parts:  # each group is complete
        for g in set(part.groups.tolist()):
            assert int((part.groups == g).sum()) == int((ds.groups == g).sum())
        assert part.ids.tolist() == sorted(part.ids.tolist())
    again = split(ds, (0.5, 0.25, 0.25), seed=3)
    assert all(torch.equal(a.ids, b.ids) for a, b in zip(parts, again, strict=True))
    others = [split(ds, (0.5, 0.25, 0.25), seed=seed)[0].ids for seed in range(4, 9)]
    assert any(not torch.equal(parts[0].ids, other) for other in others)


def test_split_rows_when_ungrouped():
    ds = Dataset(torch.zeros(10, 1), torch.zeros(10))
    train, valid = split(ds, (0.7, 0.3), seed=0)
    assert (len(train), len(valid)) == (7, 3)
    assert set(train.ids.tolist()).isdisjoint(valid.ids.tolist())


@pytest.mark.parametrize(
    ("fractions", "match"),
    [((0.5, 0.6), "must sum to 1, got 1.1"), ((1.2, -0.2), r"`fractions` must be in \(0, 1\]")],
)
def test_split_bad_fractions(fractions, match):
    with pytest.raises(ValueError, match=match):
        split(_dataset(), fractions, seed=0)
