"""Runs with the user's own teacher: a LightGBM lambdarank model file, its scores in a file
keyed by id, or in a column of the data's table; config checks and bad input (exit code 2)."""

import json
import re
import runpy
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import safetensors.torch
import torch
from typer.testing import CliRunner

from distill.cli import app
from distill.config import ConfigError, parse_config

lightgbm = pytest.importorskip("lightgbm")
runner = CliRunner()
EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.fixture(scope="module")
def letor(tmp_path_factory):
    """The files of examples/teacher_lightgbm.py: a LETOR train/test pair in LightGBM's layout
    (rank.train + rank.train.query, rank.test + rank.test.query), a lambdarank model trained on
    rank.train, its raw scores in a file keyed by row and as a column of train/test tables,
    and an ONNX ranker."""
    example = runpy.run_path(str(EXAMPLES / "teacher_lightgbm.py"))
    folder = example["main"](str(tmp_path_factory.mktemp("rank")))
    parts = {name: example["queries"](*spec) for name, spec in example["FILES"].items()}
    scores = pq.read_table(folder / "scores.parquet")["lambdarank"].to_numpy()
    return folder, parts, scores


def _config(folder, data, teacher, name, variants=("labels", "pairwise")):
    lines = [
        f'[run]\nname = "{name}"\ntrack = "ranking"\nout_dir = "{folder / "runs"}"',
        f"[data]\n{data}\nlabel_fraction = 0.05",
        f"[teacher]\n{teacher}",
        '[student.model]\nname = "MLP"\nkwargs = { hidden = [16] }',
        "[train]\nmax_steps = 200\ngroups_per_batch = 16\nlr = 0.01\nlog_every = 50",
    ]
    if "labels" in variants:
        lines.append('[[variants]]\nname = "labels"\n[variants.objective.labels]')
    lines.append('[[variants]]\nname = "pairwise"\ntransfer = "all"\n[variants.objective.pairwise]')
    path = folder / f"{name}.toml"
    path.write_text("\n\n".join(lines) + "\n")
    return path


def _run(config, *, report=False):
    return runner.invoke(app, ["run", str(config), "--report" if report else "--no-report"])


def _results(folder, name):
    return json.loads((folder / "runs" / name / "results.json").read_text())


def _weights(folder, name, variant):
    return safetensors.torch.load_file(
        folder / "runs" / name / "students" / variant / "model.safetensors"
    )


def _letor_data(folder):
    """The LETOR train/test pair in LightGBM's layout; valid is cut from rank.train."""
    train, test = folder / "rank.train", folder / "rank.test"
    return f'source = "letor"\ntrain = "{train}"\ntest = "{test}"\nsplit = [0.85, 0.15]'


def _table_data(folder, train="train.parquet"):
    """The same rows as Parquet tables (f1..f8, grade, query, teacher_logit)."""
    features = ", ".join(f'"f{j + 1}"' for j in range(8))
    return (
        f'source = "table"\ntrain = "{folder / train}"\ntest = "{folder / "test.parquet"}"\n'
        f"split = [0.85, 0.15]\n"
        f'columns = {{ label = "grade", group = "query", features = [{features}] }}'
    )


def _model(folder):
    return f'path = "{folder / "lambdarank.txt"}"'


def test_lightgbm_teacher_trains_students_that_beat_labels_only(letor):
    folder, parts, scores = letor
    config = _config(folder, _letor_data(folder), f'kind = "lightgbm"\n{_model(folder)}', "lgbm")
    result = _run(config)
    assert result.exit_code == 0, result.output
    results = _results(folder, "lgbm")
    teacher, rows = results["teacher"], {row["name"]: row for row in results["variants"]}
    assert rows["pairwise"]["metrics"]["ndcg@10"] > rows["labels"]["metrics"]["ndcg@10"] + 0.02
    assert teacher["trees"] == 60 and teacher["params"] == 2 * teacher["leaves"] - 60
    assert teacher["size_bytes"] == (folder / "lambdarank.txt").stat().st_size
    assert not (folder / "runs" / "lgbm" / "teacher").exists()  # not trained, not copied
    # The teacher's row is LightGBM's own scores of rank.test (an independent NDCG oracle).
    test_scores = scores[len(parts["train"][0]) :]
    expected = _ndcg10(test_scores, *parts["test"][1:])
    assert teacher["metrics"]["ndcg@10"] == pytest.approx(expected, abs=1e-5)


