"""``distill convert --format libsvm``: shards that stream as ``read_libsvm``'s rows, queries
whole, located errors, resume."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.datasets import load_svmlight_file
from typer.testing import CliRunner

from distill.cli import app
from distill.config import DataSection
from distill.data import read_libsvm
from distill.data.convert import convert_libsvm
from distill.data.streaming import StreamingTable, concat_datasets
from distill.experiment.stream_inputs import stream_splits

runner = CliRunner()


def libsvm_lines(n, *, seed=0, qid=False, zero=False, ones=False, max_features=6):
    """Random libsvm rows (some empty), optional qid (runs of 1-6 lines), comments, blanks."""
    rng = np.random.default_rng(seed)
    lines, query = ["# a comment line"], 0
    left = 0
    for i in range(n):
        k = int(rng.integers(0, max_features + 1))
        index = np.sort(rng.choice(np.arange(0 if zero else 1, 40), k, replace=False))
        tokens = [f"{rng.integers(0, 2)}"]
        if qid:
            if left == 0:
                query, left = query + int(rng.integers(1, 4)), int(rng.integers(1, 7))
            tokens.append(f"qid:{query}")
            left -= 1
        tokens += [f"{j}:{1 if ones else round(float(rng.normal()), 4)}" for j in index]
        lines.append(" ".join(tokens) + ("  # trailing" if i % 7 == 0 else ""))
        if i % 11 == 0:
            lines.append("")
    return lines


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def streamed(folder, **kwargs):
    table = StreamingTable(folder, label="label", **kwargs)
    return table, concat_datasets(list(table.iter_chunks(batch_size=37, shuffle=False)))


@pytest.mark.parametrize(
    ("qid", "zero", "ones"), [(False, False, False), (True, False, False), (False, True, True)]
)
def test_streamed_shards_equal_read_libsvm(tmp_path, monkeypatch, qid, zero, ones):
    monkeypatch.setattr("distill.data.convert.BLOCK_BYTES", 700)  # blocks cut inside queries
    path = write(tmp_path / "train.svm", libsvm_lines(230, qid=qid, zero=zero, ones=ones))
    said = []
    shards = convert_libsvm([path], tmp_path / "out", shard_rows=40, progress=said.append)
    assert len(said) == len(shards) > 4 and all("rows/s" in line for line in said)
    table, rows = streamed(tmp_path / "out", group="qid" if qid else None)
    expected = read_libsvm(path, label_range=None)
    assert table.sparse_layout.index_base == expected.meta["index_base"] == (0 if zero else 1)
    assert torch.equal(rows.features, expected.features)
    assert rows.num_embeddings == table.num_embeddings == expected.num_embeddings
    assert rows.feature_names == expected.feature_names
    if ones:
        assert rows.feature_values is None and expected.feature_values is None
    else:
        assert torch.equal(rows.feature_values, expected.feature_values)
    assert torch.equal(rows.labels, expected.labels)
    assert torch.equal(rows.ids, torch.arange(len(expected)))
    _, _, query = load_svmlight_file(str(path), query_id=True)
    if qid:
        assert torch.equal(rows.groups, torch.from_numpy(query.astype(np.int64)))
        per_shard = [set(pq.read_table(p)["qid"].to_pylist()) for p in shards]
        assert sum(map(len, per_shard)) == len(set().union(*per_shard))  # no query cut
        sizes = [pq.read_metadata(p).num_rows for p in shards]
        assert all(size >= 40 for size in sizes[:-1]) and max(sizes) < 40 + 6
    else:
        assert rows.groups is None and "qid" not in pq.read_schema(shards[0]).names


def test_a_split_is_read_with_the_train_layout(tmp_path):
    train = write(tmp_path / "train.svm", ["1 3:0.5 39:2", "0 1:1", "1 2:1 5:1 7:1"])
    valid = write(tmp_path / "valid.svm", ["0 4:0.25", "1 2:1"])
    convert_libsvm([train], tmp_path / "train")
    convert_libsvm([valid], tmp_path / "valid")
    layout = StreamingTable(tmp_path / "train", label="label").sparse_layout
    table, rows = streamed(tmp_path / "valid", layout=layout)
    expected = read_libsvm(valid, n_features=39, zero_based=False)
    assert table.num_embeddings == 40 and rows.features.shape == (2, 3)
    assert torch.equal(rows.features[:, :1], expected.features)
    assert torch.equal(rows.feature_values[:, :1], expected.feature_values)
    wide = write(tmp_path / "wide.svm", ["0 0:1 50:1"])
    convert_libsvm([wide], tmp_path / "wide")
    with pytest.raises(ValueError, match=r"wide-00000.parquet: the shards' layout .* does not fit"):
        StreamingTable(tmp_path / "wide", label="label", layout=layout)
    with pytest.raises(ValueError, match=r"take no `features` or `categorical`, got \['index'\]"):
        StreamingTable(tmp_path / "train", label="label", features=["index"])


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("1 3:x", r"feature value is not a number"),
        ("nan 3:1", r"label 'nan' is not a finite number"),
        ("1 4:1 2:1", r"feature indices must be strictly increasing"),
        ("1 99999999:1", r"feature index 99999999 is above the limit 16777216"),
        ("1 qid:3 2:1", r"line has a 'qid:' token while the first lines of the file do not"),
    ],
)
def test_a_malformed_line_is_named_and_leaves_no_shard(tmp_path, monkeypatch, line, problem):
    monkeypatch.setattr("distill.data.convert.BLOCK_BYTES", 300)
    lines = libsvm_lines(120, seed=1)
    lines[97] = line  # line 98 of the file, in a later block than the first shards
    bad = write(tmp_path / "bad.svm", lines)
    good = write(tmp_path / "good.svm", libsvm_lines(20, seed=2))
    said = []
    with pytest.raises(ValueError, match=rf"bad.svm:98: (token .*: )?{problem}"):
        convert_libsvm([good, bad], tmp_path / "out", shard_rows=20, progress=said.append)
    assert any("bad-00000.parquet" in entry for entry in said)  # written, then removed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_good.done",
        "good-00000.parquet",
    ]


def test_queries_must_be_consecutive_and_a_rerun_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr("distill.data.convert.BLOCK_BYTES", 200)
    lines = libsvm_lines(60, seed=3, qid=True)
    good = write(tmp_path / "a.svm", lines)
    first = lines[1].split()[1]  # the first query, e.g. "qid:2"
    bad = write(tmp_path / "b.svm", [*lines, "", f"1 {first} 3:1"])
    with pytest.raises(
        ValueError, match=rf"b.svm:{len(lines) + 2}: qid {first[4:]} appears again after"
    ):
        convert_libsvm([good, bad], tmp_path / "out", shard_rows=25)
    first = (tmp_path / "out" / "a-00000.parquet").stat().st_mtime_ns
    write(bad, lines[:30])
    said = []
    shards = convert_libsvm([good, bad], tmp_path / "out", shard_rows=25, progress=said.append)
    assert "already converted" in said[0] and (tmp_path / "out" / "_b.done").exists()
    assert (tmp_path / "out" / "a-00000.parquet").stat().st_mtime_ns == first
    expected = 60 + len(read_libsvm(bad))
    assert sum(pq.read_metadata(p).num_rows for p in shards) == expected


def test_cli_convert_libsvm(tmp_path):
    path = write(tmp_path / "d.svm", libsvm_lines(30))
    out = tmp_path / "o"
    result = runner.invoke(app, ["convert", str(path), "--format", "libsvm", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 shard(s)" in result.output and "rows/s" in result.output
    result = runner.invoke(
        app, ["convert", str(path), "--format", "libsvm", "--out", str(out), "--hash-buckets", "9"]
    )
    assert result.exit_code == 2 and "--hash-buckets applies to Criteo TSV only" in result.output
    empty = write(tmp_path / "e.svm", ["# nothing"])
    result = runner.invoke(app, ["convert", str(empty), "--format", "libsvm", "--out", str(out)])
    assert result.exit_code == 2 and "e.svm: no data rows" in result.output


def ctr_lines(n, seed):
    """Clicks that follow feature 3 (half the rows); every file starts with indices 1 and 20."""
    rng = np.random.default_rng(seed)
    lines = ["1 1:0.5 20:0.5 # fixes the index range of every split"]
    for _ in range(n):
        other = int(rng.choice([j for j in range(1, 21) if j != 3]))
        index = sorted({other, 3} if rng.random() < 0.5 else {other})
        click = int(rng.random() < (0.9 if 3 in index else 0.1))
        lines.append(" ".join([str(click)] + [f"{j}:{rng.uniform(0.5, 1.5):.3f}" for j in index]))
    return lines


def test_converted_libsvm_shards_train_in_a_streamed_run(tmp_path):
    for split, rows, seed in (("train", 800, 0), ("valid", 300, 1), ("test", 300, 2)):
        path = write(tmp_path / f"{split}.svm", ctr_lines(rows, seed))
        convert_libsvm([path], tmp_path / split, shard_rows=250)
    config = tmp_path / "svm.toml"
    config.write_text(
        f"""
