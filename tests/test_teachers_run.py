"""Runs with the user's own teacher: a LightGBM lambdarank model file, its scores in a file
keyed by id, or in a column of the data's table; config checks and bad input (exit code 2)."""

import json
import re

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
N_FEATURES = 8
LETOR_FILES = {"train.txt": (240, 0), "vali.txt": (40, 1), "test.txt": (80, 2)}


def _queries(n_queries, seed):
    """Queries of 6-14 documents; grades 0-4 from a nonlinear function of the features."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(6, 15, n_queries)
    x = rng.normal(size=(sizes.sum(), N_FEATURES)).astype(np.float32)
    latent = x[:, 0] + np.sin(2 * x[:, 1]) + x[:, 2] * x[:, 3] - 0.5 * np.abs(x[:, 4])
    noisy = latent + 0.3 * rng.normal(size=len(x))
    grades = np.digitize(noisy, np.quantile(noisy, [0.5, 0.75, 0.9, 0.97])).astype(np.float32)
    return x, grades, sizes


def _write_letor(path, x, grades, sizes):
    """SVMlight rows without qid plus LightGBM's ``<file>.query`` group sizes."""
    lines = (
        f"{int(g)} " + " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(row))
        for row, g in zip(x, grades, strict=True)
    )
    path.write_text("\n".join(lines) + "\n")
    path.with_name(path.name + ".query").write_text("\n".join(map(str, sizes)) + "\n")


@pytest.fixture(scope="module")
def letor(tmp_path_factory):
    """A LETOR fold in LightGBM's layout, a lambdarank model trained on train.txt only, and
    its raw scores of every row (ids numbered across train, vali, test) in a scores file."""
    folder = tmp_path_factory.mktemp("letor")
    parts = {name: _queries(n, seed) for name, (n, seed) in LETOR_FILES.items()}
    for name, part in parts.items():
        _write_letor(folder / name, *part)
    x, grades, sizes = parts["train.txt"]
    booster = lightgbm.train(
        {"objective": "lambdarank", "num_leaves": 15, "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(x, grades, group=sizes),
        num_boost_round=60,
    )
    booster.save_model(str(folder / "lambdarank.txt"))
    all_x = np.concatenate([part[0] for part in parts.values()])
    scores = booster.predict(all_x.astype(np.float64), raw_score=True).astype(np.float32)
    table = {"row": np.arange(len(all_x)), "lambdarank": scores}
    pq.write_table(pa.table(table), folder / "scores.parquet")
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


def _run(config):
    result = runner.invoke(app, ["run", str(config), "--no-report"])
    return result


def _results(folder, name):
    return json.loads((folder / "runs" / name / "results.json").read_text())


def _weights(folder, name, variant):
    return safetensors.torch.load_file(
        folder / "runs" / name / "students" / variant / "model.safetensors"
    )


def test_lightgbm_teacher_and_its_scores_train_the_same_better_students(letor):
    folder, parts, scores = letor
    data = f'source = "letor"\npath = "{folder}"'
    model_run = _config(
        folder, data, f'kind = "lightgbm"\npath = "{folder / "lambdarank.txt"}"', "lgbm"
    )
    result = _run(model_run)
    assert result.exit_code == 0, result.output
    results = _results(folder, "lgbm")
    teacher, rows = results["teacher"], {row["name"]: row for row in results["variants"]}
    assert rows["pairwise"]["metrics"]["ndcg@10"] > rows["labels"]["metrics"]["ndcg@10"] + 0.02
    assert teacher["trees"] == 60 and teacher["params"] == 2 * teacher["leaves"] - 60
    assert teacher["size_bytes"] == (folder / "lambdarank.txt").stat().st_size
    assert not (folder / "runs" / "lgbm" / "teacher").exists()  # not trained, not copied

    # The teacher's test NDCG@10 is LightGBM's own scores' (an independent NDCG oracle).
    test_scores = scores[-len(parts["test.txt"][0]) :]
    assert teacher["metrics"]["ndcg@10"] == pytest.approx(
        _ndcg10(test_scores, *parts["test.txt"][1:]), abs=1e-5
    )

    file_teacher = (
        f'kind = "scores"\npath = "{folder / "scores.parquet"}"\nkey = "row"\ncolumn = "lambdarank"'
    )
    result = _run(_config(folder, data, file_teacher, "scores_file", variants=("pairwise",)))
    assert result.exit_code == 0, result.output
    for name, value in _weights(folder, "lgbm", "pairwise").items():
        assert torch.equal(value, _weights(folder, "scores_file", "pairwise")[name]), name
    assert _results(folder, "scores_file")["teacher"]["metrics"] == teacher["metrics"]


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


def _table(folder, parts, scores, nan_row=None):
    """Every row of the fold as one Parquet table with the teacher's logit as a column."""
    x = np.concatenate([part[0] for part in parts.values()])
    grades = np.concatenate([part[1] for part in parts.values()])
    sizes = np.concatenate([part[2] for part in parts.values()])
    columns = {f"f{j + 1}": x[:, j] for j in range(N_FEATURES)}
    columns |= {"grade": grades, "query": np.repeat(np.arange(len(sizes)), sizes)}
    columns["teacher_logit"] = scores.copy()
    if nan_row is not None:
        columns["teacher_logit"][nan_row] = np.nan
    path = folder / ("table.parquet" if nan_row is None else "nan.parquet")
    pq.write_table(pa.table(columns), path)
    return path


def _table_data(path):
    features = ", ".join(f'"f{j + 1}"' for j in range(N_FEATURES))
    return (
        f'source = "table"\npath = "{path}"\n'
        f'columns = {{ label = "grade", group = "query", features = [{features}] }}'
    )


def test_score_column_of_a_table_gives_the_lightgbm_teachers_students(letor):
    folder, parts, scores = letor
    data = _table_data(_table(folder, parts, scores))
    column = _config(folder, data, 'kind = "scores"\ncolumn = "teacher_logit"', "column", ())
    model = _config(folder, data, f'path = "{folder / "lambdarank.txt"}"', "table_lgbm", ())
    for config in (column, model):
        result = _run(config)
        assert result.exit_code == 0, result.output
    for name, value in _weights(folder, "column", "pairwise").items():
        assert torch.equal(value, _weights(folder, "table_lgbm", "pairwise")[name]), name
    column_row = _results(folder, "column")["teacher"]
    assert column_row["metrics"] == _results(folder, "table_lgbm")["teacher"]["metrics"]
    assert column_row["params"] == 0 and column_row["path"] == "column ['teacher_logit']"
    assert not (folder / "runs" / "column" / "scores").exists()  # no scoring pass


def _assert_refused(folder, config, name, message):
    result = _run(config)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (folder / "runs" / name).exists()  # nothing written


def test_bad_teachers_exit_2_before_anything_is_written(letor, tmp_path):
    folder, parts, scores = letor
    letor_data = f'source = "letor"\npath = "{folder}"'
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
    x, grades, sizes = parts["train.txt"]
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
        _assert_refused(folder, _config(folder, letor_data, teacher, name), name, message)
    nan_data = _table_data(_table(folder, parts, scores, nan_row=7))
    config = _config(folder, nan_data, 'column = "teacher_logit"', "nan", ())
    _assert_refused(folder, config, "nan", "teacher score of row")


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
