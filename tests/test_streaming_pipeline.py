"""Streamed runs with score shards: ``distill score`` writes them, students read them (the same
training as a logged score column), stale or missing ones are refused, torchrun splits them,
a teacher file scores them, and the report covers streamed runs."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from distill import models
from distill.cli import app
from distill.config import load_config
from distill.data.streaming import StreamingTable
from distill.data.synthetic_shards import (
    CATEGORICAL,
    NUMERIC,
    write_criteo_shards,
    write_criteo_tsv,
)
from distill.experiment.setup import load_run_data
from distill.teachers import ModuleTeacher
from distill.teachers.score_shards import score_shards
from launch import launch

runner = CliRunner()
SPLITS = (("train", 3000, 0), ("valid", 1000, 1), ("test", 1000, 2))


def write_data(folder: Path) -> Path:
    for split, rows, seed in SPLITS:
        write_criteo_shards(folder / split, rows=rows, shard_rows=1000, seed=seed)
    return folder


def config(
    tmp_path,
    data,
    name,
    teacher=None,
    categorical=CATEGORICAL[:6],
    variants=("binary_kd",),
    student='name = "WideAndDeep"\nkwargs = { embed_dim = 4, hidden = [8] }',
):
    teacher = teacher or (
        '[teacher.model]\nname = "WideAndDeep"\nkwargs = { embed_dim = 4, hidden = [16] }\n'
        "[teacher.train]\nepochs = 1\nbatch_size = 256\nlr = 0.02"
    )
    columns = (
        f'label = "label", features = {json.dumps(NUMERIC[:4])}, '
        f"categorical = {json.dumps(list(categorical))}"
    )
    text = f"""
[run]
name = "{name}"
track = "ctr"
out_dir = "{tmp_path / "runs"}"

[data]
source = "table"
streaming = true
shuffle_buffer = 1000
train = "{data / "train"}"
valid = "{data / "valid"}"
test = "{data / "test"}"
columns = {{ {columns} }}
options = {{ hash_buckets = 1000, impute = 0.0 }}

{teacher}

[student.model]
{student}

[train]
epochs = 1
batch_size = 256
lr = 0.01
"""
    for variant in variants:
        objective = "binary_kd]\nsoft_weight = 0.5" if variant == "binary_kd" else "labels]"
        text += f'\n[[variants]]\nname = "{variant}"\n[variants.objective.{objective}\n'
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def invoke(*args: str, code: int = 0):
    result = runner.invoke(app, [*args])
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def with_logged_column(data: Path, out: Path) -> Path:
    """Copies of the data shards with their score shard's logits as a column ``logged``."""
    for split, *_ in SPLITS:
        for shard in sorted((data / split).glob("*.parquet")):
            scores = pq.read_table(shard.parent / "_scores" / shard.name)
            table = pq.read_table(shard)
            first = scores["id"].to_numpy()[0]
            np.testing.assert_array_equal(scores["id"].to_numpy(), first + np.arange(len(table)))
            (out / split).mkdir(parents=True, exist_ok=True)
            pq.write_table(
                table.append_column("logged", scores["teacher_logit"]), out / split / shard.name
            )
    return out


def test_students_read_score_shards_as_they_read_a_logged_column(tmp_path):
    data = write_data(tmp_path / "data")
    scored = config(tmp_path, data, "shards")
    invoke("teacher", str(scored))
    invoke("score", str(scored))
    invoke("student", str(scored))
    logged = with_logged_column(data, tmp_path / "logged")
    column = config(tmp_path, logged, "column", teacher='[teacher]\ncolumn = "logged"')
    invoke("run", str(column), "--no-report")
    left = models.load(tmp_path / "runs" / "shards" / "students" / "binary_kd").state_dict()
    right = models.load(tmp_path / "runs" / "column" / "students" / "binary_kd").state_dict()
    assert left.keys() == right.keys()
    for name in left:
        torch.testing.assert_close(left[name], right[name], rtol=0, atol=0)


