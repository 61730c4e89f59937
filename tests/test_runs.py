"""Run functions: a tiny experiment per track, results.json, reproducible config, data setup."""

import json
import math

import pytest
import torch

from distill.config import ConfigError, load_config, parse_config
from distill.experiment.results import gap_recovered
from distill.experiment.runner import run_experiment, run_student, run_teacher
from distill.experiment.setup import IGNORE_LABEL, build_model, fit_objective, load_run_data
from distill.train import terms


def _classification(tmp_path, **data):
    return {
        "run": {"name": "cls", "track": "classification", "out_dir": str(tmp_path)},
        "data": {"name": "digits", "split": [0.6, 0.2, 0.2], **data},
        "teacher": {
            "model": {"name": "MLP", "kwargs": {"hidden": [32]}},
            "train": {"max_steps": 30, "batch_size": 64, "lr": 0.01},
        },
        "student": {"model": {"name": "MLP", "kwargs": {"hidden": [8]}}},
        "train": {"max_steps": 20, "batch_size": 64, "lr": 0.01},
        "variants": [
            {"name": "labels", "objective": {"labels": {}}},
            {"name": "kd", "transfer": "all", "objective": {"kd": {"temperature": 4.0}}},
        ],
    }


def test_gap_recovered_by_hand():
    assert gap_recovered(0.9, 0.8, 1.0) == pytest.approx(0.5)
    assert gap_recovered(0.7, 0.8, 1.0) == pytest.approx(-0.5)
    assert gap_recovered(0.3, 0.4, 0.2, higher_is_better=False) == pytest.approx(0.5)
    assert gap_recovered(0.9, 0.8, 0.8) is None
    assert gap_recovered(0.9, 0.8, 0.7) is None  # the teacher is worse: no gap to recover
    assert gap_recovered(0.3, 0.2, 0.4, higher_is_better=False) is None
    assert gap_recovered(math.nan, 0.8, 1.0) is None


def test_label_fraction_masks_the_transfer_set(tmp_path):
    cfg = parse_config(_classification(tmp_path, label_fraction=0.1))
    data = load_run_data(cfg)
    assert len(data.train) + len(data.valid) + len(data.test) == 1797
    assert len(data.labeled) == round(0.1 * len(data.train))
    masked = data.transfer.labels == IGNORE_LABEL
    assert int(masked.sum()) == len(data.train) - len(data.labeled)
    kept = ~masked
    assert torch.equal(
        torch.sort(data.transfer.ids[kept]).values, torch.sort(data.labeled.ids).values
    )
    assert torch.equal(data.transfer.labels[kept], data.train.labels[kept])


def test_models_get_their_sizes_from_the_data(tmp_path):
    cfg = parse_config(_classification(tmp_path))
    data = load_run_data(cfg)
    model = build_model(cfg.student.model, data.train, "classification", seed=0, where="s")
    again = build_model(cfg.student.model, data.train, "classification", seed=0, where="s")
    assert torch.equal(model.head.weight, again.head.weight)
    assert model(data.train.features[:3]).shape == (3, 10)
    objective = fit_objective(cfg.variants[1].objective, "classification")
    assert [term.name for term in objective.terms] == ["kd"]


def test_classification_experiment_writes_the_run_folder(tmp_path):
    cfg = parse_config(_classification(tmp_path, label_fraction=0.2))
    results = run_experiment(cfg)
    folder = tmp_path / "cls"
    assert json.loads((folder / "results.json").read_text()) == results
    assert results["name"] == "cls" and results["track"] == "classification"
    assert results["metric"] == "accuracy" and results["baseline"] == "labels"
    assert [row["name"] for row in results["variants"]] == ["labels", "kd"]
    teacher = results["teacher"]["metrics"]["accuracy"]
    baseline = results["variants"][0]["metrics"]["accuracy"]
    for row in results["variants"]:
        assert set(row["metrics"]) == {"accuracy", "nll", "ece"}
        assert row["params"] == 64 * 8 + 8 + 8 * 10 + 10
        assert row["size_bytes"] == 4 * row["params"]
        assert row["wall_time_s"] > 0
        expected = (row["metrics"]["accuracy"] - baseline) / (teacher - baseline)
        assert row["gap_recovered"] == pytest.approx(expected)
    assert load_config(folder / "config.toml") == cfg
    assert (folder / "teacher" / "model.json").is_file()
    assert (folder / "students" / "kd" / "model.safetensors").is_file()
    assert list((folder / "scores" / "train").glob("*.parquet"))
    logged = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert {row["variant"] for row in logged} == {"teacher", "labels", "kd"}


def test_steps_one_at_a_time_update_results(tmp_path):
    raw = _classification(tmp_path)
    raw["variants"] = raw["variants"][:1]
    cfg = parse_config(raw)
    teacher = run_teacher(cfg)
    assert teacher["name"] == "teacher"
    row = run_student(cfg, "labels")
    results = json.loads((tmp_path / "cls" / "results.json").read_text())
    assert results["teacher"] == teacher
    assert results["variants"] == [{**row, "gap_recovered": 0.0}]


