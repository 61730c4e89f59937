"""Ranking demo: when distillation helps — the demo's ranking config with its reachable ceiling.

Every setting is a ranking run config (``distill.experiment.run_experiment``) run once per seed,
plus ``ceiling`` (the same student fit with squared error to the generator's true clean logits
of every training row, ``extras["clean_logit"]``: the best target any teacher could give it)
and ``truth`` (NDCG@10 of the true clean logits, all features). Settings: the demo's config
(``distill.cli.demo.ranking_config``) and three one-lever contrasts; ``--levers`` adds the
levers table (3 seeds, data seed = run seed, 600 groups) and the signal / label weight / steps
table. Reported: NDCG@10 mean ± std, paired Δ to ``labels`` (seeds with Δ > 0), gap recovered
Δ / (teacher − labels) and "of reachable" Δ / Δ(ceiling), both from the means.

Run: ``python -m benchmarks.ranking_demo [--quick] [--seeds 5] [--levers]``.
"""

from __future__ import annotations

import argparse
import copy
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks import _common
from benchmarks._common import fmt, markdown_table, mean_std, percent
from distill import models
from distill.cli.demo import QR9, ranking_config
from distill.config import Objective, RunConfig, parse_config
from distill.data import Dataset
from distill.experiment import gap_recovered, run_experiment
from distill.experiment import setup as run_setup
from distill.metrics import auc, mrr, ndcg
from distill.train import fit, predict

NAME = "ranking_demo"
TITLE = "Ranking demo: when distillation helps"
REFERENCES = ("teacher", "ceiling", "truth")
METRICS = ("ndcg@10", "mrr", "auc")


class TrueLogits:
    """A teacher source whose scores are the generator's clean logits, looked up by row id."""

    def __init__(self, dataset: Dataset) -> None:
        self.table = torch.zeros(int(dataset.ids.max()) + 1)
        self.table[dataset.ids] = dataset.extras["clean_logit"]

    def predict(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]

    def fingerprint(self) -> str:
        return "synthetic_recommender.clean_logit"


def reachable_ceiling(cfg: RunConfig, data: run_setup.RunData) -> nn.Module:
    """The run's student fit with squared error to the true clean logits of every train row."""
    view, seed = data.student_view(data.train), cfg.run.seed
    model = run_setup.build_model(cfg.student.model, view, "ranking", seed=seed, where="student")
    objective = Objective(pointwise={"penalty": "squared"})
    return fit(
        model,
        data.train,
        objective=run_setup.fit_objective(objective, "ranking"),
        options=run_setup.train_options(cfg.train, cfg, student_features=data.student_features),
        teacher=TrueLogits(data.train),
        valid=data.valid,
    ).model


def scores_metrics(scores: torch.Tensor, data: Dataset) -> dict[str, float]:
    """NDCG@10, MRR and pooled AUC (labels above 0 count as relevant for MRR and AUC)."""
    relevant = (data.labels > 0).float()
    return {
        "ndcg@10": ndcg(scores, data.labels, data.groups, k=10),
        "mrr": mrr(scores, relevant, data.groups),
        "auc": auc(scores, relevant),
    }


def run_setting(raw: dict[str, Any], seed: int, out_dir: Path) -> dict[str, dict[str, float]]:
    """One seed of a ranking config: test metrics of the teacher, every variant, the
    reachable ceiling and the true logits (the last two only with ``clean_logit`` data)."""
    raw = copy.deepcopy(raw)
    raw["run"] |= {"out_dir": str(out_dir), "seed": seed}
    cfg = parse_config(raw, source=f"{NAME}:{raw['run']['name']}")
    results = run_experiment(cfg)
    data = run_setup.load_run_data(cfg)
    test = data.student_view(data.test)
    teacher = models.load(results["teacher"]["path"])
    rows = {"teacher": scores_metrics(predict(teacher, data.test), data.test)}
    for variant in results["variants"]:
        model = models.load(variant["path"])
        rows[variant["name"]] = scores_metrics(predict(model, test), test)
    if "clean_logit" in data.train.extras:
        rows["ceiling"] = scores_metrics(predict(reachable_ceiling(cfg, data), test), test)
        rows["truth"] = scores_metrics(data.test.extras["clean_logit"], data.test)
    return rows


