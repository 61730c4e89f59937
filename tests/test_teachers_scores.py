"""Stored teacher scores: a column of the data's table, or a scores file keyed by id."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from distill.data import read_table, split
from distill.teachers import (
    CachedScores,
    ScoreColumnTeacher,
    ScoresFileTeacher,
    load_teacher,
    predict_dataset,
    score,
)


def _table(path, n=40, seed=0, classes=1):
    rng = np.random.default_rng(seed)
    columns = {
        "f1": rng.normal(size=n),
        "f2": rng.normal(size=n),
        "click": rng.integers(0, 2, n),
    }
    names = ["teacher_logit"] if classes == 1 else [f"logit_{c}" for c in range(classes)]
    for name in names:
        columns[name] = rng.normal(size=n).astype(np.float32)
    pq.write_table(pa.table(columns), path)
    return columns, names


def test_read_table_keeps_extras_out_of_the_features(tmp_path):
    columns, _ = _table(tmp_path / "t.parquet")
    data = read_table(tmp_path / "t.parquet", label="click", extras=["teacher_logit"])
    assert data.feature_names == ["f1", "f2"]
    assert data.extras["teacher_logit"].dtype == torch.float32
    np.testing.assert_array_equal(data.extras["teacher_logit"].numpy(), columns["teacher_logit"])
    with pytest.raises(ValueError, match=r"t.parquet: no column\(s\) \['nope'\]; columns are"):
        read_table(tmp_path / "t.parquet", label="click", extras=["nope"])


def test_score_column_serves_the_written_values_by_id_over_splits(tmp_path):
    columns, names = _table(tmp_path / "t.parquet")
    data = read_table(tmp_path / "t.parquet", label="click", extras=names)
    train, test = split(data, (0.5, 0.5), seed=3)
    teacher = ScoreColumnTeacher([train, test], column="teacher_logit")
    ids = torch.tensor([7, 0, 39, 7])
    expected = torch.from_numpy(columns["teacher_logit"][ids.numpy()])
    assert torch.equal(teacher.predict(torch.zeros(4, 2), ids), expected)
    assert torch.equal(predict_dataset(teacher, test), expected.new_tensor(test.extras[names[0]]))
    with pytest.raises(KeyError, match="id 40 is not in score column"):
        teacher.predict(torch.zeros(1, 2), torch.tensor([40]))
    assert teacher.size().params == 0


def test_multiclass_columns_stack_to_n_by_c(tmp_path):
    columns, names = _table(tmp_path / "t.parquet", classes=3)
    data = read_table(tmp_path / "t.parquet", label="click", extras=names)
    teacher = ScoreColumnTeacher(data, columns=names)
    logits = teacher.predict(data.features, data.ids)
    expected = np.stack([columns[name] for name in names], axis=1)
    np.testing.assert_array_equal(logits.numpy(), expected)


def test_score_column_fingerprint_follows_the_contents(tmp_path):
    _, names = _table(tmp_path / "t.parquet")
    data = read_table(tmp_path / "t.parquet", label="click", extras=names)
    first = ScoreColumnTeacher(data, column=names[0]).fingerprint()
    shuffled = data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(0)))
    assert ScoreColumnTeacher(shuffled, column=names[0]).fingerprint() == first
    data.extras[names[0]][5] += 1e-3
    assert ScoreColumnTeacher(data, column=names[0]).fingerprint() != first


def test_score_column_bad_input(tmp_path):
    _, names = _table(tmp_path / "t.parquet")
    data = read_table(tmp_path / "t.parquet", label="click", extras=names)
    with pytest.raises(ValueError, match=r"t.parquet: no score column \['other'\] among"):
        ScoreColumnTeacher(data, column="other")
    with pytest.raises(ValueError, match="give exactly one of `column`"):
        ScoreColumnTeacher(data, column="a", columns=["b"])
    data.extras[names[0]][11] = float("nan")
    with pytest.raises(ValueError, match=r"t.parquet: column\(s\).*row 11 \(id 11\) is \[nan\]"):
        ScoreColumnTeacher(data, column=names[0])
    twice = read_table(tmp_path / "t.parquet", label="click", extras=names)
    with pytest.raises(ValueError, match="id 0 occurs more than once"):
        ScoreColumnTeacher([twice, twice], column=names[0])


def _scores_file(path, ids, logits):
    table = {"example": ids, "logit": logits}
    if str(path).endswith(".csv"):
        lines = ["example,logit", *(f"{i},{float(v)!r}" for i, v in zip(ids, logits, strict=True))]
        path.write_text("\n".join(lines) + "\n")
    else:
        pq.write_table(pa.table(table), path)


@pytest.mark.parametrize("name", ["scores.parquet", "scores.csv"])
def test_scores_file_matches_keys_to_ids(tmp_path, name):
    rng = np.random.default_rng(0)
    ids, logits = rng.permutation(50) + 100, rng.normal(size=50).astype(np.float32)
    _scores_file(tmp_path / name, ids, logits)
    teacher = load_teacher(tmp_path / name, key="example", column="logit")
    assert isinstance(teacher, ScoresFileTeacher)
    asked = torch.tensor([100, 149, 120])
    lookup = dict(zip(ids.tolist(), logits.tolist(), strict=True))
    expected = torch.tensor([lookup[i] for i in asked.tolist()], dtype=torch.float32)
    assert torch.equal(teacher.predict(torch.zeros(3, 1), asked), expected)
    teacher.check_ids(torch.arange(100, 150), where="the data")
    assert teacher.size().size_bytes == (tmp_path / name).stat().st_size


def test_scores_file_bad_input(tmp_path):
    path = tmp_path / "scores.parquet"
    _scores_file(path, np.arange(10), np.zeros(10, np.float32))
    teacher = ScoresFileTeacher(path, key="example", column="logit")
    with pytest.raises(ValueError, match=r"scores.parquet: expected 12 scores .*found 10"):
        teacher.check_ids(torch.arange(12), where="train")
    with pytest.raises(ValueError, match=r"id 10 is not in .*scores.parquet \(a row of train\)"):
        teacher.check_ids(torch.arange(1, 11), where="train")
    with pytest.raises(ValueError, match=r"scores.parquet: no column\(s\) \['score'\]; the file"):
        ScoresFileTeacher(path, key="example", column="score")
    with pytest.raises(ValueError, match="a scores file needs `key`"):
        load_teacher(path, column="logit")
    bad = np.zeros(10, np.float32)
    bad[4] = np.inf
    _scores_file(path, np.arange(10), bad)
    with pytest.raises(ValueError, match=r"scores.parquet: teacher score of row 4 \(id 4\) is"):
        ScoresFileTeacher(path, key="example", column="logit")
    pq.write_table(pa.table({"example": [0.5, 1.5], "logit": [0.0, 1.0]}), path)
    with pytest.raises(ValueError, match="key column 'example' must hold integer ids"):
        ScoresFileTeacher(path, key="example", column="logit")


def test_scores_file_fingerprint_and_the_score_cache(tmp_path):
    path = tmp_path / "scores.parquet"
    _scores_file(path, np.arange(40), np.linspace(-1, 1, 40).astype(np.float32))
    _table(tmp_path / "t.parquet")
    data = read_table(tmp_path / "t.parquet", label="click")
    teacher = ScoresFileTeacher(path, key="example", column="logit")
    score(teacher, data, tmp_path / "cache")
    cached = CachedScores(tmp_path / "cache", data, teacher=teacher)
    assert torch.equal(cached.predict(data.features, data.ids), teacher.predict(None, data.ids))
    _scores_file(path, np.arange(40), np.linspace(-1, 2, 40).astype(np.float32))
    changed = ScoresFileTeacher(path, key="example", column="logit")
    assert changed.fingerprint() != teacher.fingerprint()
    with pytest.raises(ValueError, match="stale cache"):
        CachedScores(tmp_path / "cache", data, teacher=changed)
