"""Multi-seed runs: paired t-intervals and Fieller's interval against independent oracles,
one data split over seeds, the combined results.json, the screen table and export."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from typer.testing import CliRunner

from distill.cli import app
from distill.config import ConfigError, load_config, parse_config, write_config
from distill.experiment.checks import run_warnings
from distill.experiment.compare import (
    gap_recovered_over_seeds,
    mean_std,
    paired_difference,
    ratio_interval,
)
from distill.experiment.runner import run_experiment
from distill.experiment.seeds import seed_configs, with_seeds
from distill.experiment.setup import fit_objective, load_run_data
from test_runs import _classification as runs_config  # the same tiny digits run


def _classification(tmp_path, **run):
    """test_runs' tiny digits config with 20 % of the labels and extra ``run`` keys."""
    raw = runs_config(tmp_path, label_fraction=0.2)
    raw["run"] |= run
    return raw


def test_paired_interval_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    values, baseline = rng.normal(0.8, 0.02, 7), rng.normal(0.79, 0.02, 7)
    result = paired_difference(values, baseline)
    d = [v - b for v, b in zip(values, baseline, strict=True)]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    half = stats.t.ppf(0.975, len(d) - 1) * sd / math.sqrt(len(d))
    assert result["delta"] == pytest.approx(mean)
    assert result["ci"] == pytest.approx([mean - half, mean + half])
    assert result["wins"] == sum(x > 0 for x in d) and result["n"] == 7
    assert result["clear"] == (mean - half > 0 or mean + half < 0)