def test_stale_and_missing_score_shards_are_refused(tmp_path):
    data = write_data(tmp_path / "data")
    path = config(tmp_path, data, "stale")
    invoke("teacher", str(path))
    invoke("score", str(path))
    assert invoke("score", str(path))  # a rerun skips every finished shard
    invoke("teacher", str(path), "--set", "teacher.train.lr=0.05")  # another teacher
    shard = data / "train" / "part-00000.parquet"
    score = data / "train" / "_scores" / "part-00000.parquet"
    output = invoke("student", str(path), code=2)
    expected = (
        rf"data.train: stale score shard {re.escape(str(score))}: teacher [0-9a-f]{{16}} "
        r"\(shard\) != [0-9a-f]{16} \(now\); the teacher or the data changed since: "
        r"run `distill score` again"
    )
    assert re.search(expected, output), output
    invoke("score", str(path))  # rescored by the new teacher: accepted
    rows = pq.read_table(shard)  # the same rows with other values: the scores are stale
    numeric = pc.add(rows[NUMERIC[0]], pa.scalar(1.0, rows.schema.field(NUMERIC[0]).type))
    pq.write_table(
        rows.set_column(rows.schema.get_field_index(NUMERIC[0]), NUMERIC[0], numeric), shard
    )
    output = invoke("student", str(path), code=2)
    expected = (
        rf"stale score shard {re.escape(str(score))}: data [0-9a-f]{{16}} \(shard\) != "
        r"[0-9a-f]{16} \(now\); the teacher or"  # the data only: the teacher is the same
    )
    assert re.search(expected, output), output
    invoke("score", str(path))
    invoke("student", str(path))
    before = score.read_bytes()
    shutil.copy(shard, tmp_path / "copy.parquet")  # a copy of the same data (a new mtime)
    shutil.move(tmp_path / "copy.parquet", shard)
    invoke("score", str(path))
    assert score.read_bytes() == before  # not scored again
    score.unlink()
    output = invoke("student", str(path), code=2)
    assert (
        f"data.train: {shard}: no teacher score shard {score}; run `distill score` first" in output
    )


def test_a_read_only_split_folder_is_named_before_anything_is_scored(tmp_path, monkeypatch):
    data = write_data(tmp_path / "data")
    path = config(tmp_path, data, "readonly")
    invoke("teacher", str(path))
    monkeypatch.setattr(
        "distill.teachers.score_shards.os.access", lambda folder, mode: "valid" not in str(folder)
    )
    output = invoke("score", str(path), code=2)
    assert f"data.valid: {data / 'valid'}: the folder is read-only" in output
    assert not any(data.rglob("_scores"))


def test_read_only_shards_are_scored_into_a_scores_dir(tmp_path, monkeypatch):
    data = write_data(tmp_path / "data")
    path = config(tmp_path, data, "elsewhere")
    invoke("teacher", str(path))
    invoke("score", str(path))  # beside the shards: the oracle
    beside = {split: pq.read_table(data / split / "_scores") for split, *_ in SPLITS}
    for folder in data.rglob("_scores"):
        shutil.rmtree(folder)
    monkeypatch.setattr(  # the data folders are read-only from here on
        "distill.teachers.score_shards.os.access", lambda folder, mode: "data" not in str(folder)
    )
    assert "the folder is read-only" in invoke("score", str(path), code=2)
    scores_dir = tmp_path / "scores"
    moved = ["--set", f"data.scores_dir='{scores_dir}'"]
    invoke("score", str(path), *moved)
    assert not any(data.rglob("_scores"))
    for split, *_ in SPLITS:
        assert pq.read_table(scores_dir / split).equals(beside[split])
    invoke("student", str(path), *moved)  # reads them from scores_dir
    output = invoke("student", str(path), code=2)  # without it: none beside the shards
    assert "no teacher score shard" in output


