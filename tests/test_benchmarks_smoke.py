"""Smoke tests: every benchmark of issue 8 runs end to end in its ``--quick`` form.

They keep the modules from rotting; the numbers themselves are not checked here (speed targets
never go in unit tests). Each run writes into a temporary results folder, never into
``benchmarks/results`` or ``BENCHMARKS.md``.
"""

import json
import math

import pytest
from benchmarks import (
    _common,
    distill_overhead,
    intermediate,
    joint_model,
    ranking_demo,
    ranking_quality,
    scaling,
    soft_targets,
    temperature_sweep,
    vs_torchdistill,
)


def run_quick(module, tmp_path, *extra):
    markdown = tmp_path / "BENCHMARKS.md"
    module.main(["--quick", "--results-dir", str(tmp_path), "--markdown", str(markdown), *extra])
    document = json.loads((tmp_path / f"{module.NAME}.json").read_text())
    assert document["quick"] is True
    assert document["machine"]["cpu_count"] >= 1
    assert not markdown.exists()  # --quick never touches the Markdown file
    return document


def test_soft_targets_quick(tmp_path):
    document = run_quick(soft_targets, tmp_path, "--seeds", "1")
    part = document["summary"]["0.1"]
    assert part["best_kd"] in part["settings"]
    assert 0.0 <= part["settings"]["hard"]["test"]["mean"] <= 1.0


def test_temperature_sweep_quick(tmp_path):
    document = run_quick(temperature_sweep, tmp_path, "--seeds", "2")
    assert set(document["summary"]) == {"classification", "ctr_0.1"}
    part = document["summary"]["ctr_0.1"]
    assert part["best_T_auc"] in part["tied_auc"]
    assert part["hard, longer"]["auc_vs_hard"]["n"] == 2
    first = document["per_seed"]["ctr_0.1"][0]
    assert 0.0 < first["4"]["best_step_share"] <= 1.0


def sweep_summary(ties_per_rate, metric="auc"):
    """A CTR summary whose best T is the first of each rate's ties."""
    return {
        f"ctr_{rate:g}": {f"best_T_{metric}": ties[0], f"tied_{metric}": ties}
        for rate, ties in zip(temperature_sweep.CLICK_RATES, ties_per_rate, strict=True)
    }


def test_temperature_sweep_guidance_verdicts():
    rates = temperature_sweep.CLICK_RATES  # 0.02, 0.1, 0.3
    verdict = temperature_sweep.guidance
    assert verdict(sweep_summary([["20"], ["4"], ["1"]]), rates, "auc") == "holds"
    assert verdict(sweep_summary([["1"], ["4"], ["20"]]), rates, "auc") == "does not hold"
    same = verdict(sweep_summary([["8"], ["8"], ["8"]]), rates, "auc")
    assert same.startswith("does not hold (T = 8 is the best")
    tied = verdict(sweep_summary([["20", "8"], ["8", "4"], ["2", "8"]]), rates, "auc")
    assert tied.startswith("not distinguishable (T = 8 within noise")


def test_ranking_quality_quick_with_letor_folder(tmp_path):
    folder = tmp_path / "fold"
    folder.mkdir()
    for name, queries in (("train.txt", range(6)), ("vali.txt", range(6, 9))):
        (folder / name).write_text(letor_lines(queries))
    (folder / "test.txt").write_text(letor_lines(range(9, 12)))
    document = run_quick(ranking_quality, tmp_path, "--seeds", "1", "--letor", str(folder))
    assert set(document["summary"]) == {"synthetic-normal", "synthetic-skewed", "letor"}
    assert document["summary"]["letor"]["ranking"][0] in ranking_quality.QUICK_VARIANTS


def test_ranking_demo_quick(tmp_path):
    document = run_quick(ranking_demo, tmp_path, "--seeds", "1", "--levers", "--lever-seeds", "1")
    summary = document["summary"]
    assert {"demo", "all_labels", "features_4", "teacher_1500", "sf8_lf5", "signal_500"} <= set(
        summary
    )
    assert "ceiling" in summary["demo"]


def letor_lines(queries) -> str:
    lines = []
    for query in queries:
        for item in range(5):
            grade = (query + item) % 3
            features = " ".join(f"{k}:{(query * 7 + item * k) % 5 / 4:.2f}" for k in range(1, 5))
            lines.append(f"{grade} qid:{query} {features}")
    return "\n".join(lines) + "\n"


def test_joint_model_quick(tmp_path):
    document = run_quick(joint_model, tmp_path, "--seeds", "1")
    summary = document["summary"]
    assert {"student alone", "teacher alone", *joint_model.VARIANTS} < set(summary)
    assert len(joint_model.VARIANTS) == 4 * len(joint_model.SETTINGS)
    for name in joint_model.VARIANTS:
        assert 0.0 <= summary[name]["auc"]["mean"] <= 1.0


def test_distill_overhead_quick(tmp_path):
    document = run_quick(distill_overhead, tmp_path)
    for part in document["results"].values():
        assert set(part["ratios"]) == set(distill_overhead.TARGETS)


