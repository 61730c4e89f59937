"""Specialists on confusable classes (Hinton et al. 2015 §5) on digits, then distilled back.

Per seed: a 60/20/20 split of ``digits``. A generalist MLP(32) learns every training row. Its
soft targets on the validation rows give the confusable clusters (k-means on the columns of
their covariance, ``distill.specialists.confusable_clusters``, 4 clusters); every cluster of
2 to 9 classes gets a specialist initialised from the generalist (its classes + a dustbin),
trained on its classes' rows plus as many other rows, with the dustbin logit corrected for
that oversampling. At test time the active specialists (their classes meet the generalist's
top class) and the generalist are combined into the distribution q minimising
``KL(p^g ‖ q) + Σ KL(p^m ‖ q^m)`` (L-BFGS on the logits). Then one student of the
generalist's architecture is distilled from that combined distribution on the training rows
(KD at T = 2, α = 0.5 with the labels), next to the same student distilled from the
generalist alone (the control: what the specialists add).

Run: ``python -m benchmarks.specialists [--quick] [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import torch

from benchmarks import _common
from benchmarks._common import diff_text, fmt, markdown_table, mean_std, paired, train_model
from benchmarks.soft_targets import test_accuracy, train_classifier
from distill import specialists as spec
from distill.data import Dataset, load_builtin, split
from distill.teachers import ModuleTeacher
from distill.train import KDTerm, LabelsTerm, Objective, predict

NAME = "specialists"
TITLE = "Specialists on confusable classes, distilled back (digits)"
CLUSTERS = 4
HIDDEN = (32,)
ROWS = ("generalist", "generalist + specialists", "student ← generalist", "student ← ensemble")


class LogitTable:
    """A teacher source whose logits are precomputed per row id."""

    def __init__(self, ids: torch.Tensor, logits: torch.Tensor) -> None:
        self.table = torch.zeros(int(ids.max()) + 1, logits.shape[1])
        self.table[ids] = logits

    def predict(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]

    def fingerprint(self) -> str:
        return "specialist-ensemble"


def train_specialist(generalist, train: Dataset, valid: Dataset, classes, seed, steps):
    """A specialist from the generalist on its enriched rows, dustbin bias corrected."""
    generator = torch.Generator().manual_seed(seed)
    rows, correction = spec.enriched_rows(train.labels, classes, generator=generator)

    def relabel(data: Dataset) -> Dataset:
        return dataclasses.replace(data, labels=spec.specialist_labels(data.labels, classes, 10))

    model = spec.specialist_from(generalist, classes)
    train_model(
        model,
        relabel(train.subset(rows)),
        objective=Objective([LabelsTerm("ce")]),
        valid=relabel(valid),
        max_steps=steps,
        batch_size=64,
        lr=1e-3,
        eval_every=max(steps // 8, 1),
        seed=seed,
    )
    return spec.shift_dustbin(model, correction)


def run_seed(seed: int, quick: bool) -> dict[str, Any]:
    """Generalist, specialists, their combination and the two distilled students."""
    train, valid, test = split(load_builtin("digits"), (0.6, 0.2, 0.2), seed=seed)
    steps = (20, 10, 20) if quick else (1000, 400, 1000)
    labels = Objective([LabelsTerm("ce")])
    generalist = train_classifier(
        train, valid, hidden=HIDDEN, steps=steps[0], seed=seed, objective=labels
    )
    soft = torch.softmax(predict(generalist, valid), 1)
    clusters = [c for c in spec.confusable_clusters(soft, CLUSTERS, seed=seed) if 2 <= len(c) < 10]
    experts = [train_specialist(generalist, train, valid, c, seed, steps[1]) for c in clusters]

    def combined(data: Dataset) -> torch.Tensor:
        experts_logits = [predict(model, data) for model in experts]
        return spec.combine_specialists(predict(generalist, data), experts_logits, clusters)

    ensemble_test = combined(test)
    kd = Objective([KDTerm(temperature=2.0, alpha=0.5)])

    def student(teacher) -> float:
        model = train_classifier(
            train,
            valid,
            hidden=HIDDEN,
            steps=steps[2],
            seed=seed + 1000,
            objective=kd,
            teacher=teacher,
        )
        return test_accuracy(model, test)

    accuracy = float((ensemble_test.argmax(1) == test.labels).double().mean())
    return {
        "clusters": clusters,
        "generalist": test_accuracy(generalist, test),
        "generalist + specialists": accuracy,
        "student ← generalist": student(ModuleTeacher(generalist)),
        "student ← ensemble": student(LogitTable(train.ids, combined(train))),
    }


def summarise(per_seed: list[dict]) -> dict[str, Any]:
    return {
        "accuracy": {row: mean_std(s[row] for s in per_seed) for row in ROWS},
        "vs_generalist": {row: paired(per_seed, row, "generalist") for row in ROWS[1:]},
        "ensemble_student_vs_generalist_student": paired(
            per_seed, "student ← ensemble", "student ← generalist"
        ),
        "clusters": [s["clusters"] for s in per_seed],
    }


def report(summary: dict[str, Any], args: argparse.Namespace) -> str:
    seeds = args.seeds
    rows = [
        [
            row,
            fmt(summary["accuracy"][row], 100, 2),
            "0" if row == "generalist" else diff_text(summary["vs_generalist"][row], seeds),
        ]
        for row in ROWS
    ]
    control = diff_text(summary["ensemble_student_vs_generalist_student"], seeds)
    clusters = "; ".join(str(c) for c in summary["clusters"])
    return f"""Test accuracy %, mean ± std over {seeds} seeds (split and weights); paired
differences in points (seeds > 0), ", none" = inside one std. Generalist and students: MLP(32)
on every training row (1000 steps, best validation checkpoint); {CLUSTERS} k-means clusters of
the generalist's validation soft targets, specialists for clusters of 2–9 classes (400 steps
from the generalist, lr 1e-3, half their rows from their classes); students: KD at T = 2,
α = 0.5, from the generalist or from the combined distribution (generalist + specialists).

{markdown_table(["model", "test accuracy %", "Δ vs generalist (paired)"], rows)}

Student from the ensemble − student from the generalist alone: {control}.

Clusters per seed: {clusters}.
"""


main = _common.seeded_entry(__name__)
"""Run every seed, write the JSON and the BENCHMARKS.md section; return the summary."""

if __name__ == "__main__":
    main()