def test_a_scores_dir_needs_unique_shard_names(tmp_path):
    for folder in ("a", "b"):
        write_criteo_shards(tmp_path / folder, rows=50, shard_rows=50, seed=0)
    shards = sorted(str(p) for p in tmp_path.rglob("*.parquet"))
    name = Path(shards[0]).name
    with pytest.raises(
        ValueError,
        match=(
            rf"`scores_dir`: shards {re.escape(shards[0])} and {re.escape(shards[1])} share the "
            rf"file name '{name}', so their score shards in .* would be one file; rename one"
        ),
    ):
        StreamingTable(shards, label="label", scores_dir=tmp_path / "scores")
    with pytest.raises(
        ValueError,
        match=r"data.scores_dir: is for streamed data \(score shards\); set streaming = true",
    ):
        load_config(
            config(tmp_path, tmp_path, "x"),
            overrides=["data.streaming=false", "data.scores_dir='s'"],
        )


def test_two_torchrun_ranks_score_each_shard_once(tmp_path):
    data = write_data(tmp_path / "data")
    path = config(tmp_path, data, "ranks")
    invoke("teacher", str(path))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
    command = [*torchrun, "2", "--no-python", sys.executable, "-c"]
    done = launch([*command, "from distill.cli import main; main()", "score", str(path)])
    lines = [line for line in done.stdout.splitlines() if line.startswith("train · scoring")]
    final = sorted(line.split("written=")[1] for line in lines if "(100%)" in line)
    assert final == ["1", "2"]  # 3 train shards: rank 0 writes 2, rank 1 writes 1
    teacher = models.load(tmp_path / "runs" / "ranks" / "teacher").eval()
    run_data = load_run_data(load_config(path))
    for table in (run_data.train, run_data.valid, run_data.test):
        assert score_shards(ModuleTeacher(teacher), table) == []  # all there, this teacher's
    for shard in run_data.train.shards:
        chunk = next(iter(run_data.train.read_shard(shard)))
        stored = pq.read_table(Path(shard.path).parent / "_scores" / Path(shard.path).name)
        with torch.no_grad():
            expected = teacher(chunk.features, chunk.feature_values)
        torch.testing.assert_close(torch.tensor(stored["teacher_logit"].to_numpy()), expected)


def test_a_lightgbm_teacher_file_scores_streamed_shards(tmp_path):
    lightgbm = pytest.importorskip("lightgbm")
    data = write_data(tmp_path / "data")
    train = pq.read_table(data / "train")
    x = np.stack([train[name].to_numpy() for name in NUMERIC[:4]], axis=1)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7}
    booster = lightgbm.train(params, lightgbm.Dataset(x, train["label"].to_numpy()), 10)
    booster.save_model(tmp_path / "gbdt.txt")
    teacher = f'[teacher]\npath = "{tmp_path / "gbdt.txt"}"\nkind = "lightgbm"'
    student = 'name = "MLP"\nkwargs = { hidden = [8] }'
    path = config(tmp_path, data, "gbdt", teacher=teacher, categorical=(), student=student)
    invoke("run", str(path), "--no-report")
    test = pq.read_table(data / "test")
    x_test = np.stack([test[name].to_numpy() for name in NUMERIC[:4]], axis=1)
    margins = booster.predict(x_test, raw_score=True)
    stored = pq.read_table(data / "test" / "_scores")["teacher_logit"].to_numpy()
    np.testing.assert_allclose(stored, margins, rtol=1e-5, atol=1e-5)
    results = json.loads((tmp_path / "runs" / "gbdt" / "results.json").read_text())
    expected = roc_auc_score(test["label"].to_numpy(), margins)
    assert results["teacher"]["metrics"]["auc"] == pytest.approx(expected, abs=1e-6)


def test_score_refuses_a_logged_column_teacher(tmp_path):
    data = write_data(tmp_path / "data")
    path = config(tmp_path, data, "logged", teacher='[teacher]\ncolumn = "teacher_logit"')
    output = invoke("score", str(path), code=2)
    assert "teacher.column: the teacher's logits are a column of the shards" in output
    assert not any(data.rglob("_scores"))


