"""The joint model's input gate and a gated-experts teacher tower, against the hard switch.

The setting of "Joint CTR model" (``benchmarks.joint_model``: the demo's ``synthetic_ctr``, a
Wide & Deep student, a deep teacher tower (256, 128, 64) on the shared embedding, 4 epochs,
lr 1e-2, W 0.5, T 1, paired initial weights and batches). The student's teacher label is
``ŷ = g·ŷ_dynamic + (1 − g)·ŷ_static`` (static: cached scores of the teacher trained alone):

- ``hard switch``: g = 0 for the first 30 % of the steps, then 1 (today's schedule);
- ``linear ramp`` / ``cosine ramp``: g from 0 to 1 over the first 60 % of the steps (½ at 30 %);
- ``learned gate``: g per example from a gate tower (16) on the shared embedding, trained by
  ``H(y, ŷ)`` (which label predicts the click);
- ``experts teacher, hard switch``: the teacher tower is a softmax-gated mixture of 4 deep
  towers (a dynamic-structure teacher), with the hard switch.

Run: ``python -m benchmarks.joint_gate [--quick] [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks import _common
from benchmarks._common import diff_text, fmt, markdown_table, mean_std, paired, train_model
from benchmarks.joint_model import Models, _steps, evaluate_ctr, settings
from distill import teachers
from distill.data import load_builtin, split
from distill.models import ctr_joint_model
from distill.train import LabelsTerm, Objective
from distill.train.joint import JointObjective

NAME = "joint_gate"
TITLE = "Joint CTR model: input gate and gated-experts teacher vs the hard switch"
SWITCH, RAMP = 0.3, 0.6
W, T = 0.5, 1.0
VARIANTS = {  # name: (objective options, model options)
    "hard switch": ({"gate": "switch"}, {}),
    "linear ramp": ({"gate": "linear"}, {}),
    "cosine ramp": ({"gate": "cosine"}, {}),
    "learned gate": ({"gate": "learned"}, {"gate_hidden": (16,)}),
    "experts teacher, hard switch": ({"gate": "switch"}, {"teacher_experts": 4}),
}


def objective(options: dict[str, Any], steps: int) -> JointObjective:
    """The joint objective of a variant: switch at 30 %, ramps over the first 60 %."""
    if options["gate"] == "switch":
        return JointObjective(
            soft_weight=W, temperature=T, warmup_steps=max(int(SWITCH * steps), 1)
        )
    if options["gate"] == "learned":
        return JointObjective(soft_weight=W, temperature=T, gate="learned")
    ramp = max(int(RAMP * steps), 1)
    return JointObjective(soft_weight=W, temperature=T, gate=options["gate"], gate_steps=ramp)


def joint_model(models: Models, seed: int, extra: dict[str, Any]) -> torch.nn.Module:
    """A joint model at the seed's paired start (student; the deep teacher tower if used)."""
    config = models.config
    torch.manual_seed(seed + 2)
    model = ctr_joint_model(
        **models.sizes,
        embed_dim=config["embed_dim"],
        student_hidden=config["student_hidden"],
        teacher_hidden=config["teacher_hidden"],
        **extra,
    )
    model.student().load_state_dict(models.student_init)
    if "teacher_experts" not in extra:
        model.teacher_tower.load_state_dict(models.tower_init)
    return model


def run_seed(seed: int, quick: bool) -> dict[str, Any]:
    """Student alone, the teacher's cache and every gate variant for one seed."""
    config = settings(quick)
    data = load_builtin("synthetic_ctr", **config["data"], seed=seed)
    train, valid, test = split(data, config["split"], seed=seed)
    models = Models(data, config, seed)
    common = {"valid": valid, "seed": seed, **config["train"]}
    labels = Objective([LabelsTerm("bce")])
    teacher = models.teacher()
    train_model(teacher, train, objective=labels, **common)
    alone = models.student()
    train_model(alone, train, objective=labels, **common)
    out = {"teacher alone": evaluate_ctr(teacher, test), "student alone": evaluate_ctr(alone, test)}
    with tempfile.TemporaryDirectory(prefix="joint_gate_") as folder:
        source = teachers.ModuleTeacher(teacher)
        cache = teachers.score(source, train, Path(folder) / "scores")
        cached = teachers.CachedScores(cache.parent, train, teacher=source)
        steps = _steps(train, config)
        for name, (options, extra) in VARIANTS.items():
            model = joint_model(models, seed, extra)
            train_model(model, train, objective=objective(options, steps), teacher=cached, **common)
            out[name] = evaluate_ctr(model.student(), test)
            out[name]["teacher_tower_auc"] = evaluate_ctr(model.teacher(), test)["auc"]
    return out


ROWS = ("teacher alone", "student alone", *VARIANTS)


def summarise(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    auc = [{row: s[row]["auc"] for row in ROWS} for s in per_seed]
    return {
        "auc": {row: mean_std(s[row] for s in auc) for row in ROWS},
        "logloss": {row: mean_std(s[row]["logloss"] for s in per_seed) for row in ROWS},
        "vs_switch": {row: paired(auc, row, "hard switch") for row in VARIANTS},
        "vs_alone": {row: paired(auc, row, "student alone") for row in ROWS},
        "teacher_tower_auc": {
            row: mean_std(s[row]["teacher_tower_auc"] for s in per_seed) for row in VARIANTS
        },
    }


def report(summary: dict[str, Any], args: argparse.Namespace) -> str:
    seeds = args.seeds

    def diff(stats: dict[str, Any] | None) -> str:
        return "" if stats is None else diff_text(stats, seeds, scale=1.0, digits=4)

    rows = []
    for row in ROWS:
        cells = [fmt(summary["auc"][row], 1.0, 4), fmt(summary["logloss"][row], 1.0, 4)]
        cells.append("" if row == "student alone" else diff(summary["vs_alone"][row]))
        cells.append("" if row == "hard switch" else diff(summary["vs_switch"].get(row)))
        tower = summary["teacher_tower_auc"].get(row)
        rows.append([row, *cells, "" if tower is None else fmt(tower, 1.0, 4)])
    header = ["model", "test AUC", "test log loss", "AUC − alone (paired)"]
    header += ["AUC − hard switch (paired)", "its teacher tower's AUC"]
    return f"""Mean ± std over {seeds} seeds; paired differences (seeds > 0), ", none" = inside one
std. The setting of "Joint CTR model" (the demo's `synthetic_ctr`: 80000 rows, 8 fields of 30
values; Wide & Deep student; deep teacher tower (256, 128, 64) on the shared embedding; 4
epochs, batch 256, lr 1e-2, best validation AUC; W 0.5, T 1; every joint model starts from the
standalone student's weights, and the deep teacher tower from the teacher alone's). Static
labels: the cached scores of the teacher trained alone. Hard switch after 30 % of the steps;
ramps from g = 0 to 1 over the first 60 %; the learned gate is a deep tower (16) on the shared
embedding trained by `H(y, ŷ)`; the experts teacher mixes 4 deep towers (256, 128, 64) by a
softmax gate on the embedding. {args.wall_s / 60:.0f} min on one thread.

{markdown_table(header, rows)}
"""


main = _common.seeded_entry(__name__)
"""Run every seed, write the JSON and the BENCHMARKS.md section; return the summary."""

if __name__ == "__main__":
    main()
