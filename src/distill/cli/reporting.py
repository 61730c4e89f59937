"""After a run: the compression table of the saved models and the HTML report with figures.

Lives with the CLI (layer 6) because it combines training results (layer 4) with export and
report (layer 5).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill import metrics, models, report, teachers
from distill._io import write_atomic
from distill._progress import ProgressBar
from distill.cli.latency import latency_rows, latency_spread
from distill.config import RunConfig
from distill.data import Dataset
from distill.experiment.decide import recommend
from distill.experiment.metrics import stream_teacher_scores
from distill.experiment.seeds import SEED_FOLDER
from distill.experiment.setup import RunData, load_run_data
from distill.experiment.teacher import given_teacher
from distill.export import compression_table
from distill.ranking import pairs
from distill.train.evaluation import METRIC_FUNCTIONS, predict
from distill.train.streaming import is_stream, predict_stream
from distill.train.terms import main_score

SOFT_TARGET_TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 20.0)
NDCG_CUTOFFS = (1, 5, 10)
REPORT_STEPS = 4
"""Progress steps of the report: compression table, latency, figures, files."""
SAMPLE_ROWS = 4096
"""Test rows of a streamed run kept in memory for the latency measurements."""
STREAMED_NOTE = (
    f"The test split was streamed: the results, curves and figures use the scores of every "
    f"test row, but the features are not kept, so size and latency are measured on the first "
    f"{SAMPLE_ROWS:,} test rows and the compression table has no metric column (the exported "
    "variants are not evaluated on the streamed rows)."
)
"""The report's note on what a streamed run's report leaves out, and why."""


def write_run_report(cfg: RunConfig, results: dict[str, Any], *, repeats: int = 5) -> Path:
    """Add the compression rows and latencies to ``results.json``, then write report.html and
    summary.md.

    The report opens with the recommendation (which student to ship and why), then the
    results, one overlay of every model's curves (bands over seeds), size and latency with
    their spread, and the track's figures. A multi-seed run's models are those of its first
    seed, except NDCG@k, which is averaged over every seed (error bars: std over seeds).

    Returns:
        The path of ``report.html``.
    """
    folder = cfg.run.directory
    with ProgressBar(REPORT_STEPS, "report") as bar:
        data = load_run_data(cfg)
        streamed = is_stream(data.test)
        sample = _in_memory_test(data)
        rows = [results["teacher"], *results["variants"]]
        saved = _saved_models({row["name"]: row["path"] for row in rows}, trust=cfg.teacher.trust)
        metric = None if streamed else cfg.metric
        results["compression"] = _compression_rows(saved, sample, metric, repeats)
        bar.update(1, {"done": "compression table"})
        inputs = {name: _inputs(model, sample) for name, model in saved.items()}
        results["latency"] = latency_spread(saved, inputs)
        write_atomic(folder / "results.json", json.dumps(results, indent=2) + "\n")
        bar.update(2, {"done": "latency"})
        sections = _sections(cfg, results, saved, data)
        if streamed:
            sections.append(report.Section("Streamed data", text=STREAMED_NOTE))
        bar.update(3, {"done": "figures"})
        html, _ = report.write_report(folder, title=f"distill: {cfg.run.name}", sections=sections)
        bar.update(4)
    return html


def _sections(cfg: RunConfig, results, saved, data: RunData) -> list[report.Section]:
    folder = cfg.run.directory
    decision = recommend(results)
    sections = []
    if decision is not None:
        sections.append(
            report.recommendation_section(
                results, decision, results["latency"], results.get("warnings")
            )
        )
    table = {k: v for k, v in results.items() if k != "compression"}
    sections += report.run_sections(table, _metric_rows(folder, results))
    sizes = {name: (row["params"], row["bytes"]) for name, row in _by_name(results["compression"])}
    rows = latency_rows(results["latency"], sizes)
    sections.append(report.Section("Size and latency", tables={"Test-split inputs": rows}))
    best = decision["ship"] if decision else results["baseline"]
    return sections + _track_sections(cfg, saved, data, results, best)


def _by_name(rows: list[dict[str, Any]]):
    return ((row["name"], row) for row in rows)


def _metric_rows(folder: Path, results: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``metrics.jsonl`` rows of the run, or of every seed (each row with its ``seed``)."""
    if "seeds" not in results:
        return report.read_metrics(folder / "metrics.jsonl")
    rows = []
    for seed in results["seeds"]:
        path = folder / SEED_FOLDER.format(seed=seed) / "metrics.jsonl"
        rows += [{**row, "seed": seed} for row in report.read_metrics(path)]
    return rows


def _saved_models(paths: dict[str, Any], *, trust: bool) -> dict[str, torch.nn.Module]:
    """The run's saved modules by name (not a teacher file or score column the user gave)."""
    saved = {name: path for name, path in paths.items() if (Path(path) / "model.json").is_file()}
    return {name: models.load(path, trust=trust) for name, path in saved.items()}


