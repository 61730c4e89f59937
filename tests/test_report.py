"""Report: figures from synthetic rows/arrays, a self-contained HTML page, summary.md."""

import base64
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from matplotlib import image as mpimg

from distill._io import write_atomic
from distill.report import (
    Section,
    markdown_table,
    plot_ndcg_bars,
    plot_pair_scatter,
    plot_reliability,
    plot_soft_targets,
    plot_training_curves,
    read_metrics,
    results_rows,
    run_sections,
    write_report,
)

PNG = b"\x89PNG\r\n\x1a\n"


def metric_rows():
    rows = []
    for step in range(0, 50, 5):
        phase = "static" if step < 20 else "dynamic"
        rows.append(
            {"variant": "joint", "step": step, "split": "train", "phase": phase,
             "loss": 1.0 / (step + 1), "loss/teacher": 0.5 / (step + 1), "lr": 0.01}
        )  # fmt: skip
        rows.append({"variant": "joint", "step": step, "split": "valid", "phase": phase,
                     "auc": 0.6 + step / 200})  # fmt: skip
    return rows


def results():
    return {
        "name": "demo-ctr",
        "track": "ctr",
        "metric": "auc",
        "teacher": {"name": "teacher", "metrics": {"auc": 0.81, "nll": 0.42}, "params": 120_000},
        "baseline": "alone",
        "variants": [
            {
                "name": "alone",
                "metrics": {"auc": 0.74},
                "gap_recovered": 0.0,
                "params": 3000,
                "size_bytes": 12_000,
                "wall_time_s": 1.5,
            },
            {
                "name": "joint <dyn>",
                "metrics": {"auc": 0.78, "nll": 0.45},
                "gap_recovered": 0.57,
                "params": 3000,
                "size_bytes": 12_000,
                "wall_time_s": 2.5,
            },
        ],
        "compression": [{"format": "int8", "size_bytes": 3100, "latency_ms": 0.12}],
    }


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.tags, self.tables = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.tables += tag == "table"
        if tag == "img":
            self.images.append(attrs["src"])
        for name in ("href", "src"):
            if name in attrs and tag != "img":
                self.links.append(attrs[name])


@pytest.fixture(scope="module")
def report_paths(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("report")
    generator = np.random.default_rng(0)
    probs = generator.dirichlet(np.ones(4), size=200)
    labels = generator.integers(0, 4, size=200)
    teacher_diff = generator.normal(size=300)
    sections = run_sections(results(), metric_rows())
    sections.append(
        Section(
            "Classification",
            text="Soft targets flatten as T grows.\n\nSecond <paragraph> & more.",
            figures={
                "soft targets": plot_soft_targets(torch.randn(3, 10), temperatures=(1, 4, 20)),
                "reliability": plot_reliability(probs, labels, n_bins=10),
            },
        )
    )
    sections.append(
        Section(
            "Ranking",
            figures={
                "ndcg": plot_ndcg_bars({"labels": {1: 0.6, 10: 0.7}, "L1": {1: 0.66, 10: 0.74}}),
                "pairs": plot_pair_scatter(teacher_diff, teacher_diff + 0.1),
            },
        )
    )
    return write_report(tmp_path / "run", title="Demo <report>", sections=sections)


def test_html_is_self_contained_and_every_image_decodes(report_paths):
    html_path, summary_path = report_paths
    page = html_path.read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(page)
    assert len(parser.images) == 5  # training curves + 4 figures
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == PNG
        assert mpimg.imread(io.BytesIO(data), format="png").ndim == 3
    assert all(link.startswith("#") for link in parser.links)
    assert not re.search(r"https?://|<script|<link|@import", page)
    assert "<title>Demo &lt;report&gt;</title>" in page
    assert "Second &lt;paragraph&gt; &amp; more." in page
    assert parser.tables == 2 and "style" in parser.tags
    assert summary_path.name == "summary.md"


def test_summary_markdown_tables(report_paths):
    _, summary_path = report_paths
    summary = summary_path.read_text()
    assert summary.startswith("# Demo <report>\n")
    assert "| model | auc | nll | gap recovered | params | size (bytes) | time (s) |" in summary
    assert "| joint <dyn> | 0.7800 | 0.4500 | 57% | 3,000 | 12,000 | 2.5000 |" in summary
    assert "| int8 | 3,100 | 0.1200 |" in summary
    assert "## Ranking" not in summary  # figures only: in the HTML, not an empty section


def test_results_rows_put_headline_metric_first():
    rows = results_rows(results())
    assert [row["model"] for row in rows] == ["teacher", "alone", "joint <dyn>"]
    assert list(rows[0])[:3] == ["model", "auc", "nll"]
    assert rows[1]["nll"] is None


def test_markdown_table_against_hand_written():
    text = markdown_table([{"a": 1, "b": "x|y"}, {"a": 2.5, "c": None}])
    assert text == "| a | b | c |\n|---:|---|---|\n| 1 | x\\|y | – |\n| 2.5000 | – | – |\n"


def test_training_curves_mark_the_phase_switch():
    figure = plot_training_curves(metric_rows())
    loss_axes, metric_axes = figure.axes[:2]
    labels = {line.get_label() for line in loss_axes.get_lines()}
    assert {"joint: loss", "joint: loss/teacher"} <= labels and "joint: lr" not in labels
    vertical = [line for line in loss_axes.get_lines() if list(line.get_xdata()) == [20, 20]]
    assert len(vertical) == 1
    assert {line.get_label() for line in metric_axes.get_lines()} >= {"joint: auc"}


def test_training_curves_need_steps():
    with pytest.raises(ValueError, match="metrics row must have a numeric `step`"):
        plot_training_curves([{"split": "train", "loss": 1.0}])


def test_soft_targets_bars_are_tempered_softmax():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    figure = plot_soft_targets(logits, temperatures=(1.0, 4.0))
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    for index, temperature in enumerate((1.0, 4.0)):
        expected = np.exp(logits[0].numpy() / temperature)
        np.testing.assert_allclose(heights[3 * index : 3 * index + 3], expected / expected.sum())


def test_reliability_ece_matches_a_loop():
    generator = np.random.default_rng(1)
    probs = generator.uniform(size=500)
    labels = (generator.uniform(size=500) < probs**2).astype(float)
    figure = plot_reliability(probs, labels, n_bins=5)
    ece = 0.0
    for low in np.arange(5) / 5:
        inside = (probs >= low) & (probs < low + 0.2) if low < 0.8 else probs >= low
        if inside.any():
            ece += inside.sum() / 500 * abs(labels[inside].mean() - probs[inside].mean())
    shown = float(re.search(r"ECE = ([0-9.]+)", figure.axes[0].get_title()).group(1))
    assert shown == pytest.approx(ece, abs=1e-4)


def test_input_checks():
    with pytest.raises(ValueError, match=r"`teacher_logits` must be \(E, C\), got shape \(3,\)"):
        plot_soft_targets(torch.zeros(3))
    with pytest.raises(ValueError, match="`labels` length 2 does not match `probs` length 3"):
        plot_reliability(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"`student_diff` shape \(2,\) does not match"):
        plot_pair_scatter(np.zeros(3), np.zeros(2))


def test_read_metrics_reports_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write_atomic(path, json.dumps({"step": 1}) + "\n\n[1, 2]\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl:3: expected a JSON object"):
        read_metrics(path)
    write_atomic(path, '{"step": 1}\n{"step": 2}\n')
    assert read_metrics(path) == [{"step": 1}, {"step": 2}]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temp file left
