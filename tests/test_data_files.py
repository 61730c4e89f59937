"""A run's data from real-format files: train/valid/test paths, LightGBM and MSLR layouts,
Avazu-style CSV with string columns, label types by track, stratified splits; each checked
against scikit-learn and csv-module reads or hand-computed values."""

import csv
import random
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.datasets import load_svmlight_file
from typer.testing import CliRunner

from distill.cli import app
from distill.config import ConfigError, parse_config
from distill.data import Dataset, split
from distill.experiment.runner import run_experiment
from distill.experiment.setup import load_run_data


def _letor_lines(rng, queries, *, qid=True, first_index=1, width=6):
    lines, sizes = [], []
    for query in range(queries):
        size = rng.randint(2, 5)
        sizes.append(size)
        for _ in range(size):
            features = " ".join(
                f"{k}:{rng.random():.3f}" for k in range(first_index, first_index + width)
            )
            group = f" qid:{query + 1}" if qid else ""
            lines.append(f"{rng.randint(0, 4)}{group} {features}")
    return "\n".join(lines) + "\n", sizes


def _config(tmp_path, track, data, **extra):
    return {
        "run": {"name": "files", "track": track, "out_dir": str(tmp_path / "runs")},
        "data": data,
        "teacher": {"model": {"name": "MLP"}, "train": {"max_steps": 3}},
        "student": {"model": {"name": "MLP", "kwargs": {"hidden": [2]}}},
        "variants": [{"name": "labels", "objective": {"labels": {}}}],
        **extra,
    }


def _sklearn_rows(path, *, n_features, zero_based):
    matrix, labels = load_svmlight_file(str(path), n_features=n_features, zero_based=zero_based)
    return matrix.toarray().astype(np.float32), labels.astype(np.float32)


def test_lightgbm_layout_train_and_test_with_query_files(tmp_path):
    rng = random.Random(0)
    for name, queries in (("rank.train", 30), ("rank.test", 8)):
        text, sizes = _letor_lines(rng, queries, qid=False)
        (tmp_path / name).write_text(text)
        (tmp_path / f"{name}.query").write_text("\n".join(map(str, sizes)) + "\n")
    data = {"source": "letor", "train": str(tmp_path / "rank.train")}
    data["test"] = str(tmp_path / "rank.test")
    data["split"] = [0.8, 0.2]  # test comes from its file: train/valid = 0.8 : 0.2
    run = load_run_data(parse_config(_config(tmp_path, "ranking", data)))
    features, labels = _sklearn_rows(tmp_path / "rank.test", n_features=6, zero_based=False)
    assert torch.equal(run.test.features, torch.from_numpy(features))
    assert torch.equal(run.test.labels, torch.from_numpy(labels))
    sizes = [int(line) for line in (tmp_path / "rank.test.query").read_text().split()]
    assert torch.unique_consecutive(run.test.groups, return_counts=True)[1].tolist() == sizes
    n_train = len(run.train) + len(run.valid)
    assert n_train == sum(int(x) for x in (tmp_path / "rank.train.query").read_text().split())
    assert round(len(set(run.valid.groups.tolist())) / 30, 1) == 0.2  # groups: 24 + 6
    assert not set(run.train.groups.tolist()) & set(run.valid.groups.tolist())
    every_id = torch.cat([run.train.ids, run.valid.ids, run.test.ids])
    assert len(torch.unique(every_id)) == len(every_id)
    assert run.test.ids.min() >= n_train  # test rows numbered after the train file's rows
    assert run.train.labels.dtype == torch.float32
    raw = _config(tmp_path, "ranking", data)
    raw["train"] = {"max_steps": 3, "groups_per_batch": 4}
    raw["variants"].append({"name": "pairwise", "objective": {"pairwise": {}}})
    results = run_experiment(parse_config(raw))  # the whole run on the two files
    assert [row["name"] for row in results["variants"]] == ["labels", "pairwise"]
    assert 0 <= results["variants"][1]["metrics"]["ndcg@10"] <= 1


