import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from distill.data import read_table


def _csv(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_mapping(tmp_path):
    path = _csv(tmp_path, "q,f1,f2,y,key\na,1,2.5,1,10\na,3,4,0,11\nb,5,6,2,12\n")
    ds = read_table(path, features=["f2", "f1"], label="y", group="q", id="key")
    assert ds.features.tolist() == [[2.5, 1], [4, 3], [6, 5]]
    assert ds.features.dtype == torch.float32
    assert ds.labels.tolist() == [1, 0, 2] and ds.labels.dtype == torch.float32  # grades
    assert ds.groups.tolist() == [0, 0, 1]
    assert ds.ids.tolist() == [10, 11, 12]
    assert ds.feature_names == ["f2", "f1"]
    assert ds.meta["task"] == "ranking"
    plain = read_table(path, features=["f1"], label="y")
    assert plain.meta["task"] == "classification" and plain.meta["num_classes"] == 3


def test_tsv_default_features_and_float_labels(tmp_path):
    ds = read_table(_csv(tmp_path, "a\tb\tclick\n1\t2\t0.5\n", "t.tsv"), label="click")
    assert ds.feature_names == ["a", "b"]
    assert ds.labels.dtype == torch.float32 and ds.labels.tolist() == [0.5]
    assert "task" not in ds.meta


def test_parquet_matches_pyarrow(tmp_path):
    table = pa.table(
        {"x1": [0.5, 1.5, None], "x2": [1, 2, 3], "label": [1.0, 0.0, 1.0], "g": [7, 7, 9]}
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    ds = read_table(path, features=["x1", "x2"], label="label", group="g", impute=-1.0)
    assert ds.features.tolist() == [[0.5, 1], [1.5, 2], [-1, 3]]
    assert ds.groups.tolist() == [7, 7, 9]
    assert read_table(path, features=["x2"], label="label").meta["task"] == "binary"
    with pytest.raises(ValueError, match=r"1 NaN/inf value\(s\), first in row 2"):
        read_table(path, features=["x1", "x2"], label="label")


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("a,b\n1,2\n3\n", {"label": "b"}, r"t\.csv:3: expected 2 fields, got 1"),
        ("a,b\n1,2\n", {"label": "c"}, r"no column\(s\) \['c'\]; columns are \['a', 'b'\]"),
        (
            "a,b\n1,2\nx,2\n",
            {"label": "b", "features": ["a"]},
            r"feature column 'a' is not numeric .*'x' in row 1 \(0-based data row\); list it in "
            "`categorical`",
        ),
        (
            "a,b\n1,2\nx,2\n",
            {"label": "b"},
            r"column\(s\) \['a'\] are not numeric \('a' has type string: value 'x' in row 1 .*"
            "list them in `categorical`",
        ),
        ("a,b\n1,\n", {"label": "b"}, r"label column has 1 missing value\(s\)"),
        ("a,b\n1,5\n", {"label": "b", "label_range": (0, 4)}, r"outside the declared range"),
        ("a,b\n", {"label": "b"}, "no data rows"),
    ],
)
def test_bad_tables(tmp_path, text, kwargs, match):
    with pytest.raises(ValueError, match=match):
        read_table(_csv(tmp_path, text), **kwargs)


def test_bool_and_all_missing_feature_columns(tmp_path):
    table = pa.table({"flag": [True, False], "empty": pa.nulls(2), "y": [1, 0]})
    pq.write_table(table, tmp_path / "t.pq")
    ds = read_table(tmp_path / "t.pq", label="y", impute=-1.0)
    assert ds.features.tolist() == [[1.0, -1.0], [0.0, -1.0]]
    pq.write_table(pa.table({"s": ["1.5", "2"], "y": [1, 0]}), tmp_path / "s.pq")
    with pytest.raises(ValueError, match=r"column 's' is not numeric \(type string\); list"):
        read_table(tmp_path / "s.pq", label="y", features=["s"])


def _crc_bucket(text, buckets):
    return 1 + zlib.crc32(text.encode()) % buckets


