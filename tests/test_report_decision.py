"""The report that decides: the recommendation rule, its section first in the HTML, one curve
overlay without single-dot panels, NDCG@k in k order, no empty summary sections, latency
claims only outside the noise; a headless-browser screenshot when chromium is installed."""

import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.cli.latency import latency_rows, latency_spread
from distill.config import parse_config, write_config
from distill.experiment.compare import mean_std, paired_difference
from distill.experiment.decide import recommend
from distill.models import MLP
from distill.report import plot_curve_overlay, plot_ndcg_bars, render_markdown
from distill.report.decision import speed_text
from distill.report.html import Section


def _row(name, values, baseline=None, size=100):
    mean, std = mean_std(values)
    return {
        "name": name,
        "metrics": {"auc": mean},
        "std": {"auc": std},
        "per_seed": {"auc": list(values)},
        "params": size // 4,
        "size_bytes": size,
        "paired": None if baseline is None else paired_difference(values, baseline),
    }


def _results(*variants, teacher=(0.9, 0.91, 0.9, 0.92)):
    base = variants[0][1]
    return {
        "track": "ctr",
        "metric": "auc",
        "baseline": variants[0][0],
        "seeds": [0, 1, 2, 3],
        "teacher": _row("teacher", teacher, base, size=4000),
        "variants": [_row(variants[0][0], base)]
        + [_row(name, values, base, size) for name, values, size in variants[1:]],
    }


BASE = ("alone", [0.80, 0.81, 0.79, 0.80])


def test_the_best_clear_winner_is_shipped_and_ties_are_named():
    results = _results(
        BASE,
        ("kd", [0.85, 0.86, 0.84, 0.85], 100),
        ("kd_small", [0.85, 0.855, 0.845, 0.852], 60),  # tied with kd and smaller
        ("noise", [0.81, 0.80, 0.80, 0.80], 100),
    )
    decision = recommend(results)
    assert decision["ship"] == "kd_small" and decision["clear"]
    assert decision["indistinguishable"] == ["kd"]
    assert decision["no_clear_difference"] == ["noise"]
    assert decision["sentence"].startswith("Ship kd_small: auc 0.8505 ± 0.0042 over 4 seeds")


def test_without_a_clear_winner_the_baseline_is_shipped():
    results = _results(BASE, ("noise", [0.81, 0.80, 0.80, 0.79], 100))
    decision = recommend(results)
    assert decision["ship"] == "alone" and not decision["clear"]
    assert "no distilled variant beats it beyond the noise of 4 seeds" in decision["sentence"]
    single = {
        "track": "ctr",
        "metric": "auc",
        "baseline": "alone",
        "variants": [
            {"name": "alone", "metrics": {"auc": 0.8}},
            {"name": "kd", "metrics": {"auc": 0.81}},
        ],
    }
    assert "rerun with --seeds 5" in recommend(single)["sentence"]


def test_speed_is_claimed_only_outside_the_noise():
    teacher = {"median_ms": 1.0, "low_ms": 0.9, "high_ms": 1.2}
    assert speed_text({"median_ms": 0.5, "low_ms": 0.45, "high_ms": 0.6}, teacher) == "2.0× faster"
    overlapping = {"median_ms": 0.95, "low_ms": 0.7, "high_ms": 1.0}
    assert speed_text(overlapping, teacher) == "no clear difference"
    models = {"teacher": MLP(8, (256, 256), 1), "student": MLP(8, (4,), 1)}
    inputs = {name: (np.zeros(0),) for name in models}
    with pytest.raises(ValueError, match="`repeats` must be >= 2 to give a spread, got 1"):
        latency_spread(models, inputs, repeats=1)
    import torch

    measured = latency_spread(models, {n: (torch.randn(16, 8),) for n in models}, repeats=5)
    for entry in measured.values():
        assert entry["low_ms"] <= entry["median_ms"] <= entry["high_ms"]
        assert entry["threads"] == torch.get_num_threads() and entry["repeats"] == 5
    rows = latency_rows(measured, {"teacher": (66_000, 264_000), "student": (40, 160)})
    assert rows[1]["× smaller"] == "1650.0×" and rows[0]["vs teacher"] == "–"


