"""After a run: the compression table of the saved models and the HTML report with figures.

Lives with the CLI (layer 6) because it combines training results (layer 4) with export and
report (layer 5).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from distill import metrics, models, report, teachers
from distill.config import RunConfig
from distill.experiment.setup import RunData, load_run_data
from distill.experiment.teacher import given_teacher
from distill.export import compression_table
from distill.ranking import pairs
from distill.train.evaluation import METRIC_FUNCTIONS, predict

SOFT_TARGET_TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 20.0)
NDCG_CUTOFFS = (1, 5, 10)


def write_run_report(cfg: RunConfig, results: dict[str, Any], *, repeats: int = 5) -> Path:
    """Add the compression rows to ``results.json``, then write report.html and summary.md.

    Returns:
        The path of ``report.html``.
    """
    folder = cfg.run.directory
    data = load_run_data(cfg)
    saved = _saved_models(results, trust=cfg.teacher.trust)
    results["compression"] = _compression_rows(saved, data, cfg.metric, repeats)
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    sections = report.run_sections(results, report.read_metrics(folder / "metrics.jsonl"))
    sections += _track_sections(cfg, saved, data, results)
    html, _ = report.write_report(folder, title=f"distill: {cfg.run.name}", sections=sections)
    return html


def _saved_models(results: dict[str, Any], *, trust: bool) -> dict[str, torch.nn.Module]:
    """The run's saved modules (not a teacher file or score column the user gave)."""
    rows = [results["teacher"], *results["variants"]]
    saved = [row for row in rows if (Path(row["path"]) / "model.json").is_file()]
    return {row["name"]: models.load(row["path"], trust=trust) for row in saved}


def _inputs(model: torch.nn.Module, data: RunData) -> tuple[torch.Tensor, ...]:
    view = data.view_for(model, data.test)
    values = view.feature_values
    return (view.features,) if values is None else (view.features, values)


def _compression_rows(saved, data: RunData, metric: str, repeats: int) -> list[dict[str, Any]]:
    """Size and latency of every saved model, with the run's metric on the test split."""
    inputs = {name: _inputs(model, data) for name, model in saved.items()}
    evaluators = {
        name: _evaluator(metric, inputs[name], data.view_for(model, data.test))
        for name, model in saved.items()
    }
    rows = compression_table(saved, example_input=inputs, evaluate=evaluators, repeats=repeats)
    return [dataclasses.asdict(row) for row in rows]


def _evaluator(metric: str, inputs, dataset):
    def evaluate(predict) -> float:
        return METRIC_FUNCTIONS[metric](predict(*inputs), dataset)

    return evaluate


def _scores(cfg: RunConfig, saved, data: RunData) -> dict[str, torch.Tensor]:
    """Test scores of every model; a teacher that is not a module predicts through its source."""
    scores = {
        name: predict(model, data.view_for(model, data.test)) for name, model in saved.items()
    }
    if "teacher" not in scores:
        scores["teacher"] = teachers.predict_dataset(given_teacher(cfg, data), data.test)
    return scores


def _track_sections(cfg: RunConfig, saved, data: RunData, results) -> list[report.Section]:
    track = cfg.run.track
    scores = _scores(cfg, saved, data)
    labels = data.test.labels
    if track == "ranking":
        return _ranking_sections(scores, labels, data.test.groups, results)
    sections = [_calibration_section(scores, labels, results, track)]
    if track == "classification":
        soft = report.plot_soft_targets(
            scores["teacher"][:4], temperatures=SOFT_TARGET_TEMPERATURES
        )
        caption = "softmax(v / T) of 4 test digits"
        sections.insert(0, report.Section("Teacher soft targets", figures={caption: soft}))
    return sections


def _calibration_section(scores, labels, results, track: str) -> report.Section:
    """Reliability diagrams of the baseline and the best variant (test split)."""
    shown = dict.fromkeys([results["baseline"], _best_variant(results)])
    figures = {}
    for name in shown:
        logits = scores[name]
        probs = torch.softmax(logits, -1) if track == "classification" else torch.sigmoid(logits)
        figures[f"Reliability: {name}"] = report.plot_reliability(probs, labels)
    return report.Section("Calibration", figures=figures)


def _best_variant(results) -> str:
    metric = results["metric"]
    return max(results["variants"], key=lambda row: row["metrics"][metric])["name"]


def _ranking_sections(scores, labels, groups, results) -> list[report.Section]:
    ndcg = {
        name: {k: metrics.ndcg(value, labels, groups, k=k) for k in NDCG_CUTOFFS}
        for name, value in scores.items()
    }
    best = _best_variant(results)
    left, right, _ = pairs.make_pairs(groups)
    scatter = report.plot_pair_scatter(
        pairs.difference(scores["teacher"], left, right),
        pairs.difference(scores[best], left, right),
        title=f"teacher vs {best}",
    )
    return [
        report.Section("NDCG@k", figures={"NDCG@k per model (test)": report.plot_ndcg_bars(ndcg)}),
        report.Section("Pair differences", figures={f"teacher vs {best}": scatter}),
    ]