def summarise(per_seed: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Mean ± std per row and metric; paired NDCG@10 Δ to ``labels``, seeds with Δ > 0, gap
    recovered (vs teacher) and share of the ceiling's Δ ("of reachable"), from the means."""
    names = list(per_seed[0])
    part: dict[str, Any] = {}
    for name in names:
        row = {m: mean_std(s[name][m] for s in per_seed) for m in METRICS}
        deltas = [s[name]["ndcg@10"] - s["labels"]["ndcg@10"] for s in per_seed]
        row["delta"] = mean_std(deltas)
        row["positive"] = sum(d > 0 for d in deltas)
        part[name] = row
    base = part["labels"]["ndcg@10"]["mean"]
    reachable = part["ceiling"]["delta"]["mean"] if "ceiling" in part else None
    for row in part.values():
        mean = row["ndcg@10"]["mean"]
        row["gap_recovered"] = gap_recovered(mean, base, part["teacher"]["ndcg@10"]["mean"])
        row["of_reachable"] = None
        if reachable is not None and row is not part["teacher"]:
            row["of_reachable"] = gap_recovered(mean, base, base + reachable)
    students = [n for n in names if n not in REFERENCES]
    part["ranking"] = sorted(students, key=lambda n: -part[n]["ndcg@10"]["mean"])
    part["best"] = next(name for name in part["ranking"] if name != "labels")
    return part


def delta_text(row: dict[str, Any], seeds: int) -> str:
    """``+0.0242 ± 0.0149 (5/5)``: paired Δ to labels and how many seeds are above 0."""
    stats = row["delta"]
    return f"{stats['mean']:+.4f} ± {stats['std']:.4f} ({row['positive']}/{seeds})"


def setting_table(part: dict[str, Any], seeds: int, labels_text: str) -> str:
    """Teacher, labels, every variant best first, the ceiling and the true logits."""
    rows = []
    order = ["teacher", "labels", *(n for n in part["ranking"] if n != "labels"), "ceiling"]
    for name in (n for n in order if n in part):
        row = part[name]
        shown = {"labels": labels_text, "ceiling": "**reachable ceiling**"}.get(name, name)
        delta = "0" if name == "labels" else delta_text(row, seeds)
        gap, reach = percent(row["gap_recovered"]), percent(row["of_reachable"])
        rows.append([shown, fmt(row["ndcg@10"], 1.0, 4), delta, gap, reach])
    if "truth" in part:
        rows.append(["true clean logits (all 16 features)", fmt(part["truth"]["ndcg@10"], 1, 4)])
        rows[-1] += ["", "", ""]
    header = ["row", "NDCG@10", "Δ vs labels (paired, seeds > 0)", "gap recovered", "of reach."]
    return markdown_table(header, rows)


CONTRASTS = {
    "all_labels": "every click labelled (`label_fraction = 1`)",
    "features_4": "student sees 4 of 16 features",
    "teacher_1500": "teacher 1,500 steps instead of 600",
}


def demo_settings(quick: bool) -> dict[str, dict[str, Any]]:
    """The demo's ranking config and its three one-lever contrasts (run configs)."""
    base = ranking_config(quick)
    found = {"demo": base}
    for name in CONTRASTS:
        raw = copy.deepcopy(base)
        raw["run"]["name"] = name
        found[name] = raw
    found["all_labels"]["data"]["label_fraction"] = 1.0
    found["all_labels"]["variants"].append(
        {"name": "labels_w0.1_pointwise", "objective": {"labels": {"weight": 0.1}, "pointwise": {}}}
    )
    found["features_4"]["data"]["options"]["student_features"] = 4
    found["teacher_1500"]["teacher"]["train"]["max_steps"] = 60 if quick else 1500
    return found


def contrast_table(summary: dict[str, Any], seeds: int) -> str:
    """One row per contrast: labels, teacher, best distilled Δ, ceiling Δ, gap recovered."""
    rows = []
    for name, text in CONTRASTS.items():
        part = summary[name]
        best, ceiling = part[part["best"]], part["ceiling"]
        cells = [fmt(part[n]["ndcg@10"], 1.0, 4) for n in ("labels", "teacher")]
        cells += [f"{part['best']} {delta_text(best, seeds)}", delta_text(ceiling, seeds)]
        gaps = f"{percent(best['gap_recovered'])} / {percent(ceiling['gap_recovered'])}"
        rows.append([text, *cells, gaps, percent(best["of_reachable"])])
    header = ["change", "labels", "teacher", "best distilled Δ", "ceiling Δ"]
    return markdown_table([*header, "gap rec. best / ceiling", "best of reach."], rows)


LIGHT_LABELS = {"labels": {"weight": 0.1}}
LEVER_VARIANTS = {
    "labels": ("labeled", {"labels": {}}),
    "labels0.1_pointwise": ("labeled", {**LIGHT_LABELS, "pointwise": {"penalty": "squared"}}),
    "labels0.1_pairwise_l2": ("labeled", {**LIGHT_LABELS, "pairwise": {"penalty": "squared"}}),
    "transfer_pointwise": ("all", {"pointwise": {"penalty": "squared"}}),
    "transfer_pairwise_l2": ("all", {"pairwise": {"penalty": "squared"}}),
}
LEVERS = {  # name: (label fraction, student features, noise scale, student width, text)
    "sf4_lf100": (1.0, 4, 1.0, 16, "old demo: 4/16 features, all labelled"),
    "sf8_lf100": (1.0, 8, 1.0, 16, "8/16, all labelled"),
    "sf4_lf10": (0.1, 4, 1.0, 16, "4/16, 10 % labelled"),
    "sf8_lf10": (0.1, 8, 1.0, 16, "8/16, 10 % labelled"),
    "sf12_lf10": (0.1, 12, 1.0, 16, "12/16, 10 % labelled"),
    "sf8_lf5": (0.05, 8, 1.0, 16, "8/16, 5 % labelled"),
    "sf8_lf10_h64": (0.1, 8, 1.0, 64, "8/16, 10 %, student MLP(64)"),
    "sf4_lf10_ns05": (0.1, 4, 0.5, 16, "4/16, 10 %, noise_scale 0.5"),
}
SIGNAL_VARIANTS = {
    "labels": ("labeled", {"labels": {}}),
    "labelled rows: labels 0.1 + pointwise": LEVER_VARIANTS["labels0.1_pointwise"],
    "labelled rows: labels 1 + pointwise": ("labeled", {"labels": {}, "pointwise": {}}),
    "labelled rows: pointwise only": ("labeled", {"pointwise": {}}),
    "transfer: pointwise, logit": ("all", {"pointwise": {}}),
    "transfer: pointwise, prob": ("all", {"pointwise": {"signal": "prob"}}),
    "transfer: pairwise L2, logit": ("all", {"pairwise": {}}),
    "transfer: pairwise L2, pair_prob": ("all", {"pairwise": {"signal": "pair_prob"}}),
    "transfer: pairwise L1": ("all", {"pairwise": {"penalty": "absolute"}}),
    "transfer: pairwise Huber": ("all", {"pairwise": {"penalty": "huber"}}),
    "transfer: QR-9 affine": ("all", {"quantile_heads": {"taus": QR9, "mode": "affine"}}),
}
SIGNAL_STEPS = (500, 250)


def slug(text: str) -> str:
    """A variant name of :data:`SIGNAL_VARIANTS` as written into the run config."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)


def lever_config(quick: bool, name: str, lever: tuple, steps: int, variants: dict) -> dict:
    """The demo config on 600 groups with one lever set (data seed set per run seed)."""
    fraction, features, noise_scale, width, _ = lever
    raw = ranking_config(quick)
    raw["run"]["name"] = name
    options = raw["data"]["options"]
    options |= {"student_features": features, "noise_scale": noise_scale}
    options["n_groups"] = options["n_groups"] if quick else 600
    raw["data"]["label_fraction"] = fraction
    raw["student"]["model"]["kwargs"]["hidden"] = [width]
    raw["train"]["max_steps"] = min(steps, raw["train"]["max_steps"])
    raw["variants"] = [
        {"name": slug(key), "transfer": rows, "objective": terms}
        for key, (rows, terms) in variants.items()
        if rows == "labeled" or fraction < 1
    ]
    return raw


def lever_settings(quick: bool, table: str) -> dict[str, dict[str, Any]]:
    """The configs of the levers table (500 steps) or of the signal / weight / steps table."""
    if table == "levers":
        return {n: lever_config(quick, n, x, 500, LEVER_VARIANTS) for n, x in LEVERS.items()}
    lever = LEVERS["sf8_lf5"]
    names = {steps: f"signal_{steps}" for steps in SIGNAL_STEPS}
    return {n: lever_config(quick, n, lever, steps, SIGNAL_VARIANTS) for steps, n in names.items()}


def lever_table(summary: dict[str, Any], seeds: int) -> str:
    """Rows: levers; columns: labels, teacher, ceiling NDCG@10 and each variant's Δ."""
    rows = []
    for name, lever in LEVERS.items():
        part = summary[name]
        cells = [fmt(part[n]["ndcg@10"], 1.0, 4) for n in ("labels", "teacher", "ceiling")]
        deltas = [
            delta_text(part[n], seeds) if n in part else "–"
            for n in (*list(LEVER_VARIANTS)[1:], "ceiling")
        ]
        rows.append([lever[-1], *cells, *deltas])
    header = ["setting", "labels", "teacher", "ceiling", "labels 0.1 + pointwise Δ"]
    header += ["labels 0.1 + pairwise L2 Δ", "transfer pointwise Δ", "transfer pairwise L2 Δ"]
    return markdown_table([*header, "ceiling Δ"], rows)


def signal_table(summary: dict[str, Any], seeds: int) -> str:
    """Rows: variants (labels as NDCG@10, the rest as Δ); columns: student steps."""
    parts = [summary[f"signal_{steps}"] for steps in SIGNAL_STEPS]
    rows = [["labels (NDCG@10)", *(fmt(p["labels"]["ndcg@10"], 1.0, 4) for p in parts)]]
    for text in [*list(SIGNAL_VARIANTS)[1:], "ceiling"]:
        name = "ceiling" if text == "ceiling" else slug(text)
        rows.append([text, *(delta_text(p[name], seeds) for p in parts)])
    return markdown_table(["variant", *(f"{s} steps" for s in SIGNAL_STEPS)], rows)


def run_all(settings: dict[str, dict], seeds: int, data_seed: bool) -> dict[str, list[dict]]:
    """Every setting for every seed (settings interleaved per seed), in a temporary folder."""
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="ranking_demo_") as folder:
        for seed in range(seeds):
            for name, raw in settings.items():
                raw = copy.deepcopy(raw)
                if data_seed and raw["data"].get("source", "builtin") == "builtin":
                    raw["data"]["options"]["seed"] = seed
                runs.setdefault(name, []).append(run_setting(raw, seed, Path(folder)))
                print(f"seed {seed} {name}: done", flush=True)
    return runs