def test_vs_torchdistill_quick(tmp_path):
    document = run_quick(vs_torchdistill, tmp_path)
    assert "ratio" in document or "skipped" in document


def test_scaling_quick(tmp_path):
    document = run_quick(scaling, tmp_path)
    assert document["groups"] and document["group_size"]


def test_mean_std_and_percent():
    stats = _common.mean_std([1.0, 2.0, 3.0, math.nan, None])
    assert stats == {"mean": 2.0, "std": 1.0, "n": 3}
    assert _common.percent(0.876) == "88%"
    assert _common.percent(None) == "–"


def test_replace_section_keeps_other_sections(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## A\n\nold a\n\n## B\n\nkeep b\n")
    _common.replace_section(path, "A", "## A\n\nnew a\n")
    _common.replace_section(path, "C", "## C\n\nnew c\n")
    assert path.read_text() == "# Benchmarks\n\n## A\n\nnew a\n\n## B\n\nkeep b\n\n## C\n\nnew c\n"


def test_time_interleaved_runs_round_robin():
    calls = []
    times = _common.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=2, warmup=1
    )
    assert calls == ["a", "b"] * 3
    assert len(times["a"]["times_s"]) == 2


@pytest.mark.slow
def test_startup_quick(tmp_path):
    from benchmarks import startup

    document = run_quick(startup, tmp_path)
    assert set(document["help_over_torch_s"]) == {"this tree"}
    assert document["report_figures"]["this tree"]["bytes"] > 0


def test_pair_sums_speed_quick(tmp_path):
    from benchmarks import pair_sums_speed

    document = run_quick(pair_sums_speed, tmp_path)
    assert {row["pairs"] for row in document["mslr"]} == {"all", "unequal"}
    assert all(row["max_rel_difference_f64"] < 1e-8 for row in document["mslr"])
    assert document["big"]["items"] == 2_000


def test_fit_overhead_quick(tmp_path):
    from benchmarks import fit_overhead

    document = run_quick(fit_overhead, tmp_path)
    for part in document["results"].values():
        assert max(part["max_weight_difference"].values()) < 1e-5
        assert set(part["ratios"]) == {"plain", "offline KD"}


def test_intermediate_quick(tmp_path):
    document = run_quick(intermediate, tmp_path, "--seeds", "2")
    family = document["families"][0]
    assert family["family"] == "our transformer" and len(family["per_seed"]) == 2
    summary = family["summary"]
    assert summary["labels"]["vs_labels"]["mean"] == 0.0
    diffs = [row["logits KD"] - row["labels"] for row in family["per_seed"]]
    assert summary["logits KD"]["vs_labels"]["mean"] == pytest.approx(sum(diffs) / 2)
    low, high = summary["logits KD"]["vs_labels"]["ci95"]
    assert low <= sum(diffs) / 2 <= high


@pytest.mark.slow
def test_listwise_quality_quick(tmp_path):
    from benchmarks import listwise_quality

    document = run_quick(listwise_quality, tmp_path, "--seeds", "1")
    part = document["summary"]["synthetic-normal"]
    assert set(part) == {"teacher", *listwise_quality.VARIANTS}
    assert part["pairwise_l2"]["vs_pairwise_l2"]["mean"] == 0.0


@pytest.mark.slow
def test_tang_transforms_quick(tmp_path):
    from benchmarks import tang_transforms

    document = run_quick(tang_transforms, tmp_path, "--seeds", "2")
    summary = document["summary"]
    assert set(summary["order"]) == {
        "kd − reweight",
        "reweight − similarity",
        "similarity − label_smoothing",
        "label_smoothing − labels",
    }
    assert summary["accuracy"]["top_10"] == summary["accuracy"]["kd"]
    assert sum(b["n"] for b in summary["rescaling_bins"]) > 0


@pytest.mark.slow
def test_specialists_quick(tmp_path):
    from benchmarks import specialists

    document = run_quick(specialists, tmp_path, "--seeds", "1")
    accuracy = document["summary"]["accuracy"]
    assert set(accuracy) == set(specialists.ROWS)
    assert all(0.0 <= row["mean"] <= 1.0 for row in accuracy.values())


@pytest.mark.slow
def test_synthetic_transfer_quick(tmp_path):
    from benchmarks import synthetic_transfer

    document = run_quick(synthetic_transfer, tmp_path, "--seeds", "1")
    summary = document["summary"]
    assert set(summary["vs_kd_10"]) == {f"KD 10 % + {n}" for n in synthetic_transfer.GENERATORS}
    assert summary["gap_recovered"]["hard 10 %"] in (0.0, None)


@pytest.mark.slow
def test_joint_gate_quick(tmp_path):
    from benchmarks import joint_gate

    document = run_quick(joint_gate, tmp_path, "--seeds", "1")
    summary = document["summary"]
    assert set(summary["vs_switch"]) == set(joint_gate.VARIANTS)
    assert summary["vs_switch"]["hard switch"]["mean"] == 0.0