def test_ranking_experiment(tmp_path):
    raw = {
        "run": {"name": "rank", "track": "ranking", "out_dir": str(tmp_path)},
        "data": {"name": "synthetic_recommender", "options": {"n_groups": 40}},
        "teacher": {"model": {"name": "MLP"}, "train": {"max_steps": 10, "groups_per_batch": 8}},
        "student": {"model": {"name": "MLP", "kwargs": {"hidden": [4]}}},
        "train": {"max_steps": 10, "groups_per_batch": 8},
        "variants": [
            {"name": "labels", "objective": {"labels": {}}},
            {"name": "l1", "objective": {"pairwise": {"penalty": "absolute"}}},
            {"name": "qr", "objective": {"quantile_heads": {"taus": [0.25, 0.5, 0.75]}}},
            {
                "name": "two_step",
                "objective": {"two_step_median": {"penalty": "log_cosh", "median_steps": 3}},
            },
        ],
    }
    results = run_experiment(parse_config(raw))
    log = (tmp_path / "rank" / "metrics.jsonl").read_text().splitlines()
    median_steps = [json.loads(line)["step"] for line in log if '"two_step.median"' in line]
    assert max(median_steps) == 3  # step 1 ran for median_steps, then the student trained
    assert results["metric"] == "ndcg@10"
    for row in results["variants"]:
        assert set(row["metrics"]) == {"ndcg@10", "mrr", "pair_accuracy"}
        assert row["params"] == 4 * 4 + 4 + 4 + 1  # student sees 4 of 16 features
    assert results["teacher"]["params"] > results["variants"][0]["params"]


def test_pair_bound_from_a_config_trains_and_limits_pairs(tmp_path, monkeypatch):
    largest, real = [], terms.make_pairs

    def spy(*args, **kwargs):
        found = real(*args, **kwargs)
        largest.append(int(torch.bincount(found.group).max()))
        return found

    monkeypatch.setattr(terms, "make_pairs", spy)
    pairwise = {"penalty": "squared", "max_pairs_per_group": 3}
    raw = {
        "run": {"name": "bound", "track": "ranking", "out_dir": str(tmp_path)},
        "data": {"name": "synthetic_recommender", "options": {"n_groups": 40}},
        "teacher": {"model": {"name": "MLP"}, "train": {"max_steps": 5, "groups_per_batch": 8}},
        "student": {"model": {"name": "MLP", "kwargs": {"hidden": [4]}}},
        "train": {"max_steps": 6, "groups_per_batch": 8},
        "variants": [{"name": "l2", "objective": {"pairwise": pairwise}}],
    }
    results = run_experiment(parse_config(raw))
    assert len(largest) == 6 and max(largest) == 3  # every step samples; bigger groups exist
    assert math.isfinite(results["variants"][0]["metrics"]["ndcg@10"])


def test_ctr_experiment_with_joint_model(tmp_path):
    raw = {
        "run": {"name": "ctr", "track": "ctr", "out_dir": str(tmp_path)},
        "data": {"name": "synthetic_ctr", "options": {"n_rows": 1500, "fields": 4}},
        "teacher": {
            "model": {"name": "WideAndDeep", "kwargs": {"hidden": [16]}},
            "train": {"max_steps": 10, "batch_size": 128},
        },
        "student": {"model": {"name": "WideAndDeep", "kwargs": {"hidden": [4]}}},
        "train": {"max_steps": 10, "batch_size": 128, "log_every": 1},
        "variants": [{"name": "alone", "objective": {"labels": {}}}],
        "joint": {"warmup_steps": 4, "teacher_hidden": [16]},
    }
    results = run_experiment(parse_config(raw))
    names = [row["name"] for row in results["variants"]]
    assert names == ["alone", "joint"]
    alone, joint = results["variants"]
    assert joint["params"] == alone["params"]  # the joint student is exported on its own
    assert set(joint["metrics"]) == {"auc", "nll", "ece"}
    logged = [
        json.loads(line) for line in (tmp_path / "ctr" / "metrics.jsonl").read_text().splitlines()
    ]
    phases = {row["phase"] for row in logged if row["variant"] == "joint"}
    assert {"static", "dynamic"} <= phases


def test_saved_teacher_path_and_online_teacher(tmp_path):
    raw = _classification(tmp_path)
    raw["variants"] = raw["variants"][1:]
    first = run_experiment(parse_config(raw))
    raw["run"]["name"] = "again"
    raw["teacher"] = {"path": first["teacher"]["path"]}
    raw["train"]["teacher_mode"] = "online"
    second = run_experiment(parse_config(raw))
    assert second["teacher"]["metrics"] == first["teacher"]["metrics"]
    assert not (tmp_path / "again" / "scores").exists()  # online: no score cache
    assert second["variants"][0]["metrics"] == pytest.approx(first["variants"][0]["metrics"])