def _inputs(model: torch.nn.Module, data: RunData) -> tuple[torch.Tensor, ...]:
    view = data.view_for(model, data.test)
    values = view.feature_values
    return (view.features,) if values is None else (view.features, values)


def _in_memory_test(data: RunData) -> RunData:
    """``data`` with a test split in memory: a streamed one's first ``SAMPLE_ROWS`` rows."""
    if not is_stream(data.test):
        return data
    return dataclasses.replace(data, test=data.test.head(SAMPLE_ROWS))


def _compression_rows(
    saved, data: RunData, metric: str | None, repeats: int
) -> list[dict[str, Any]]:
    """Size and latency of every saved model, with the run's metric on the test split (no
    metric: ``None``)."""
    inputs = {name: _inputs(model, data) for name, model in saved.items()}
    evaluators = None
    if metric is not None:
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


def _scores(cfg: RunConfig, saved, data: RunData) -> tuple[dict[str, torch.Tensor], Dataset]:
    """Test scores of every model, and the test rows (labels, groups) they are in the order
    of; a teacher that is not a module predicts through its source. A streamed test split is
    read chunk by chunk in file order (every model's scores in the same order)."""
    test = data.test
    if not is_stream(test):
        scores = {name: predict(model, data.view_for(model, test)) for name, model in saved.items()}
        if "teacher" not in scores:
            scores["teacher"] = teachers.predict_dataset(given_teacher(cfg, data), test)
        return scores, test
    scores, rows = {}, None
    for name, model in saved.items():
        scores[name], rows = predict_stream(model, data.view_for(model, test), score=main_score)
    if "teacher" not in scores:
        scores["teacher"], rows = stream_teacher_scores(given_teacher(cfg, data), test)
    return scores, rows


def _track_sections(cfg: RunConfig, saved, data: RunData, results, best) -> list[report.Section]:
    track = cfg.run.track
    if track == "ranking":
        return _ranking_sections(cfg, data, results, best)
    scores, rows = _scores(cfg, saved, data)
    labels = rows.labels
    sections = [_calibration_section(scores, labels, results["baseline"], best, track)]
    if track == "classification":
        soft = report.plot_soft_targets(
            scores["teacher"][:4], temperatures=SOFT_TARGET_TEMPERATURES
        )
        caption = "softmax(v / T) of 4 test digits"
        sections.insert(0, report.Section("Teacher soft targets", figures={caption: soft}))
    return sections


def _calibration_section(scores, labels, baseline, best, track: str) -> report.Section:
    """Reliability diagrams of the baseline and the recommended variant (test split)."""
    shown = dict.fromkeys([baseline, best])
    figures = {}
    for name in shown:
        logits = scores[name]
        probs = torch.softmax(logits, -1) if track == "classification" else torch.sigmoid(logits)
        figures[f"Reliability: {name}"] = report.plot_reliability(probs, labels)
    return report.Section("Calibration", figures=figures)


def _ranking_sections(cfg, data: RunData, results, best) -> list[report.Section]:
    seeds_scores = _seed_scores(cfg, results, data)
    scores, rows = seeds_scores[0]
    groups = rows.groups
    per_seed = [
        {name: _ndcg(value, found.labels, found.groups) for name, value in seed_scores.items()}
        for seed_scores, found in seeds_scores
    ]
    names = list(per_seed[0])
    ndcg = {
        n: {k: float(np.mean([s[n][k] for s in per_seed])) for k in NDCG_CUTOFFS} for n in names
    }
    spread = None
    if len(per_seed) > 1:
        spread = {
            n: {k: float(np.std([s[n][k] for s in per_seed], ddof=1)) for k in NDCG_CUTOFFS}
            for n in names
        }
    left, right, _ = pairs.make_pairs(groups)
    scatter = report.plot_pair_scatter(
        pairs.difference(scores["teacher"], left, right),
        pairs.difference(scores[best], left, right),
        title=f"teacher vs {best}",
    )
    seeds = f"mean over {len(per_seed)} seeds, bars: std" if len(per_seed) > 1 else "one seed"
    bars = report.plot_ndcg_bars(ndcg, errors=spread)
    return [
        report.Section("NDCG@k", figures={f"NDCG@k per model (test; {seeds})": bars}),
        report.Section("Pair differences", figures={f"teacher vs {best}": scatter}),
    ]


def _ndcg(scores, labels, groups) -> dict[int, float]:
    return {k: metrics.ndcg(scores, labels, groups, k=k) for k in NDCG_CUTOFFS}


def _seed_scores(cfg, results, data: RunData) -> list[tuple[dict[str, torch.Tensor], Dataset]]:
    """Test scores of every model and their rows (:func:`_scores`), one per seed (one for a
    single-seed run)."""
    rows = [results["teacher"], *results["variants"]]
    paths = {row["name"]: row.get("paths", [row["path"]]) for row in rows}
    count = len(paths[results["variants"][0]["name"]])
    trust = cfg.teacher.trust
    return [
        _scores(
            cfg, _saved_models({name: found[i] for name, found in paths.items()}, trust=trust), data
        )
        for i in range(count)
    ]