[run]
name = "svm"
track = "ctr"
out_dir = "{tmp_path / "runs"}"

[data]
source = "table"
streaming = true
shuffle_buffer = 200
train = "{tmp_path / "train"}"
valid = "{tmp_path / "valid"}"
test = "{tmp_path / "test"}"
columns = {{ label = "label" }}

[teacher.model]
name = "WideAndDeep"
kwargs = {{ embed_dim = 4, hidden = [8] }}

[student.model]
name = "WideAndDeep"
kwargs = {{ embed_dim = 4, hidden = [8] }}

[train]
epochs = 3
batch_size = 64
lr = 0.03
teacher_mode = "online"

[[variants]]
name = "binary_kd"
[variants.objective.binary_kd]
soft_weight = 0.5
"""
    )
    result = runner.invoke(app, ["run", str(config), "--no-report"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "runs" / "svm" / "results.json").read_text())
    assert results["variants"][0]["metrics"]["auc"] > 0.7  # feature 3 carries the clicks


def test_a_config_run_reads_valid_and_test_with_the_train_layout(tmp_path):
    """Narrower, all-ones valid/test shards stream with train's ids (else: features differ)."""
    lines = {
        "train": ["1 3:0.5 39:2", "0 1:1", "1 2:1 5:1 7:1"],
        "valid": ["0 4:1", "1 2:1"],
        "test": ["1 6:1"],
    }
    for split, rows in lines.items():
        convert_libsvm([write(tmp_path / f"{split}.svm", rows)], tmp_path / split)
    folders = {split: str(tmp_path / split) for split in lines}
    section = DataSection(source="table", streaming=True, columns={"label": "label"}, **folders)
    train, valid, test = stream_splits(section, track="ctr", extras=[])
    for table in (valid, test):
        assert (table.num_embeddings, table.width) == (train.num_embeddings, train.width) == (40, 3)
    expected = read_libsvm(tmp_path / "valid.svm", n_features=39, zero_based=False)
    rows = concat_datasets(list(valid.iter_chunks(batch_size=8, shuffle=False)))
    assert torch.equal(rows.features[:, :1], expected.features)
