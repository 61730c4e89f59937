"""Issue 8 item 4: the CTR joint model — student alone vs static-only vs static → dynamic.

Data: ``synthetic_ctr`` (sparse ids, rare clicks; a deep model beats a wide one). The served
student is always the same Wide & Deep network. Variants:

Each KD variant runs with (W, T) = (0.5, 1) and (0.9, 2):

- ``student alone``: the student with click labels only (BCE);
- ``static (offline)``: the student with fixed teacher labels, read from a score cache of a
  separately trained deep teacher (``distill.teachers.score`` / ``CachedScores``);
- ``joint, static only``: the joint model (shared embedding, deep teacher tower, student tower;
  ``distill.train.joint.JointObjective``) whose student learns from the cached labels all along;
- ``joint, dynamic only``: the joint model from the concurrent teacher tower from step 1;
- ``joint, static → dynamic``: cached labels for the first 30 % of steps, then the concurrent
  teacher tower (the seed's schedule).

Run: ``python -m benchmarks.joint_model [--quick] [--seeds 5]``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import (
    fmt,
    markdown_table,
    mean_std,
    parse_args,
    percent,
    publish,
    train_model,
    write_results,
)
from distill import teachers
from distill.data import Dataset, load_builtin, split
from distill.metrics import auc, nll
from distill.models import WideAndDeep, ctr_joint_model
from distill.train import BinaryKDTerm, LabelsTerm, Objective, gap_recovered, predict
from distill.train.joint import JointObjective

NAME = "joint_model"
TITLE = "Joint CTR model: student alone vs static vs static → dynamic"
KD_VARIANTS = ("static (offline)", "joint, static only", "joint, dynamic only")
KD_VARIANTS += ("joint, static → dynamic",)
SETTINGS = ((0.5, 1.0), (0.9, 2.0))  # (W, T): calibrated targets; flatter, teacher-heavy
STUDENT_HIDDEN = (16,)
TEACHER_HIDDEN = (256, 128, 64)
STATIC_SHARE = 0.3


def settings(quick: bool) -> dict[str, Any]:
    """Sizes of the run: full, or a few seconds with ``--quick``."""
    if quick:
        return {"rows": 2000, "epochs": 1, "batch_size": 256}
    return {"rows": 40_000, "epochs": 4, "batch_size": 256}


def evaluate_ctr(model: torch.nn.Module, data: Dataset) -> dict[str, float]:
    """AUC and log loss of a CTR model's logits."""
    logits = predict(model, data)
    return {"auc": auc(logits, data.labels), "logloss": nll(logits, data.labels)}


def run_seed(seed: int, config: dict[str, Any], cache_root: Path) -> dict[str, Any]:
    """The teacher and every variant for one seed (data, split and weights seeded)."""
    data = load_builtin("synthetic_ctr", n_rows=config["rows"], seed=seed, click_rate=0.1)
    train, valid, test = split(data, (0.7, 0.15, 0.15), seed=seed)
    sizes = {"num_embeddings": data.num_embeddings, "num_fields": data.features.shape[1]}
    common = {
        "valid": valid,
        "epochs": config["epochs"],
        "batch_size": config["batch_size"],
        "metric": "auc",
        "eval_every": 50,
        "seed": seed,
    }
    torch.manual_seed(seed)
    teacher_model = ctr_joint_model(**sizes, teacher_hidden=TEACHER_HIDDEN).teacher()
    train_model(teacher_model, train, objective=Objective([LabelsTerm("bce")]), **common)
    cache = teachers.score(teachers.ModuleTeacher(teacher_model), train, cache_root / str(seed))
    cached = teachers.CachedScores(cache.parent, train)
    out = {"teacher": evaluate_ctr(teacher_model, test)}
    steps = _steps(train, config)
    plans = {"student alone": (False, Objective([LabelsTerm("bce")]), None)}
    for w, t in SETTINGS:
        kd = Objective([BinaryKDTerm(temperature=t, alpha=w)])
        switch = max(int(STATIC_SHARE * steps), 1)
        plans |= {
            variant_name("static (offline)", w, t): (False, kd, cached),
            variant_name("joint, static only", w, t): (True, _joint(w, t, steps), cached),
            variant_name("joint, dynamic only", w, t): (True, _joint(w, t, 0), None),
            variant_name("joint, static → dynamic", w, t): (True, _joint(w, t, switch), cached),
        }
    for name, (joint, objective, teacher) in plans.items():
        torch.manual_seed(seed + 1)
        if joint:
            model = ctr_joint_model(**sizes, student_hidden=STUDENT_HIDDEN)
        else:
            model = WideAndDeep(**sizes, hidden=STUDENT_HIDDEN)
        train_model(model, train, objective=objective, teacher=teacher, **common)
        out[name] = evaluate_ctr(model.student() if joint else model, test)
    return out