def test_paired_difference_edge_cases():
    assert paired_difference([2.0, 3.0], [1.0, 2.0])["ci"] == [1.0, 1.0]  # no spread
    one = paired_difference([0.9], [0.8])
    assert one["ci"] is None and not one["clear"] and one["wins"] == 1
    lower = paired_difference([0.1, 0.2, 0.15], [0.3, 0.35, 0.32], higher_is_better=False)
    assert lower["wins"] == 3 and lower["delta"] < 0 and lower["clear"]
    assert math.isnan(mean_std([1.0])[1]) and mean_std([1.0, 3.0]) == (2.0, math.sqrt(2))
    with pytest.raises(ValueError, match="`values` has 2 seeds but `baseline` has 3"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"`values` must be finite, got \[1.0, nan\]"):
        paired_difference([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([1.0, 2.0], [1.0, 2.0], confidence=1.5)


def _fieller_statistic(rho, x, y):
    n = len(x)
    cov = np.cov(x, y, ddof=1) / n
    spread = cov[0, 0] - 2 * rho * cov[0, 1] + rho**2 * cov[1, 1]
    return (x.mean() - rho * y.mean()) / math.sqrt(spread)


def test_fieller_interval_endpoints_solve_the_t_test():
    rng = np.random.default_rng(1)
    y = rng.normal(0.05, 0.01, 6)
    x = 0.6 * y + rng.normal(0, 0.005, 6)
    low, high = ratio_interval(x, y)
    t = stats.t.ppf(0.975, 5)
    estimate = x.mean() / y.mean()
    below = optimize.brentq(lambda r: _fieller_statistic(r, x, y) - t, estimate - 10, estimate)
    above = optimize.brentq(lambda r: _fieller_statistic(r, x, y) + t, estimate, estimate + 10)
    assert [low, high] == pytest.approx([below, above], rel=1e-6)
    assert abs(_fieller_statistic(estimate, x, y)) < t


def test_gap_recovered_over_seeds_is_a_ratio_of_mean_gaps():
    teacher, baseline = [0.9, 0.92, 0.91, 0.93], [0.8, 0.81, 0.79, 0.8]
    values = [0.86, 0.85, 0.86, 0.87]
    ratio, interval = gap_recovered_over_seeds(values, baseline, teacher)
    gaps = [t - b for t, b in zip(teacher, baseline, strict=True)]
    recovered = [v - b for v, b in zip(values, baseline, strict=True)]
    assert ratio == pytest.approx(sum(recovered) / sum(gaps))
    assert interval[0] < ratio < interval[1]
    assert gap_recovered_over_seeds(values, baseline, baseline) == (None, None)
    noisy_teacher = [0.9, 0.7, 0.85, 0.76]  # the teacher's edge is inside the noise
    assert gap_recovered_over_seeds(values, baseline, noisy_teacher)[1] is None


def test_seeds_in_the_config_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"run.seeds: must be distinct, got \[1, 1\]"):
        parse_config(_classification(tmp_path, seeds=[1, 1]))
    with pytest.raises(ConfigError, match="run.seeds"):
        parse_config(_classification(tmp_path, seeds=[]))
    cfg = with_seeds(parse_config(_classification(tmp_path, seed=3)), 2)
    assert cfg.run.seeds == [3, 4] and cfg.split_seed == 3
    configs = seed_configs(cfg)
    assert [(c.run.name, c.run.seed, c.split_seed) for c in configs] == [
        ("seed3", 3, 3),
        ("seed4", 4, 3),
    ]
    assert all(c.run.directory == tmp_path / "cls" / c.run.name for c in configs)
    first, second = (load_run_data(c) for c in configs)
    assert first.test.ids.tolist() == second.test.ids.tolist()
    assert first.labeled.ids.tolist() == second.labeled.ids.tolist()


def test_a_seeds_run_combines_seed_folders_and_keeps_single_seed_results(tmp_path):
    cfg = parse_config(_classification(tmp_path / "multi", seeds=[0, 1]))
    results = run_experiment(cfg)
    folder = tmp_path / "multi" / "cls"
    assert json.loads((folder / "results.json").read_text()) == results
    assert results["seeds"] == [0, 1] and results["split_seed"] == 0
    per_seed = [json.loads((folder / f"seed{s}" / "results.json").read_text()) for s in (0, 1)]
    single = run_experiment(parse_config(_classification(tmp_path / "single")))
    metrics = [[row["metrics"] for row in r["variants"]] for r in (per_seed[0], single)]
    assert metrics[0] == metrics[1]  # split_seed defaults to run.seed: seed 0 is the single run
    assert per_seed[0]["teacher"]["metrics"] == single["teacher"]["metrics"]
    kd, labels = results["variants"][1], results["variants"][0]
    accuracy = [r["variants"][1]["metrics"]["accuracy"] for r in per_seed]
    base = [r["variants"][0]["metrics"]["accuracy"] for r in per_seed]
    assert kd["per_seed"]["accuracy"] == accuracy
    assert kd["metrics"]["accuracy"] == pytest.approx(np.mean(accuracy))
    assert kd["std"]["accuracy"] == pytest.approx(np.std(accuracy, ddof=1))
    assert kd["paired"] == paired_difference(accuracy, base) and labels["paired"] is None
    assert kd["path"] == str(folder / "seed0" / "students" / "kd")
    assert load_config(folder / "config.toml").data.split_seed == 0
    assert load_config(folder / "seed1" / "config.toml").run.seed == 1


def test_cli_seeds_prints_intervals_and_exports_the_first_seed(tmp_path):
    runner = CliRunner()
    config = tmp_path / "cls.toml"
    write_config(parse_config(_classification(tmp_path)), config)
    result = runner.invoke(app, ["run", str(config), "--seeds", "2", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "cls (classification; 2 seeds; baseline: labels)" in result.output
    assert "/2 seeds" in result.output and "±" in result.output
    out = tmp_path / "exported"
    result = runner.invoke(app, ["export", str(tmp_path / "cls"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    exports = json.loads((out / "export.json").read_text())["exports"]
    assert {name.split("/")[0] for name in exports} == {"labels", "kd"}


def _ctr(tmp_path, **binary_kd):
    return parse_config(
        {
            "run": {"name": "ctr", "track": "ctr", "out_dir": str(tmp_path)},
            "data": {"name": "synthetic_ctr", "options": {"n_rows": 1500, "fields": 4}},
            "teacher": {"model": {"name": "WideAndDeep", "kwargs": {"hidden": [16]}}},
            "student": {"model": {"name": "WideAndDeep", "kwargs": {"hidden": [4]}}},
            "variants": [
                {"name": "alone", "objective": {"labels": {}}},
                {"name": "kd", "objective": {"binary_kd": binary_kd}},
            ],
        }
    )


def _row(name, params=100, **metrics):
    return {"name": name, "params": params, "metrics": metrics}


def test_warnings_name_each_problem(tmp_path):
    cfg = _ctr(tmp_path, temperature=4.0)
    results = {
        "track": "ctr",
        "metric": "auc",
        "baseline": "alone",
        "teacher": _row("teacher", 100, auc=0.70, nll=0.5, ece=0.01),
        "variants": [
            _row("alone", 50, auc=0.71, nll=0.5, ece=0.01),
            _row("kd", 120, auc=0.72, nll=0.61, ece=0.073),
        ],
    }
    labels = torch.tensor([1.0] * 60 + [0.0] * 900)
    found = run_warnings(cfg, results, labels)
    assert len(found) == 4
    assert found[0].startswith("the teacher is no better than the baseline alone (auc 0.7000 vs")
    assert "60 positive labels (fewer than 100)" in found[1]
    assert found[2].startswith("student kd (120 parameters) is not smaller than the teacher (100)")
    assert "T = 4 without temper_student" in found[3]
    assert "log loss 0.6100 vs 0.5000 of alone, ECE 0.0730 vs 0.0100" in found[3]
    tempered = _ctr(tmp_path, temperature=4.0, temper_student=True)
    results["teacher"]["metrics"]["auc"] = 0.9
    results["variants"][1]["params"] = 50
    assert run_warnings(tempered, results, torch.ones(200)) == []
    objective = fit_objective(tempered.variants[1].objective, "ctr")
    assert objective.terms[0].temper_student and objective.terms[0].temperature == 4.0


def test_seed_warnings_read_the_intervals(tmp_path):
    cfg = _ctr(tmp_path)
    noisy = paired_difference([0.70, 0.74, 0.69], [0.71, 0.72, 0.70])
    results = {
        "track": "ctr",
        "metric": "auc",
        "baseline": "alone",
        "teacher": {
            **_row("teacher", 200, auc=0.73, nll=0.5, ece=0.01),
            "paired": paired_difference([0.70, 0.76, 0.73], [0.71, 0.72, 0.70]),
        },
        "variants": [
            {**_row("alone", auc=0.71, nll=0.5, ece=0.01), "paired": None},
            {**_row("kd", auc=0.71, nll=0.5, ece=0.01), "paired": noisy},
        ],
    }
    found = run_warnings(cfg, results, torch.ones(500))
    assert len(found) == 2
    assert "teacher's edge over the baseline alone is within the seed noise" in found[0]
    width = (noisy["ci"][1] - noisy["ci"][0]) / 2
    assert f"intervals (± up to {width:.4f}) are wider than the differences" in found[1]


def test_ctr_run_shows_calibration_and_warnings(tmp_path):
    cfg = _ctr(tmp_path, temperature=3.0)
    config = tmp_path / "ctr.toml"
    write_config(cfg, config)
    small = ["--set", "teacher.train.max_steps=5", "--set", "train.max_steps=5"]
    result = CliRunner().invoke(app, ["run", str(config), "--no-report", *small])
    assert result.exit_code == 0, result.output
    assert "nll" in result.output and "ece" in result.output
    assert "warning: variant kd: binary KD at T = 3 without temper_student" in " ".join(
        result.output.split()
    )
    results = json.loads((tmp_path / "ctr" / "results.json").read_text())
    assert any("temper_student" in warning for warning in results["warnings"])


def test_the_joint_student_starts_from_the_variants_initial_student(tmp_path):
    from distill.experiment.setup import build_joint_model, build_model

    raw = _ctr(tmp_path).model_dump(mode="json", exclude_none=True)
    raw["joint"] = {"teacher_hidden": [8]}
    raw["run"]["seed"] = 7
    cfg = parse_config(raw)
    data = load_run_data(cfg)
    joint = build_joint_model(cfg, data.train)
    alone = build_model(cfg.student.model, data.train, "ctr", seed=7, where="student.model")
    expected = alone.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in joint.student().state_dict().items())
