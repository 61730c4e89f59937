"""``distill run`` over streamed Parquet shards: a CTR run end to end, bad configs refused."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from distill.cli import app
from distill.data.synthetic_shards import CATEGORICAL, NUMERIC, write_criteo_shards

runner = CliRunner()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("criteo")
    for split, rows, seed in (("train", 6000, 0), ("valid", 1500, 1), ("test", 1500, 2)):
        write_criteo_shards(folder / split, rows=rows, shard_rows=2000, seed=seed)
    return folder


def config(folder, shards, name, extra_data="", teacher='column = "teacher_logit"', train=""):
    numeric, categorical = json.dumps(NUMERIC[:4]), json.dumps(CATEGORICAL)
    columns = f'label = "label", features = {numeric}, categorical = {categorical}'
    text = f"""
[run]
name = "{name}"
track = "ctr"
out_dir = "{folder / "runs"}"

[data]
source = "table"
streaming = true
shuffle_buffer = 1000
train = "{shards / "train"}"
valid = "{shards / "valid" / "*.parquet"}"
test = "file://{shards / "test"}"
columns = {{ {columns} }}
options = {{ hash_buckets = 1000, impute = 0.0 }}
{extra_data}

[teacher]
{teacher}

[student.model]
name = "WideAndDeep"
kwargs = {{ embed_dim = 4, hidden = [16] }}

[train]
epochs = 2
batch_size = 256
lr = 0.01
log_every = 10
{train}

[[variants]]
name = "labels"
[variants.objective.labels]

[[variants]]
name = "binary_kd"
[variants.objective.binary_kd]
soft_weight = 0.5
"""
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def test_streamed_ctr_run_with_a_score_column_teacher(tmp_path, shards):
    result = runner.invoke(app, ["run", str(config(tmp_path, shards, "s")), "--no-report"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "runs" / "s" / "results.json").read_text())
    test = pq.read_table(shards / "test")
    expected = roc_auc_score(test["label"].to_numpy(), test["teacher_logit"].to_numpy())
    assert results["teacher"]["metrics"]["auc"] == pytest.approx(expected, abs=1e-9)
    rows = {row["name"]: row for row in results["variants"]}
    assert set(rows) == {"labels", "binary_kd"}
    for row in rows.values():
        assert 0.55 < row["metrics"]["auc"] < expected  # learns something, below the teacher
    lines = (tmp_path / "runs" / "s" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines if '"binary_kd"' in line]
    assert max(steps) == 2 * 24  # two epochs of ceil(6000 / 256) batches


@pytest.mark.parametrize(
    ("extra_data", "teacher", "train", "message"),
    [
        (
            "label_fraction = 0.5",
            'column = "teacher_logit"',
            "",
            "data.streaming: needs label_fraction = 1, got 0.5",
        ),
        (
            "",
            '[teacher.model]\nname = "WideAndDeep"\n[joint]',
            "",
            "data.streaming: the [joint] model is not available on streamed data",
        ),
        ('test = "nowhere/*.parquet"', 'column = "teacher_logit"', "", "the glob matches no file"),
    ],
)
def test_bad_streamed_configs_are_refused_before_writing(
    tmp_path, shards, extra_data, teacher, train, message
):
    path = config(tmp_path, shards, "bad", extra_data, teacher, train)
    text = path.read_text()
    if extra_data.startswith("test ="):  # replace the test split
        text = text.replace(f'test = "file://{shards / "test"}"\n', "")
        path.write_text(text)
    result = runner.invoke(app, ["run", str(path), "--no-report"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "runs" / "bad").exists()
