import math

import pytest
import torch

from distill.data import read_criteo, read_libsvm
from distill.data.ctr_formats import CRITEO_COLUMNS, INT_FIELD_SIZE


def _write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_libsvm_rows_to_padded_ids(tmp_path):
    ds = read_libsvm(_write(tmp_path, "1 3:1 7:0.5\n0 2:2\n0 1:1 3:1 9:1.5\n"))
    # 1-based file: id = index (0 stays the padding id)
    assert ds.features.tolist() == [[3, 7, 0], [2, 0, 0], [1, 3, 9]]
    assert ds.feature_values.tolist() == [[1, 0.5, 0], [2, 0, 0], [1, 1, 1.5]]
    assert ds.num_embeddings == 10
    assert ds.labels.tolist() == [1, 0, 0] and ds.meta["task"] == "binary"
    assert ds.feature_names == ["slot1", "slot2", "slot3"]


def test_libsvm_zero_based_shifts_ids_and_one_hot_drops_values(tmp_path):
    ds = read_libsvm(_write(tmp_path, "1 0:1 4:1\n0 2:1\n"), n_features=8)
    assert ds.features.tolist() == [[1, 5], [3, 0]]
    assert ds.feature_values is None
    assert ds.num_embeddings == 9


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("1 3:1\n0 5:x\n", ValueError, r"data\.txt:2: token '5:x': feature value is not a number"),
        ("1 3:1\n2 5:1\n", ValueError, r"outside the declared range \[0.0, 1.0\], first in row 1"),
        ("1 3:1\n0 5:nan\n", ValueError, r"1 NaN/inf value\(s\), first in row 1"),
        ("", ValueError, "file is empty"),
    ],
)
def test_libsvm_bad_input(tmp_path, text, error, match):
    with pytest.raises(error, match=match):
        read_libsvm(_write(tmp_path, text))


def _criteo_row(label, ints, cats, sep):
    ints = [str(v) if v is not None else "" for v in ints]
    cats = [v or "" for v in cats]
    return sep.join([str(label), *ints, *cats])


def _int_bucket(value):
    """Oracle of the Criteo integer recipe, written from the docstring."""
    if value is None:
        return 0
    if value <= 2:
        return max(value, -8) + 9
    return min(12 + math.floor(math.log(value) ** 2), INT_FIELD_SIZE - 1)


@pytest.mark.parametrize("sep", ["\t", ","])
@pytest.mark.parametrize("header", [False, True])
def test_criteo_global_ids(tmp_path, sep, header):
    ints_a = [1, None, 5, 100, 0, -3, 2, 3, 10**6, None, 7, -20, 4]
    cats_a = ["68fd1e64", None, *["05db9164"] * 24]
    ints_b = [None] * 13
    cats_b = ["68fd1e64"] + [None] * 25
    lines = [_criteo_row(1, ints_a, cats_a, sep), _criteo_row(0, ints_b, cats_b, sep)]
    if header:
        lines.insert(0, sep.join(CRITEO_COLUMNS))
    ds = read_criteo(_write(tmp_path, "\n".join(lines) + "\n"), hash_buckets=50)
    assert ds.features.shape == (2, 39) and ds.labels.tolist() == [1, 0]
    offsets = [1 + INT_FIELD_SIZE * f for f in range(13)]
    offsets += [1 + 13 * INT_FIELD_SIZE + 51 * c for c in range(26)]
    for f in range(13):
        assert ds.features[0, f] == offsets[f] + _int_bucket(ints_a[f])
        assert ds.features[1, f] == offsets[f]  # missing: the field's own bucket 0
    assert ds.features[0, 13] == ds.features[1, 13]  # same value, same id
    assert ds.features[0, 14] == offsets[14] and ds.features[1, 14] == offsets[14]
    assert offsets[13] < ds.features[0, 13] <= offsets[13] + 50
    assert ds.num_embeddings == 1 + 13 * INT_FIELD_SIZE + 26 * 51
    assert int(ds.features.max()) < ds.num_embeddings
    assert ds.feature_names[:2] == ["I1", "I2"] and ds.feature_names[-1] == "C26"


@pytest.mark.parametrize(
    ("bad_line", "match"),
    [
        ("1\t2", r"data\.txt:2: expected 40 fields separated by '\\t', got 2"),
        (_criteo_row(1, ["x", *[1] * 12], ["a"] * 26, "\t"), "field I1 value 'x' is not an int"),
        (_criteo_row("yes", [1] * 13, ["a"] * 26, "\t"), "label 'yes' is not a finite number"),
        (
            _criteo_row(1, [1, 1, "2.5", *[1] * 10], ["a"] * 26, "\t"),
            r"data\.txt:2: field I3 value '2\.5' is not an int",
        ),
        (
            _criteo_row("nan", [1] * 13, ["a"] * 26, "\t"),
            r"data\.txt:2: label 'nan' is not a finite",
        ),
        (
            _criteo_row(1, ["inf", *[1] * 12], ["a"] * 26, "\t"),
            r"data\.txt:2: field I1 value 'inf' is not an",
        ),
    ],
)
def test_criteo_malformed_line(tmp_path, bad_line, match):
    good = _criteo_row(0, [1] * 13, ["a"] * 26, "\t")
    with pytest.raises(ValueError, match=match):
        read_criteo(_write(tmp_path, f"{good}\n{bad_line}\n{good}\n"), header=False)


def test_criteo_label_range_and_empty(tmp_path):
    row = _criteo_row(3, [1] * 13, ["a"] * 26, "\t")
    with pytest.raises(ValueError, match=r"outside the declared range"):
        read_criteo(_write(tmp_path, row + "\n"))
    with pytest.raises(ValueError, match="file is empty"):
        read_criteo(_write(tmp_path, "", "e.tsv"))
    with pytest.raises(ValueError, match="`hash_buckets` must be >= 1, got 0"):
        read_criteo(_write(tmp_path, row + "\n"), hash_buckets=0)
    assert torch.equal(
        read_criteo(_write(tmp_path, row + "\n"), label_range=None).labels, torch.tensor([3.0])
    )


def test_criteo_integral_floats_read_as_integers(tmp_path):
    # DeepCTR's Criteo sample writes integer fields as "260.0"
    ints = [260, None, 5, 100, 0, -3, 2, 3, 10**6, None, 7, -20, 4]
    as_floats = [None if v is None else f"{v}.0" for v in ints]
    cats = ["68fd1e64", None, *["05db9164"] * 24]
    plain = read_criteo(_write(tmp_path, _criteo_row(1, ints, cats, "\t") + "\n", "a.txt"))
    floats = read_criteo(_write(tmp_path, _criteo_row(1, as_floats, cats, "\t") + "\n", "b.txt"))
    assert torch.equal(plain.features, floats.features)
    offsets = [1 + INT_FIELD_SIZE * f for f in range(13)]
    assert floats.features[0, :13].tolist() == [
        o + _int_bucket(v) for o, v in zip(offsets, ints, strict=True)
    ]