def _valid_rows():
    rows = [{"variant": "teacher", "step": 100, "split": "valid", "auc": 0.9}]
    for seed in (0, 1):
        for step in (10, 20, 30):
            rows.append({"variant": "kd", "seed": seed, "step": step, "split": "valid",
                         "auc": 0.7 + step / 100 + seed / 100})  # fmt: skip
    return rows


def test_overlay_draws_bands_over_seeds_and_no_single_dots():
    figure, notes = plot_curve_overlay(_valid_rows(), metric="auc")
    valid = figure.axes[1]
    assert [line.get_label() for line in valid.get_lines()] == ["kd"]
    np.testing.assert_allclose(valid.get_lines()[0].get_ydata(), [0.805, 0.905, 1.005])
    assert len(valid.collections) == 1  # the band of the two seeds
    assert notes == ["teacher (valid auc: 1 point)"]


def test_ndcg_bars_in_k_order_with_error_bars():
    figure = plot_ndcg_bars(
        {"a": {10: 0.7, 1: 0.5, 5: 0.6}}, errors={"a": {1: 0.01, 5: 0.02, 10: 0.03}}
    )
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["k = 1", "k = 5", "k = 10"]
    assert len(figure.axes[0].containers) >= 3


def test_summary_leaves_out_figure_only_sections():
    figure, _ = plot_curve_overlay(_valid_rows(), metric="auc")
    text = render_markdown(
        "t", [Section("Figures", figures={"f": figure}), Section("Numbers", text="x")]
    )
    assert "## Figures" not in text and "## Numbers\n\nx" in text


class _Sections(HTMLParser):
    def __init__(self):
        super().__init__()
        self.headings, self.first_paragraph, self._in = [], None, None

    def handle_starttag(self, tag, attrs):
        self._in = tag

    def handle_data(self, data):
        if self._in == "h2":
            self.headings.append(data)
        if self._in == "p" and self.first_paragraph is None and self.headings:
            self.first_paragraph = data


def _tiny_run(tmp_path):
    raw = {
        "run": {"name": "rank", "track": "ranking", "out_dir": str(tmp_path), "seeds": [0, 1]},
        "data": {
            "name": "synthetic_recommender",
            "options": {"n_groups": 40, "student_features": 8},
        },
        "teacher": {
            "model": {"name": "MLP", "kwargs": {"hidden": [16]}},
            "train": {"max_steps": 10, "groups_per_batch": 8},
        },
        "student": {"model": {"name": "MLP", "kwargs": {"hidden": [4]}}},
        "train": {"max_steps": 10, "groups_per_batch": 8, "eval_every": 5},
        "variants": [
            {"name": "labels", "objective": {"labels": {}}},
            {"name": "pairwise", "objective": {"pairwise": {}}},
        ],
    }
    config = tmp_path / "rank.toml"
    write_config(parse_config(raw), config)
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    return tmp_path / "rank" / "report.html"


def test_report_opens_with_the_recommendation(tmp_path):
    html_path = _tiny_run(tmp_path)
    page = html_path.read_text()
    parser = _Sections()
    parser.feed(page)
    assert parser.headings[0] == "Recommendation"
    assert re.match(r"(Ship|Best on this one seed)", parser.first_paragraph)
    assert parser.headings.count("Training curves") == 1  # one overlay, not one per model
    assert "Comparison over 2 seeds (ndcg@10)" in page and "speed-up" not in page
    summary = (html_path.parent / "summary.md").read_text()
    assert not re.search(r"^## .*\n\n(?=## |\Z)", summary, flags=re.MULTILINE)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_headless_screenshot_of_the_report(tmp_path):
    html_path = _tiny_run(tmp_path)
    shot = tmp_path / "report.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
         f"--screenshot={shot}", html_path.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