def test_mslr_folder_and_named_files_agree(tmp_path):
    rng = random.Random(1)
    fold = tmp_path / "Fold1"
    fold.mkdir()
    for name, queries in (("train.txt", 10), ("vali.txt", 4), ("test.txt", 4)):
        (fold / name).write_text(_letor_lines(rng, queries)[0])
    by_folder = load_run_data(
        parse_config(_config(tmp_path, "ranking", {"source": "letor", "path": str(fold)}))
    )
    names = {"train": "train.txt", "valid": "vali.txt", "test": "test.txt"}
    files = {key: str(fold / name) for key, name in names.items()}
    by_files = load_run_data(
        parse_config(_config(tmp_path, "ranking", {"source": "letor", **files}))
    )
    for part in ("train", "valid", "test"):
        a, b = getattr(by_folder, part), getattr(by_files, part)
        assert torch.equal(a.features, b.features) and torch.equal(a.ids, b.ids)
        expected, _ = _sklearn_rows(fold / names[part], n_features=6, zero_based=False)
        assert torch.equal(a.features, torch.from_numpy(expected))


def test_test_file_uses_the_train_files_index_base(tmp_path):
    # train is 0-based (index 0 occurs); the test file has no index 0 but must not shift
    (tmp_path / "train.txt").write_text("1 qid:1 0:1 2:5\n0 qid:1 1:2\n2 qid:2 0:3\n0 qid:2 2:1\n")
    (tmp_path / "test.txt").write_text("1 qid:7 1:4 2:6\n0 qid:7 2:8\n")
    data = {"source": "letor", "train": str(tmp_path / "train.txt")}
    data |= {"test": str(tmp_path / "test.txt"), "split": [0.5, 0.5]}
    run = load_run_data(parse_config(_config(tmp_path, "ranking", data)))
    expected, _ = _sklearn_rows(tmp_path / "test.txt", n_features=3, zero_based=True)
    assert run.test.features.tolist() == expected.tolist() == [[0, 4, 6], [0, 0, 8]]
    assert run.test.feature_names == ["0", "1", "2"]


def test_valid_file_with_other_features_is_an_error_naming_it(tmp_path):
    (tmp_path / "train.txt").write_text("1 qid:1 1:1 2:5\n0 qid:1 1:2\n")
    (tmp_path / "valid.txt").write_text("1 qid:3 1:1 3:5\n0 qid:3 1:2\n")
    data = {"source": "letor", "train": str(tmp_path / "train.txt")}
    data["valid"] = str(tmp_path / "valid.txt")
    with pytest.raises(
        ConfigError,
        match=r"data.valid: .*valid\.txt: expected at most 2 feature columns \(`n_features`, or "
        r"the train file's width\), found 3 \(feature index 3\)",
    ):
        load_run_data(parse_config(_config(tmp_path, "ranking", data)))


@pytest.mark.parametrize(
    ("valid_text", "match"),
    [
        ("a,c,y\n1,2,0\n", r"data.valid: .*v\.csv:1: no column\(s\) \['b'\]; columns are"),
        ("a,b,y\n1,x,0\n", r"data.valid: .*v\.csv: feature column 'b' is not numeric"),
        (
            "a,b,c,y\n1,2,3,0\n",
            r"data.valid: .*v\.csv: columns differ from the train file's, whose unmapped columns "
            r"are the features: .*\(extra \['c'\], missing \[\]\)",
        ),
    ],
)
def test_table_valid_file_must_hold_the_train_columns(tmp_path, valid_text, match):
    (tmp_path / "t.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,1\n7,8,0\n")
    (tmp_path / "v.csv").write_text(valid_text)
    data = {"source": "table", "columns": {"label": "y"}}
    data |= {"train": str(tmp_path / "t.csv"), "valid": str(tmp_path / "v.csv")}
    with (
        pytest.warns(
            UserWarning, match=r"using every other column as a numeric feature: \['a', 'b'\]"
        ),
        pytest.raises(ConfigError, match=match),
    ):
        load_run_data(parse_config(_config(tmp_path, "classification", data)))


def test_table_categorical_mismatch_names_expected_and_found(tmp_path):
    pq.write_table(pa.table({"a": [1.0, 2.0], "s": ["x", "y"], "y": [0, 1]}), tmp_path / "t.pq")
    pq.write_table(pa.table({"a": [1.0], "s": [2.5], "y": [1]}), tmp_path / "v.pq")
    data = {"source": "table", "columns": {"label": "y", "features": ["a"], "categorical": ["s"]}}
    data |= {"train": str(tmp_path / "t.pq"), "test": str(tmp_path / "v.pq")}
    with pytest.raises(
        ConfigError, match=r"data.test: .*v\.pq: categorical column 's' has type double"
    ):
        load_run_data(parse_config(_config(tmp_path, "ctr", data)))