def test_the_teachers_scores_as_a_column_or_a_file_train_the_same_students(letor):
    folder, _, _ = letor
    scores_file = f'kind = "scores"\npath = "{folder / "scores.parquet"}"\nkey = "row"'
    runs = {
        "offline": (_letor_data(folder), _model(folder)),
        "column": (_table_data(folder), 'kind = "scores"\ncolumn = "teacher_logit"'),
        "table_model": (_table_data(folder), _model(folder)),  # the column is not a feature
        "file": (_letor_data(folder), f'{scores_file}\ncolumn = "lambdarank"'),
        "online": (_letor_data(folder), _model(folder)),
    }
    for name, (data, teacher) in runs.items():
        config = _config(folder, data, teacher, name, ())
        if name == "online":
            text = config.read_text().replace("[train]\n", '[train]\nteacher_mode = "online"\n')
            config.write_text(text)
        result = _run(config, report=name == "column")  # the report plots the column's scores
        assert result.exit_code == 0, result.output
    assert (folder / "runs" / "column" / "report.html").is_file()
    assert not (folder / "runs" / "column" / "scores").exists()  # no scoring pass
    reference = _weights(folder, "offline", "pairwise")
    for name in runs:
        for key, value in _weights(folder, name, "pairwise").items():
            assert torch.equal(value, reference[key]), (name, key)
        metrics = _results(folder, name)["teacher"]["metrics"]
        assert metrics == _results(folder, "offline")["teacher"]["metrics"], name
    column_row = _results(folder, "column")["teacher"]
    assert column_row["params"] == 0 and column_row["path"] == "column ['teacher_logit']"


def test_onnx_teacher_run_reports_its_real_size(letor):
    folder, _, _ = letor
    teacher = f'path = "{folder / "teacher.onnx"}"'
    result = _run(_config(folder, _letor_data(folder), teacher, "onnx", ()))
    assert result.exit_code == 0, result.output
    row = _results(folder, "onnx")["teacher"]
    assert row["params"] == 8 * 64 + 64 + 64 + 1  # the exported MLP's weights
    assert row["size_bytes"] == (folder / "teacher.onnx").stat().st_size
    assert "trees" not in row


def _nan_table(folder, row):
    """The example's train table with the teacher's logit of one row set to NaN."""
    table = pq.read_table(folder / "train.parquet")
    logits = table["teacher_logit"].to_numpy().copy()
    logits[row] = np.nan
    index = table.column_names.index("teacher_logit")
    pq.write_table(table.set_column(index, "teacher_logit", pa.array(logits)), folder / "nan.pq")
    return "nan.pq"


def _assert_refused(folder, config, name, message):
    result = _run(config)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (folder / "runs" / name).exists()  # nothing written