def test_mixed_numeric_and_categorical_columns_give_ctr_ids(tmp_path):
    path = _csv(
        tmp_path, "price,site_id,C1,click\n2.5,1fbe01fe,1005,1\n0.5,,1002,0\n1,85f751fd,1005,0\n"
    )
    ds = read_table(
        path, features=["price"], categorical=["site_id", "C1"], label="click", hash_buckets=7
    )
    # by hand: price is id 1 weighted by its value; site_id ids start at 2, C1 ids at 2 + 8
    assert ds.features.tolist() == [
        [1, 2 + _crc_bucket("1fbe01fe", 7), 10 + _crc_bucket("1005", 7)],
        [1, 2 + 0, 10 + _crc_bucket("1002", 7)],  # a missing value has its own id
        [1, 2 + _crc_bucket("85f751fd", 7), 10 + _crc_bucket("1005", 7)],
    ]
    assert ds.feature_values.tolist() == [[2.5, 1, 1], [0.5, 1, 1], [1, 1, 1]]
    assert ds.num_embeddings == 1 + 1 + 2 * 8 and ds.is_sparse
    assert ds.feature_names == ["price", "site_id", "C1"]
    assert ds.meta["task"] == "binary" and ds.labels.dtype == torch.float32
    assert ds.meta["columns"] == {"features": ["price"], "categorical": ["site_id", "C1"]}
    only_ids = read_table(path, features=[], categorical=["C1"], label="click", hash_buckets=7)
    assert only_ids.feature_values is None and only_ids.num_embeddings == 1 + 8
    assert only_ids.features[:, 0].tolist() == [
        1 + _crc_bucket(t, 7) for t in ("1005", "1002", "1005")
    ]


def test_integer_parquet_categorical_hashes_like_csv_text(tmp_path):
    table = pa.table({"C1": [1005, None, 1002], "y": [1, 0, 1]})
    pq.write_table(table, tmp_path / "t.parquet")
    from_parquet = read_table(tmp_path / "t.parquet", features=[], categorical=["C1"], label="y")
    from_csv = read_table(
        _csv(tmp_path, "C1,y\n1005,1\n,0\n1002,1\n"), features=[], categorical=["C1"], label="y"
    )
    assert torch.equal(from_parquet.features, from_csv.features)
    pq.write_table(pa.table({"C1": [1.5], "y": [1]}), tmp_path / "f.parquet")
    with pytest.raises(ValueError, match=r"f\.parquet: categorical column 'C1' has type double"):
        read_table(tmp_path / "f.parquet", features=[], categorical=["C1"], label="y")
    with pytest.raises(ValueError, match=r"`hash_buckets` must be >= 1, got 0"):
        read_table(tmp_path / "t.parquet", categorical=["C1"], label="y", hash_buckets=0)


def test_inferred_features_are_named_and_skip_mapped_columns(tmp_path):
    path = _csv(tmp_path, "item,rating,a,b,site\n1,4,0.5,1,x\n2,5,1.5,2,y\n")
    with pytest.warns(
        UserWarning, match=r"using every other column as a numeric feature: \['a', 'b'\]"
    ):
        ds = read_table(path, label="rating", id="item", categorical=["site"])
    assert ds.feature_names == ["a", "b", "site"]
    assert ds.ids.tolist() == [1, 2]


def test_task_argument_types_the_labels(tmp_path):
    path = _csv(tmp_path, "x,y\n1,0\n2,1\n3,1\n")
    assert read_table(path, features=["x"], label="y").meta["task"] == "binary"
    as_classes = read_table(path, features=["x"], label="y", task="classification")
    assert as_classes.labels.dtype == torch.int64 and as_classes.meta["num_classes"] == 2
    grades = _csv(tmp_path, "x,y\n1,0.5\n", "g.csv")
    with pytest.raises(
        ValueError,
        match=r"g\.csv: task 'classification' needs class indices >= 0; label 0\.5 in row 0",
    ):
        read_table(grades, features=["x"], label="y", task="classification")
    with pytest.raises(ValueError, match=r"`task` must be one of .* got 'ctr'"):
        read_table(grades, features=["x"], label="y", task="ctr")
    nan_label = _csv(tmp_path, "x,y\n1,0.5\n2,nan\n", "n.csv")
    with pytest.raises(ValueError, match=r"n\.csv: label column has 1 missing .*first in row 1 \("):
        read_table(nan_label, features=["x"], label="y")
    pq.write_table(pa.table({"x": [1, 2], "y": [0.5, float("inf")]}), tmp_path / "i.parquet")
    with pytest.raises(
        ValueError, match=r"i\.parquet: label inf in row 1 \(0-based data row\) is not"
    ):
        read_table(tmp_path / "i.parquet", features=["x"], label="y")