AVAZU_COLUMNS = ["id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "app_id"]
CATEGORICAL = ["C1", "banner_pos", "site_id", "site_domain", "app_id"]


def _avazu_csv(path, rows, seed):
    rng = random.Random(seed)
    sites = ["1fbe01fe", "85f751fd", "d6137915", "e151e245"]
    lines = [",".join(AVAZU_COLUMNS)]
    for row in range(rows):
        site = rng.choice(sites)
        click = int(rng.random() < (0.7 if site == "85f751fd" else 0.1))
        lines.append(
            f"{seed * 10_000 + row},{click},{14102100 + rng.randint(0, 23)},"
            f"{rng.choice([1005, 1002])},{rng.randint(0, 1)},{site},{site[::-1]},ecad2386"
        )
    path.write_text("\n".join(lines) + "\n")


def test_avazu_style_csv_hashes_string_columns_and_trains_ctr_students(tmp_path):
    _avazu_csv(tmp_path / "train.csv", 400, seed=0)
    _avazu_csv(tmp_path / "test.csv", 100, seed=1)
    buckets = 1000
    data = {
        "source": "table",
        "train": str(tmp_path / "train.csv"),
        "test": str(tmp_path / "test.csv"),
        "columns": {"label": "click", "id": "id", "features": [], "categorical": CATEGORICAL},
        "options": {"hash_buckets": buckets},
    }
    wide = {"name": "WideAndDeep", "kwargs": {"embed_dim": 4, "hidden": [8]}}
    raw = _config(tmp_path, "ctr", data)
    raw["teacher"] = {"model": wide, "train": {"max_steps": 5, "batch_size": 64}}
    raw["student"] = {"model": wide}
    raw["train"] = {"max_steps": 5, "batch_size": 64}
    raw["variants"].append({"name": "kd", "objective": {"binary_kd": {}}})
    cfg = parse_config(raw)
    with pytest.warns(UserWarning, match="positive row.*AUC on fewer than 100 positives is noise"):
        run = load_run_data(cfg)
    # oracle: the csv module reads every cell as text; ids = 1 + j*(B+1) + 1 + crc32(text) % B
    with open(tmp_path / "test.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    expected = [
        [
            1 + j * (buckets + 1) + 1 + zlib.crc32(row[name].encode()) % buckets
            for j, name in enumerate(CATEGORICAL)
        ]
        for row in rows
    ]
    assert run.test.features.tolist() == expected
    assert run.test.num_embeddings == 1 + len(CATEGORICAL) * (buckets + 1)
    assert run.test.ids.tolist() == [int(row["id"]) for row in rows]
    assert run.test.labels.dtype == torch.float32 and run.test.meta["task"] == "binary"
    with pytest.warns(UserWarning, match="AUC on fewer"):
        results = run_experiment(cfg)
    assert {row["name"] for row in results["variants"]} == {"labels", "kd"}
    assert all(0.0 <= row["metrics"]["auc"] <= 1.0 for row in results["variants"])


def test_shared_ids_across_files_are_an_error(tmp_path):
    _avazu_csv(tmp_path / "train.csv", 50, seed=0)
    _avazu_csv(tmp_path / "test.csv", 10, seed=0)  # same seed: same ids
    data = {"source": "table", "train": str(tmp_path / "train.csv")}
    data |= {"test": str(tmp_path / "test.csv")}
    data["columns"] = {"label": "click", "id": "id", "features": ["hour"], "categorical": ["C1"]}
    with pytest.raises(ConfigError, match=r"data.test: id 0 \(row 0\) is also in the train file"):
        load_run_data(parse_config(_config(tmp_path, "ctr", data)))


def test_integer_grades_with_label_fraction_are_never_masked(tmp_path):
    rng = random.Random(2)
    lines = ["q,f1,f2,grade"] + [
        f"{row // 5},{rng.random():.3f},{rng.random():.3f},{rng.randint(0, 4)}"
        for row in range(200)
    ]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    data = {"source": "table", "path": str(tmp_path / "r.csv"), "label_fraction": 0.5}
    data["columns"] = {"label": "grade", "group": "q", "features": ["f1", "f2"]}
    run = load_run_data(parse_config(_config(tmp_path, "ranking", data)))
    assert run.transfer.labels.dtype == torch.float32
    assert torch.equal(run.transfer.labels, run.train.labels)  # no -100 anywhere
    assert set(run.transfer.labels.tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert len(run.labeled) < len(run.train)


def test_track_decides_the_label_type(tmp_path):
    (tmp_path / "c.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    data = {"source": "table", "path": str(tmp_path / "c.csv")}
    data["columns"] = {"label": "y", "features": ["x"]}
    binary = load_run_data(parse_config(_config(tmp_path, "ctr", data)))
    assert binary.train.labels.dtype == torch.float32 and binary.train.meta["task"] == "binary"
    classes = load_run_data(parse_config(_config(tmp_path, "classification", data)))
    assert classes.train.labels.dtype == torch.int64 and classes.train.meta["num_classes"] == 2
    with pytest.raises(ConfigError, match=r"data.train: .*task 'ranking' needs groups"):
        load_run_data(parse_config(_config(tmp_path, "ranking", data)))
    (tmp_path / "g.csv").write_text("x,y\n1,0\n2,3\n")
    data["path"] = str(tmp_path / "g.csv")
    with pytest.raises(
        ConfigError,
        match=r"data.train: .*g\.csv: task 'binary' \(CTR\) needs labels in \[0, 1\]; label 3 "
        r"in row 1 .*run.track asks for 'binary' labels",
    ):
        load_run_data(parse_config(_config(tmp_path, "ctr", data)))


def test_stratified_split_keeps_the_click_rate():
    labels = torch.zeros(1000)
    labels[torch.randperm(1000, generator=torch.Generator().manual_seed(0))[:100]] = 1.0
    ds = Dataset(torch.rand(1000, 2), labels)
    parts = split(ds, (0.7, 0.15, 0.15), seed=3, stratify=True)
    # by hand: 100 positives cut at round(70), round(85); 900 negatives at 630, 765
    assert [int(p.labels.sum()) for p in parts] == [70, 15, 15]
    assert [len(p) for p in parts] == [700, 150, 150]
    assert sorted(torch.cat([p.ids for p in parts]).tolist()) == list(range(1000))
    plain = split(ds, (0.7, 0.15, 0.15), seed=3)
    assert [len(p) for p in plain] == [700, 150, 150]
    grouped = Dataset(torch.rand(4, 2), torch.zeros(4), groups=torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="`stratify` needs ungrouped data"):
        split(grouped, (0.5, 0.5), seed=0, stratify=True)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"source": "letor"}, r"data.path: is required when source = 'letor'.*or give `train`"),
        (
            {"source": "letor", "path": "a", "test": "b"},
            r"data.test: cannot go with `path`",
        ),
        ({"name": "digits", "train": "a"}, r"data.train: is not read when source = 'builtin'"),
        (
            {"source": "letor", "path": "a", "split": [0.5, 0.5]},
            r"data.split: must be 3 fractions .*or 2 .*got \[0.5, 0.5\]",
        ),
        (
            {"source": "table", "train": "a", "columns": {"label": "y", "categorical": "c"}},
            r"data.columns.categorical: must be a list of column names",
        ),
    ],
)
def test_data_section_errors(tmp_path, data, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(_config(tmp_path, "ctr", data))


def test_missing_file_unknown_option_and_query_file_option_are_config_errors(tmp_path):
    data = {"source": "letor", "train": str(tmp_path / "nope.txt")}
    with pytest.raises(ConfigError, match=r"data.train: no such file or folder: .*nope\.txt"):
        load_run_data(parse_config(_config(tmp_path, "ranking", data)))
    (tmp_path / "a.txt").write_text("1 qid:1 1:1\n")
    data = {"source": "letor", "path": str(tmp_path / "a.txt"), "options": {"max_idx": 3}}
    with pytest.raises(ConfigError, match=r"data.options: .*unexpected keyword argument 'max_idx'"):
        load_run_data(parse_config(_config(tmp_path, "ranking", data)))
    data = {"source": "letor", "train": str(tmp_path / "a.txt"), "test": str(tmp_path / "a.txt")}
    data["options"] = {"query_file": "a.query"}
    with pytest.raises(ConfigError, match=r"data.options.query_file: names one file's groups"):
        load_run_data(parse_config(_config(tmp_path, "ranking", data)))


def test_cli_exits_2_on_a_bad_valid_file(tmp_path):
    (tmp_path / "train.txt").write_text("1 qid:1 1:1 2:5\n0 qid:1 1:2\n1 qid:2 1:1\n0 qid:2 2:2\n")
    (tmp_path / "valid.txt").write_text("1 qid:3 1:1 2:nan\n")
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[run]
name = "bad"
track = "ranking"
out_dir = "{tmp_path / "runs"}"
[data]
source = "letor"
train = "{tmp_path / "train.txt"}"
valid = "{tmp_path / "valid.txt"}"
[teacher.model]
name = "MLP"
[student.model]
name = "MLP"
[[variants]]
name = "labels"
[variants.objective.labels]
"""
    )
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 2, result.output
    assert "valid.txt:1: features contain 1 NaN/inf value(s), first in row 0" in result.output
    assert not Path(tmp_path / "runs" / "bad").exists()


def test_libsvm_pair_shares_the_train_id_space(tmp_path):
    (tmp_path / "train.svm").write_text("1 3:1 30:0.5\n0 1:1 7:1\n1 2:1\n0 5:2\n")
    (tmp_path / "test.svm").write_text("0 1:1 30:1\n1 2:0.25\n")
    data = {"source": "libsvm", "train": str(tmp_path / "train.svm")}
    data |= {"test": str(tmp_path / "test.svm"), "split": [0.5, 0.5]}
    with pytest.warns(UserWarning, match="AUC on fewer"):
        run = load_run_data(parse_config(_config(tmp_path, "ctr", data)))
    matrix, labels = load_svmlight_file(str(tmp_path / "test.svm"), n_features=31)
    expected = [[int(i) + 1 for i in row.indices] for row in matrix]  # column + 1 = global id
    assert [[i for i in row if i] for row in run.test.features.tolist()] == expected
    assert run.test.num_embeddings == run.train.num_embeddings == 31
    assert run.test.labels.tolist() == labels.tolist()
    (tmp_path / "test.svm").write_text("0 1:1 31:1\n")
    with pytest.raises(ConfigError, match=r"data.test: .*test\.svm: expected at most 30 feature"):
        load_run_data(parse_config(_config(tmp_path, "ctr", data)))


def test_criteo_style_parquet_table_trains_a_wide_and_deep_student(tmp_path):
    rng = random.Random(3)
    n = 300
    columns = {"label": [int(rng.random() < 0.3) for _ in range(n)]}
    columns |= {f"I{k}": [rng.choice([None, 0, 3, 260]) for _ in range(n)] for k in (1, 2)}
    columns |= {
        f"C{k}": [rng.choice(["68fd1e64", "05db9164", None]) for _ in range(n)] for k in (1, 2)
    }
    pq.write_table(pa.table(columns), tmp_path / "criteo.parquet")
    data = {"source": "table", "path": str(tmp_path / "criteo.parquet")}
    data["columns"] = {"label": "label", "features": ["I1", "I2"], "categorical": ["C1", "C2"]}
    data["options"] = {"hash_buckets": 50, "impute": 0.0}  # an empty integer cell counts as 0
    wide = {"name": "WideAndDeep", "kwargs": {"embed_dim": 4, "hidden": [8]}}
    raw = _config(tmp_path, "ctr", data)
    raw |= {"teacher": {"model": wide, "train": {"max_steps": 3}}, "student": {"model": wide}}
    raw["train"] = {"max_steps": 3}
    with pytest.warns(UserWarning, match="AUC on fewer"):
        run = load_run_data(parse_config(raw))
        results = run_experiment(parse_config(raw))
    row = 0  # by hand: ids 1, 2 weighted by I1, I2 (missing -> 0); C1 from 3, C2 from 3 + 51
    i1, i2, c1 = (columns[name][run.train.ids[row]] for name in ("I1", "I2", "C1"))
    assert run.train.features[row, :2].tolist() == [1, 2]
    assert run.train.feature_values[row].tolist() == [i1 or 0, i2 or 0, 1, 1]
    local = 0 if c1 is None else 1 + zlib.crc32(c1.encode()) % 50
    assert run.train.features[row, 2] == 3 + local
    assert run.train.num_embeddings == 1 + 2 + 2 * 51
    assert results["variants"][0]["params"] > 0