def demo_findings(part: dict[str, Any], seeds: int) -> str:
    """Plain-text reading of the demo table: best variant, ceiling, spread of the losses."""
    best = part["best"]
    means = [part[n]["delta"]["mean"] for n in part["ranking"] if n != "labels"]
    ceiling, noise = part["ceiling"], part[best]["delta"]["std"]
    inside = "inside" if max(means) - min(means) < noise else "beyond"
    return f"""- best distilled: `{best}`, Δ {delta_text(part[best], seeds)}, \
{percent(part[best]["gap_recovered"])} of the teacher gap, \
{percent(part[best]["of_reachable"])} of the reachable Δ.
- reachable ceiling Δ {delta_text(ceiling, seeds)}: this student can close at most \
{percent(ceiling["gap_recovered"])} of the teacher–labels gap (true clean logits, all \
features: {part["truth"]["ndcg@10"]["mean"]:.4f}).
- the {len(means)} distillation variants' mean Δ span {min(means):+.4f} … {max(means):+.4f}, \
{inside} one paired std of the best ({noise:.4f})."""


def report(summary: dict[str, Any], args: argparse.Namespace) -> str:
    """The BENCHMARKS.md section body."""
    base = ranking_config(args.quick)
    data, steps = base["data"], (base["teacher"]["train"]["max_steps"], base["train"]["max_steps"])
    fraction = data["label_fraction"]
    body = f"""Question: when does distilling the teacher's scores beat training the student on its
own clicks? The *reachable ceiling* is the same student (same feature columns, MLP, steps and
options) fit with squared error to the generator's **true clean logits of every training
row**: the best target any teacher could give it. "of reach." = Δ / Δ(ceiling) measures the
method; gap recovered = Δ / (teacher − labels) also counts what the student cannot see. Mean ±
std over seeds; Δ = paired difference to `labels` of the same seed (seeds with Δ > 0).

### The demo's ranking config ({args.seeds} run seeds, data seed 0)

`distill.cli.demo.ranking_config`: `synthetic_recommender(n_groups={data["options"]["n_groups"]},
noise="skewed", student_features={data["options"]["student_features"]})`, split 0.6/0.2/0.2,
`label_fraction = {fraction}`, teacher MLP(128, 64) on all training clicks ({steps[0]} steps),
student MLP(16), {steps[1]} steps × 16 groups for every variant; the distillation variants have
no labels term and `transfer = "all"` (they fit the teacher's scores of every training row).

{setting_table(summary["demo"], args.seeds, f"labels (RankNet, {fraction:.0%} of the clicks)")}

{demo_findings(summary["demo"], args.seeds)}

Same config, one lever changed ({args.seeds} seeds each):

{contrast_table(summary, args.seeds)}
"""
    more = "Run with `--levers` for the levers and the signal / weight / steps tables."
    return body + "\n" + (lever_report(summary, args) if args.levers else more)


