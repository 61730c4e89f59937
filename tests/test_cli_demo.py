"""`distill demo --quick`: three tracks, three tables, three reports (seconds)."""

from typer.testing import CliRunner

from distill.cli import app
from distill.cli.demo import demo_configs

runner = CliRunner()


def test_demo_quick_prints_three_tables_with_intervals_and_reports(tmp_path):
    result = runner.invoke(app, ["demo", "--quick", "--out", str(tmp_path), "--jobs", "1"])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    for track in ("digits", "recommender", "ctr"):
        assert (tmp_path / "demo" / track / "report.html").is_file()
        assert (tmp_path / "demo" / track / "seed1" / "results.json").is_file()
        assert f"{track} (" in result.stdout and "2 seeds" in result.stdout
    for variant in ("kd_T4", "pairwise_l1", "offline_kd", "joint"):
        assert variant in result.stdout
    assert result.stdout.count("Report: ") == 3
    assert result.stdout.count("Recommendation: ") == 3 and "Δ [95 % CI]" in result.stdout


def test_demo_configs_cover_the_issue_list():
    classification, ranking, ctr = demo_configs(
        quick=False, out_dir="runs", seed=0, every_variant=True
    )
    assert [v.name for v in classification.variants] == [
        "labels",
        "kd_T2",
        "kd_T4",
        "kd_T8",
        "kd_T20",
    ]
    assert classification.data.label_fraction == 0.1
    assert all(v.transfer == "all" for v in classification.variants[1:])
    assert [v.name for v in ranking.variants] == [
        "labels",
        "pointwise",
        "pairwise_l2",
        "pairwise_l1",
        "qr9_affine",
        "pairwise_huber",
    ]
    assert ranking.variants[4].objective.quantile_heads.taus == [i / 10 for i in range(1, 10)]
    assert ctr.joint is not None and ctr.joint.warmup_steps > 0
    assert ctr.data.label_fraction == 0.05  # scarce clicks: the teacher learns from all of them
    offline = ctr.variants[1]
    assert offline.transfer == "all" and not offline.objective.reads_labels
    steps = {cfg.run.name: cfg.train.max_steps for cfg in (classification, ranking, ctr)}
    quick = {c.run.name: c.train.max_steps for c in demo_configs(quick=True, out_dir="r", seed=0)}
    assert all(quick[name] < steps[name] for name in steps)
    shown = demo_configs(quick=False, out_dir="runs", seed=3, seeds=5)
    assert [[v.name for v in cfg.variants] for cfg in shown] == [
        ["labels", "kd_T4"],
        ["labels", "pairwise_l1"],
        ["student_alone", "offline_kd"],
    ]
    assert all(cfg.run.seeds == [3, 4, 5, 6, 7] and cfg.split_seed == 3 for cfg in shown)
