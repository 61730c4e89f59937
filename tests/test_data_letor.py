import math

import pytest
import torch

from distill.data import read_letor, read_libsvm

LETOR = """\
# MSLR-style sample
2 qid:10 1:0.5 3:1.5 # docid = a
0 qid:10 2:-1
1 qid:10 1:1 2:2 3:3

3 qid:4 3:7
0 qid:4 1:0.25
"""


def _write(tmp_path, text, name="train.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_letor_with_qid(tmp_path):
    ds = read_letor(_write(tmp_path, LETOR), label_range=(0, 4))
    expected = [[0.5, 0, 1.5], [0, -1, 0], [1, 2, 3], [0, 0, 7], [0.25, 0, 0]]
    assert ds.features.tolist() == expected
    assert ds.features.dtype == torch.float32
    assert ds.labels.tolist() == [2, 0, 1, 3, 0] and ds.labels.dtype == torch.float32
    assert ds.groups.tolist() == [10, 10, 10, 4, 4]
    assert ds.feature_names == ["1", "2", "3"]  # the file's own (1-based) feature numbers
    assert ds.meta["task"] == "ranking"
    assert ds.select_features("2-3").features[2].tolist() == [2, 3]


def test_zero_based_file_and_padding(tmp_path):
    path = _write(tmp_path, "1 qid:1 0:4 2:1\n0 qid:1 1:2\n")
    ds = read_letor(path, n_features=5)
    assert ds.features.tolist() == [[4, 0, 1, 0, 0], [0, 2, 0, 0, 0]]
    assert ds.feature_names == ["0", "1", "2", "3", "4"]
    one_based = read_letor(_write(tmp_path, "1 qid:1 2:4\n", "b.txt"), zero_based=True)
    assert one_based.features.tolist() == [[0, 0, 4]]
    with pytest.raises(ValueError, match="feature index 0 found but `zero_based` is False"):
        read_letor(path, zero_based=False)
    with pytest.raises(
        ValueError, match=r"expected at most 2 feature columns .* found 3 \(feature index 2\)"
    ):
        read_letor(path, n_features=2)


def test_lightgbm_query_file(tmp_path):
    data = _write(tmp_path, "1 1:1\n0 1:2\n2 1:3\n0 1:4\n1 1:5\n")
    (tmp_path / "train.txt.query").write_text("2\n3\n")
    ds = read_letor(data)  # <path>.query is picked up like LightGBM does
    assert ds.groups.tolist() == [0, 0, 1, 1, 1]
    other = _write(tmp_path, "1\n4\n", "q.txt")
    assert read_letor(data, query_file=other).groups.tolist() == [0, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("2\n0\n3\n", r"q\.txt:2: group of size 0"),
        ("2\nx\n", r"q\.txt:2: group size 'x' is not an integer >= 1"),
        ("2\n2\n", "group sizes sum to 4 but the data file has 5 rows"),
    ],
)
def test_bad_query_file(tmp_path, query, match):
    data = _write(tmp_path, "1 1:1\n0 1:2\n2 1:3\n0 1:4\n1 1:5\n")
    with pytest.raises(ValueError, match=match):
        read_letor(data, query_file=_write(tmp_path, query, "q.txt"))


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("1 qid:1 1:0.5 3:abc", r"train\.txt:3: token '3:abc': feature value is not a number"),
        ("x qid:1 1:2", r"train\.txt:3: label 'x' is not a finite number"),
        ("1 qid:z 1:2", r"train\.txt:3: token 'qid:z': qid is not an integer"),
        ("1 qid:1 3:1 2:1", r"train\.txt:3: token '2:1': feature indices must be strictly"),
        ("1 qid:1 a:1", r"train\.txt:3: token 'a:1': feature index is not a non-negative"),
        ("1 2:1", r"train\.txt:3: line has no 'qid:' token while other lines do"),
        ("1 2:1 qid:1", r"train\.txt:3: token 'qid:1': qid must come right after the label"),
    ],
)
def test_malformed_line_names_file_line_and_token(tmp_path, line, match):
    text = f"# header comment\n1 qid:1 1:1\n{line}\n0 qid:2 1:1\n"
    with pytest.raises(ValueError, match=match):
        read_letor(_write(tmp_path, text))


