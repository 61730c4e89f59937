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