def test_missing_teacher_path_is_a_config_error(tmp_path):
    raw = _classification(tmp_path)
    raw["teacher"] = {"path": str(tmp_path / "nowhere")}
    with pytest.raises(ConfigError, match="teacher.path: .*nowhere"):
        run_teacher(parse_config(raw))


def test_table_source_with_column_mapping(tmp_path):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(240, 3, generator=generator)
    labels = (x[:, 0] + 0.3 * torch.randn(240, generator=generator) > 0).long()
    lines = ["a,b,c,query,clicked"] + [
        f"{a:.4f},{b:.4f},{c:.4f},{row // 8},{int(y)}"
        for row, ((a, b, c), y) in enumerate(zip(x.tolist(), labels.tolist(), strict=True))
    ]
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    raw = {
        "run": {"name": "table", "track": "ranking", "out_dir": str(tmp_path)},
        "data": {
            "source": "table",
            "path": str(tmp_path / "table.csv"),
            "columns": {"features": ["a", "b", "c"], "label": "clicked", "group": "query"},
            "student_features": ["a"],
        },
        "teacher": {"model": {"name": "MLP"}, "train": {"max_steps": 5, "groups_per_batch": 4}},
        "student": {"model": {"name": "MLP", "kwargs": {"hidden": [2]}}},
        "train": {"max_steps": 5, "groups_per_batch": 4},
        "variants": [{"name": "l2", "objective": {"pairwise": {}}}],
    }
    data = load_run_data(parse_config(raw))
    assert data.train.feature_names == ["a", "b", "c"]
    assert not set(data.train.groups.tolist()) & set(data.test.groups.tolist())  # groups whole
    results = run_experiment(parse_config(raw))
    assert results["variants"][0]["params"] == 1 * 2 + 2 + 2 + 1


def test_bad_model_kwargs_are_config_errors(tmp_path):
    raw = _classification(tmp_path)
    raw["teacher"]["model"]["kwargs"] = {"hidden": "wide"}
    expected = "teacher.model: cannot build 'MLP' .* `hidden` must be a sequence"
    with pytest.raises(ConfigError, match=expected):
        run_teacher(parse_config(raw))


def test_transfer_set_without_class_labels_needs_a_label_free_objective(tmp_path):
    raw = {
        "run": {"name": "rank", "track": "ranking", "out_dir": str(tmp_path)},
        "data": {
            "name": "synthetic_recommender",
            "options": {"n_groups": 40},
            "label_fraction": 0.25,
        },
        "teacher": {"model": {"name": "MLP"}, "train": {"max_steps": 3, "groups_per_batch": 8}},
        "student": {"model": {"name": "MLP", "kwargs": {"hidden": [4]}}},
        "train": {"max_steps": 3, "groups_per_batch": 8},
        "variants": [
            {"name": "l1", "transfer": "all", "objective": {"pairwise": {"penalty": "absolute"}}},
            {"name": "mixed", "transfer": "all", "objective": {"labels": {}, "pairwise": {}}},
        ],
    }
    cfg = parse_config(raw)
    data = load_run_data(cfg)
    assert len(data.training_rows(cfg.variants[0])) == len(data.train) > len(data.labeled)
    with pytest.raises(ConfigError, match="variants.mixed.transfer: 'all' with"):
        data.training_rows(cfg.variants[1])


def test_a_bad_student_model_fails_before_the_teacher_trains(tmp_path):
    raw = _classification(tmp_path)
    raw["student"]["model"]["kwargs"] = {"hidden": [8], "activation": "sigmoidal"}
    with pytest.raises(ConfigError, match="student.model: .activation. must be one of"):
        run_experiment(parse_config(raw))
    assert not (tmp_path / "cls" / "teacher").exists()


def test_similarity_transform_gets_the_saved_teachers_class_vectors(tmp_path, monkeypatch):
    from distill import teacher_transforms
    from distill.experiment.teacher import saved_teacher

    seen, real = [], teacher_transforms.similarity_targets

    def spy(class_vectors, *args, **kwargs):
        seen.append(class_vectors.clone())
        return real(class_vectors, *args, **kwargs)

    monkeypatch.setattr(teacher_transforms, "similarity_targets", spy)
    raw = _classification(tmp_path)
    similarity = {"name": "similarity", "true_prob": 0.8, "temperature": 0.5}
    raw["variants"] = [{"name": "sim", "objective": {"kd": {"teacher_transform": similarity}}}]
    results = run_experiment(parse_config(raw))
    cfg = parse_config(raw)
    head = saved_teacher(cfg).head.weight.detach()
    assert len(seen) == 20 and all(torch.equal(vectors, head) for vectors in seen)
    assert 0.0 <= results["variants"][0]["metrics"]["accuracy"] <= 1.0