def variant_name(variant: str, w: float, t: float) -> str:
    """A KD variant's name with its setting, e.g. ``"static (offline), W 0.5, T 1"``."""
    return f"{variant}, W {w:g}, T {t:g}"


VARIANTS = ("student alone", *(variant_name(v, w, t) for w, t in SETTINGS for v in KD_VARIANTS))


def _joint(w: float, t: float, warmup_steps: int) -> JointObjective:
    return JointObjective(alpha=w, temperature=t, warmup_steps=warmup_steps)


def _steps(train: Dataset, config: dict[str, Any]) -> int:
    return config["epochs"] * -(-len(train) // config["batch_size"])


def summarise(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std of AUC and log loss per variant; AUC gap recovered vs the teacher."""
    names = ["teacher", *VARIANTS]
    summary = {
        name: {metric: mean_std(s[name][metric] for s in seeds) for metric in ("auc", "logloss")}
        for name in names
    }
    base, top = summary["student alone"]["auc"]["mean"], summary["teacher"]["auc"]["mean"]
    for name in VARIANTS:
        summary[name]["auc_gap_recovered"] = gap_recovered(summary[name]["auc"]["mean"], base, top)
        summary[name]["auc_gain_per_seed"] = mean_std(
            s[name]["auc"] - s["student alone"]["auc"] for s in seeds
        )
    return summary


def report(summary: dict[str, Any], config: dict[str, Any], n_seeds: int) -> str:
    """The BENCHMARKS.md section body."""
    rows = []
    for name in ("teacher", *VARIANTS):
        part = summary[name]
        gain = part.get("auc_gain_per_seed")
        gap = part.get("auc_gap_recovered")
        rows.append(
            [
                name,
                fmt(part["auc"], 1.0, 4),
                fmt(part["logloss"], 1.0, 4),
                "" if gain is None else fmt(gain, 1.0, 4),
                percent(gap),
            ]
        )
    header = ["model", "test AUC", "test log loss", "AUC − student alone (paired)", "AUC gap rec."]
    best = max(VARIANTS, key=lambda n: summary[n]["auc"]["mean"])
    best_logloss = min(VARIANTS, key=lambda n: summary[n]["logloss"]["mean"])
    settings_text = ", ".join(f"({w:g}, {t:g})" for w, t in SETTINGS)
    return f"""`synthetic_ctr`, {config["rows"]} rows, click rate 0.1, 70/15/15 split, mean ± std
over {n_seeds} seeds (data, split and weights seeded). Student: Wide & Deep, embedding 8,
deep part {STUDENT_HIDDEN}; teacher: deep tower {TEACHER_HIDDEN} over the embedding (trained
alone for the static labels; inside the joint model it shares the embedding). Settings
(W, T) = {settings_text}; {config["epochs"]} epochs, batch {config["batch_size"]}, best
validation AUC checkpoint. Static → dynamic switches after {STATIC_SHARE:.0%} of the steps. The
student is not tempered, so with T > 1 it fits the flatter σ(v/T): AUC can gain while log loss
pays for it.

{markdown_table(header, rows)}

Best student by AUC: **{best}**; by log loss: **{best_logloss}**.
"""


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every seed, write the JSON and the BENCHMARKS.md section; return the summary."""
    args = parse_args(NAME, argv)
    torch.set_num_threads(1)
    config = settings(args.quick)
    with tempfile.TemporaryDirectory() as folder:
        seeds = [run_seed(seed, config, Path(folder)) for seed in range(args.seeds)]
    summary = summarise(seeds)
    write_results(NAME, args, {"config": config, "summary": summary, "per_seed": seeds})
    publish(TITLE, report(summary, config, args.seeds), args)
    return summary


if __name__ == "__main__":
    main()