def lever_report(summary: dict[str, Any], args: argparse.Namespace) -> str:
    """The two exploratory tables of ``--levers``."""
    return f"""### Levers ({args.lever_seeds} seeds; data seed = run seed; 600 groups)

Student MLP(16) unless noted. "labels 0.1 + term" variants train on the labelled rows;
"transfer" variants on all rows with the distillation term alone.

{lever_table(summary, args.lever_seeds)}

Signal, label weight and steps (8/16 features, 5 % labelled, {args.seeds} seeds, Δ vs labels):

{signal_table(summary, args.seeds)}

{lever_reading(summary)}
"""


def lever_reading(summary: dict[str, Any]) -> str:
    """What the two exploratory tables show, with this run's mean Δ."""
    lf5, sig, *full = (
        {n: r["delta"]["mean"] for n, r in summary[k].items() if isinstance(r, dict)}
        for k in ("sf8_lf5", "signal_500", "sf4_lf100", "sf8_lf100")
    )
    most = max(v for rows in full for n, v in rows.items() if n not in REFERENCES)
    trail = sig["transfer_pointwise_logit"] - sig["transfer_pointwise_prob"]
    trail += sig["transfer_pairwise_L2_logit"] - sig["transfer_pairwise_L2_pair_prob"]
    losses = [sig[slug(f"transfer: {n}")] for n in ("pairwise L1", "pairwise Huber", "QR-9 affine")]
    losses.append(sig["transfer_pairwise_L2_logit"])
    return f"""Reading (mean Δ): with every click labelled no variant gains more than {most:.4f}.
At 5 % labelled, 8/16 features: transfer pointwise {lf5["transfer_pointwise"]:+.4f} vs labels 0.1 +
pointwise on the labelled rows only {lf5["labels0.1_pointwise"]:+.4f}, ceiling
{lf5["ceiling"]:+.4f}. `logit` minus `prob` / `pair_prob` targets (500 steps): {trail / 2:+.4f}
on average; pairwise L2, L1, Huber and QR-9 affine span {max(losses) - min(losses):.4f}."""


def extra_options(parser: argparse.ArgumentParser) -> None:
    """``--levers`` and ``--lever-seeds``."""
    parser.add_argument("--levers", action="store_true", help="also the two exploratory tables")
    parser.add_argument("--lever-seeds", type=int, default=3, help="seeds of the levers table")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every setting, write the JSON and the BENCHMARKS.md section; return the summary."""
    args = _common.parse_args(NAME, argv, extra=extra_options)
    torch.set_num_threads(1)
    runs = run_all(demo_settings(args.quick), args.seeds, data_seed=False)
    if args.levers:
        runs |= run_all(lever_settings(args.quick, "levers"), args.lever_seeds, data_seed=True)
        runs |= run_all(lever_settings(args.quick, "signal"), args.seeds, data_seed=True)
    summary = {name: summarise(per_seed) for name, per_seed in runs.items()}
    _common.write_results(NAME, args, {"summary": summary, "per_seed": runs})
    _common.publish(TITLE, report(summary, args), args)
    return summary


if __name__ == "__main__":
    main()