def test_bad_teachers_exit_2_before_anything_is_written(letor, tmp_path):
    folder, parts, scores = letor
    model = folder / "lambdarank.txt"
    cases = {
        "wrong_kind": (f'kind = "xgboost"\npath = "{model}"', "kind = 'xgboost' expects an"),
        "no_file": (f'path = "{tmp_path / "nope.txt"}"', "nope.txt: no such teacher file"),
    }
    short = tmp_path / "short.parquet"
    pq.write_table(pa.table({"row": np.arange(10), "s": np.zeros(10, np.float32)}), short)
    cases["short"] = (
        f'kind = "scores"\npath = "{short}"\nkey = "row"\ncolumn = "s"',
        f"expected {len(scores)} scores (one per row of the data",
    )
    narrow = tmp_path / "narrow.txt"
    x, grades, sizes = parts["train"]
    lightgbm.train(
        {"objective": "lambdarank", "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(x[:, :5], grades, group=sizes),
        num_boost_round=2,
    ).save_model(str(narrow))
    cases["narrow"] = (
        f'path = "{narrow}"',
        "the LightGBM model expects 5 features, the data gives it 8",
    )
    for name, (teacher, message) in cases.items():
        _assert_refused(folder, _config(folder, _letor_data(folder), teacher, name), name, message)
    nan_data = _table_data(folder, train=_nan_table(folder, 7))
    config = _config(folder, nan_data, 'column = "teacher_logit"', "nan", ())
    _assert_refused(folder, config, "nan", "teacher score of row 7 (id 7) is [nan]")
    config = _config(folder, _table_data(folder), 'column = "logged_score"', "no_column", ())
    _assert_refused(folder, config, "no_column", "no column(s) ['logged_score']")


def _ndcg10(scores, grades, sizes):
    """NDCG@10 with gains 2^g − 1 and log2 discounts, one query at a time."""
    values, start = [], 0
    for size in sizes:
        s, g = scores[start : start + size], grades[start : start + size]
        start += size
        discount = 1 / np.log2(np.arange(2, min(size, 10) + 2))
        ideal = np.sum((2 ** np.sort(g)[::-1][:10] - 1) * discount)
        if ideal > 0:
            values.append(
                np.sum((2 ** g[np.argsort(-s, kind="stable")][:10] - 1) * discount) / ideal
            )
    return float(np.mean(values))


@pytest.mark.parametrize(
    ("teacher", "message"),
    [
        ({"kind": "scores"}, "needs exactly one of `column` or `columns`"),
        ({"column": "a", "key": "id"}, "needs both `path` and `key`"),
        ({"path": "m.txt", "column": "a"}, "needs both `path` and `key`"),
        ({"path": "m.txt", "kind": "lightgbm", "key": "id"}, "apply to kind = 'scores' only"),
        ({"kind": "onnx"}, "give `model` (a teacher to train), `path`"),
        (
            {"path": "m.onnx", "kind": "torchscript", "features": "1-3"},
            "torchscript teacher reads what it is given; choosing `features`",
        ),
        ({"kind": "gbdt", "path": "m"}, "teacher.kind: input should be 'distill'"),
    ],
)
def test_teacher_section_validation(teacher, message):
    raw = {
        "run": {"name": "t", "track": "ranking"},
        "data": {"source": "table", "path": "t.csv", "columns": {"label": "y"}},
        "teacher": teacher,
        "student": {"model": {"name": "MLP"}},
        "variants": [{"name": "p", "objective": {"pairwise": {}}}],
    }
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(raw)


def test_score_column_needs_a_table_source():
    raw = {
        "run": {"name": "t", "track": "ranking"},
        "data": {"source": "letor", "path": "rank.train"},
        "teacher": {"column": "logit"},
        "student": {"model": {"name": "MLP"}},
        "variants": [{"name": "p", "objective": {"pairwise": {}}}],
    }
    with pytest.raises(ConfigError, match="need data.source = 'table', got 'letor'"):
        parse_config(raw)
    raw["data"] = {"source": "table", "path": "t.csv", "columns": {"label": "y"}}
    cfg = parse_config(raw)
    assert cfg.teacher.source_kind == "scores" and cfg.teacher.score_columns == ["logit"]


def test_score_cache_notices_a_changed_teacher_file(letor, tmp_path):
    folder, parts, _ = letor
    model = tmp_path / "model.txt"
    model.write_bytes((folder / "lambdarank.txt").read_bytes())
    config = _config(tmp_path, _letor_data(folder), f'path = "{model}"', "steps", ())
    for command in ("teacher", "score", "student"):
        result = runner.invoke(app, [command, str(config)])
        assert result.exit_code == 0, result.output
    x, grades, sizes = parts["train"]
    lightgbm.train(
        {"objective": "lambdarank", "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(x, grades, group=sizes),
        num_boost_round=3,
    ).save_model(str(model))
    result = runner.invoke(app, ["student", str(config)])
    assert result.exit_code == 2, result.output
    assert "stale cache" in result.output and "run `distill score` again" in result.output
    assert runner.invoke(app, ["score", str(config)]).exit_code == 0
    assert runner.invoke(app, ["student", str(config)]).exit_code == 0


def test_missing_library_is_a_config_error(letor, monkeypatch):
    import sys

    folder, _, _ = letor
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # as if not installed
    config = _config(folder, _letor_data(folder), _model(folder), "nolib", ())
    _assert_refused(folder, config, "nolib", "pip install 'distill[gbdt]'")


def test_multiclass_lightgbm_teacher_row_matches_its_own_predictions(tmp_path):
    import torch.nn.functional as F

    from distill.config import load_config
    from distill.experiment.setup import load_run_data

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] + x[:, 2] > 0.5).astype(np.int64)
    columns = {f"f{j}": x[:, j] for j in range(5)} | {"y": y}
    pq.write_table(pa.table(columns), tmp_path / "t.parquet")
    booster = lightgbm.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(x[:300], y[:300]),
        num_boost_round=20,
    )
    booster.save_model(str(tmp_path / "m.txt"))
    data = f'source = "table"\npath = "{tmp_path / "t.parquet"}"\ncolumns = {{ label = "y" }}'
    config = _config(tmp_path, data, f'path = "{tmp_path / "m.txt"}"', "multi", ())
    text = config.read_text().replace('track = "ranking"', 'track = "classification"')
    text = text.replace("[variants.objective.pairwise]", "[variants.objective.kd]")
    config.write_text(text.replace("groups_per_batch = 16", "batch_size = 64"))
    result = _run(config)
    assert result.exit_code == 0, result.output
    row = _results(tmp_path, "multi")["teacher"]
    test = load_run_data(load_config(config)).test  # the run's own test rows
    margins = torch.from_numpy(booster.predict(test.features.double().numpy(), raw_score=True))
    labels = test.labels
    accuracy = (margins.argmax(1) == labels).double().mean().item()
    assert row["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert row["metrics"]["nll"] == pytest.approx(F.cross_entropy(margins, labels).item(), abs=1e-5)
    assert row["trees"] == 60