def test_empty_and_comment_only_files(tmp_path):
    with pytest.raises(ValueError, match=r"empty\.txt: file is empty"):
        read_letor(_write(tmp_path, "", "empty.txt"))
    with pytest.raises(ValueError, match="no data rows"):
        read_letor(_write(tmp_path, "# nothing\n\n", "c.txt"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_letor(tmp_path / "missing.txt")


def test_labels_outside_declared_range(tmp_path):
    with pytest.raises(ValueError, match=r"1 label\(s\) outside the declared range \[0, 2\]"):
        read_letor(_write(tmp_path, LETOR), label_range=(0, 2))


def test_nan_rejected_reported_or_imputed(tmp_path):
    path = _write(tmp_path, "1 qid:1 1:1 2:3\n0 qid:1 1:nan 2:1\n0 qid:1 1:3 2:inf\n")
    with pytest.raises(ValueError, match=r"2 NaN/inf value\(s\), first in row 1"):
        read_letor(path)
    assert math.isnan(read_letor(path, allow_nan=True).features[1, 0])
    assert read_letor(path, impute=0.0).features.tolist() == [[1, 3], [0, 1], [3, 0]]
    assert read_letor(path, impute="mean").features.tolist() == [[1, 3], [2, 1], [3, 2]]


def test_agrees_with_sklearn_reader_on_random_file(tmp_path):
    from sklearn.datasets import load_svmlight_file

    generator = torch.Generator().manual_seed(0)
    lines = []
    for row in range(40):
        present = torch.rand(12, generator=generator) < 0.5
        values = torch.randn(12, generator=generator)
        tokens = [f"{i + 1}:{values[i]:.6f}" for i in range(12) if present[i]]
        lines.append(f"{row % 5} qid:{row // 7} " + " ".join(tokens))
    path = _write(tmp_path, "\n".join(lines) + "\n")
    ds = read_letor(path, n_features=12)
    x, y, qid = load_svmlight_file(str(path), n_features=12, query_id=True)
    assert torch.allclose(ds.features, torch.tensor(x.toarray(), dtype=torch.float32))
    assert ds.labels.tolist() == y.tolist()
    assert ds.groups.tolist() == qid.tolist()


def test_letor_example_runs(tmp_path, capsys):
    import runpy
    from pathlib import Path

    example = Path(__file__).parents[1] / "examples" / "letor_example.py"
    main = runpy.run_path(str(example))["main"]
    value = main(work=str(tmp_path))
    assert "NDCG@10" in capsys.readouterr().out
    assert (tmp_path / "scores" / "scores-00000-of-00001.parquet").is_file()
    data = read_letor(tmp_path / "train.txt")
    from distill.metrics import ndcg

    shuffled = ndcg(torch.rand(len(data)), data.labels, data.groups, k=10)
    assert shuffled + 0.05 < value <= 1.0  # the teacher ranks far better than chance


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        # an index far above the bound is refused before a dense row of that width exists
        (
            "1 qid:1 1:1\n0 qid:1 10000001:2\n",
            {},
            r"f\.txt:2: token '10000001:2': feature index 10000001 is above the limit 65536",
        ),
        (
            "1 qid:1 1:1\n0 qid:1 2147483647:2\n",
            {},
            r"f\.txt:2: .*feature index 2147483647 is above the limit 65536",
        ),
        (
            "1 qid:1 9223372036854775808:1\n",
            {},
            r"f\.txt:1: .*feature index 9223372036854775808 is above the limit",
        ),
        ("1 qid:1 5:1\n", {"max_index": 4}, r"f\.txt:1: .*feature index 5 is above the limit 4"),
        (
            "1 qid:1 5:1\n",
            {"n_features": 10**6},
            r"f\.txt: `n_features` 1000000 is above the limit 65537",
        ),
        # a query id split into two blocks
        (
            "1 qid:1 1:1\n0 qid:2 1:1\n\n# note\n2 qid:1 1:3\n",
            {},
            r"f\.txt:5: qid 1 appears again after other queries",
        ),
        (
            "1 qid:1 1:1\n0 qid\xff\xfe:1 1:1\n",
            {},
            r"f\.txt:2: token 'qid\ufffd\ufffd:1': feature index is not",
        ),
        ("nan qid:1 1:1\n", {}, r"f\.txt:1: label 'nan' is not a finite number"),
        ("1 qid:1 1:1\ninf qid:1 1:1\n", {}, r"f\.txt:2: label 'inf' is not a finite number"),
    ],
)
def test_bounds_groups_and_labels(tmp_path, text, kwargs, match):
    path = tmp_path / "f.txt"
    path.write_bytes(text.encode("latin-1"))  # "\xff\xfe" become those raw bytes
    with pytest.raises(ValueError, match=match):
        read_letor(path, **kwargs)


def test_libsvm_bounds_the_embedding_count(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("1 2147483648:1\n")
    with pytest.raises(
        ValueError, match=r"c\.txt:1: .*feature index 2147483648 is above the limit 16777216"
    ):
        read_libsvm(path)
    path.write_text("1 3:1\nnan 5:1\n")
    with pytest.raises(ValueError, match=r"c\.txt:2: label 'nan' is not a finite number"):
        read_libsvm(path)