def test_a_scores_file_teacher_is_refused_on_streamed_data(tmp_path):
    data = write_data(tmp_path / "data")
    scores = tmp_path / "scores.csv"
    scores.write_text("id,logit\n0,0.5\n")
    teacher = f'[teacher]\nkind = "scores"\npath = "{scores}"\nkey = "id"\ncolumn = "logit"'
    output = invoke("run", str(config(tmp_path, data, "file", teacher=teacher)), code=2)
    assert "teacher.path: a scores file cannot serve streamed rows" in output


def test_the_report_of_a_streamed_run(tmp_path):
    data = write_data(tmp_path / "data")
    path = config(tmp_path, data, "report", variants=("labels", "binary_kd"))
    output = invoke("run", str(path))
    folder = tmp_path / "runs" / "report"
    assert "Report: " in output and (folder / "report.html").is_file()
    summary = (folder / "summary.md").read_text()
    assert "The test split was streamed" in summary
    html = (folder / "report.html").read_text()
    assert "Reliability: labels" in html  # the baseline's, from every streamed test row
    results = json.loads((folder / "results.json").read_text())
    assert {row["name"] for row in results["compression"]} == {"teacher", "labels", "binary_kd"}
    assert all(row["metric"] is None for row in results["compression"])


def test_the_report_of_a_streamed_ranking_run(tmp_path):
    rng = np.random.default_rng(0)
    for split, groups, first in (("train", 40, 0), ("valid", 10, 1000), ("test", 10, 2000)):
        qid = np.repeat(np.arange(first, first + groups), 6)
        x = rng.normal(size=(len(qid), 3)).astype(np.float32)
        label = np.clip(np.round(x[:, 0] + 1 + rng.normal(0, 0.5, len(qid))), 0, 3)
        (tmp_path / split).mkdir()
        table = {"qid": qid, "label": label} | {f"f{k}": x[:, k] for k in range(3)}
        pq.write_table(pa.table(table), tmp_path / split / "part-0.parquet")
    splits = "\n".join(f'{split} = "{tmp_path / split}"' for split in ("train", "valid", "test"))
    path = tmp_path / "rank.toml"
    path.write_text(f"""
[run]
name = "rank"
track = "ranking"
out_dir = "{tmp_path / "runs"}"
[data]
source = "table"
streaming = true
{splits}
columns = {{ label = "label", group = "qid", features = ["f0", "f1", "f2"] }}
[teacher.model]
name = "MLP"
kwargs = {{ hidden = [8] }}
[teacher.train]
epochs = 1
groups_per_batch = 8
[student.model]
name = "MLP"
kwargs = {{ hidden = [4] }}
[train]
epochs = 1
groups_per_batch = 8
[[variants]]
name = "pairwise"
[variants.objective.pairwise]
""")
    invoke("run", str(path))
    html = (tmp_path / "runs" / "rank" / "report.html").read_text()
    assert "NDCG@k per model" in html and "The test split was streamed" in html
    assert (tmp_path / "train" / "_scores" / "part-0.parquet").is_file()  # pairwise KD: scored


def test_synthetic_criteo_tsv_converts_with_the_asked_share_of_empty_cells(tmp_path):
    write_criteo_tsv(tmp_path / "day.tsv", rows=4000, seed=3, missing=0.2, block_rows=1500)
    lines = (tmp_path / "day.tsv").read_text().splitlines()
    assert len(lines) == 4000 and all(line.count("\t") == 39 for line in lines)
    cells = np.array([line.split("\t") for line in lines])
    empty = cells == ""
    assert not empty[:, [0, 1, 2, 14, 15, 16]].any()  # label, I1, I2, C1-C3: never empty
    rest = np.delete(empty, [0, 1, 2, 14, 15, 16], axis=1)
    assert rest.mean() == pytest.approx(0.2, abs=0.01)
    invoke("convert", str(tmp_path / "day.tsv"), "--out", str(tmp_path / "shards"))
    assert pq.read_table(tmp_path / "shards").num_rows == 4000
    with pytest.raises(ValueError, match=r"`missing` must be in \[0, 1\), got 1.5"):
        write_criteo_tsv(tmp_path / "bad.tsv", rows=10, missing=1.5)
    assert not (tmp_path / "bad.tsv").exists()
