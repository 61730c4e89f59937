"""Issue 8 item 1: soft targets with little data (Hinton et al. 2015, Table 2) on ``digits``.

A teacher MLP learns from all training rows. Small student MLPs learn from 3 %, 10 % and 30 % of
them, with hard labels or with KD (``distill.train.KDTerm``; T and α swept, the setting chosen by
mean validation accuracy). Gap recovered = (KD − hard) / (hard on 100 % − hard), on test
accuracy. At 10 % two transfer sets are added: the labelled 10 % plus the other 90 % with no
labels (teacher soft targets only), and the 10 % plus jittered copies of it (1-pixel shifts and
noise, teacher-labelled only), as in the paper's MNIST experiment.

Run: ``python -m benchmarks.soft_targets [--quick] [--seeds 5]``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
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
from distill.data import Dataset, load_builtin, split
from distill.experiment import gap_recovered
from distill.metrics import accuracy
from distill.models import MLP
from distill.teachers import ModuleTeacher
from distill.train import KDTerm, LabelsTerm, Objective, predict

NAME = "soft_targets"
TITLE = "Soft targets with little data (digits)"
IGNORE_LABEL = -100  # unlabeled transfer rows: kd_loss / cross_entropy skip them
FRACTIONS = (0.03, 0.1, 0.3)
TEMPERATURES = (8.0, 16.0, 32.0)
ALPHAS = (1.0,)
JITTER_COPIES = 9


def settings(quick: bool) -> dict[str, Any]:
    """Sizes of the run: full, or a few seconds with ``--quick``."""
    if quick:
        return {
            "teacher_steps": 20,
            "student_steps": 10,
            "fractions": (0.1,),
            "temperatures": (4.0,),
            "alphas": (0.9,),
        }
    return {
        "teacher_steps": 600,
        "student_steps": 2000,
        "fractions": FRACTIONS,
        "temperatures": TEMPERATURES,
        "alphas": ALPHAS,
    }


def test_accuracy(model: torch.nn.Module, data: Dataset) -> float:
    """Accuracy of ``model`` on ``data``."""
    return accuracy(predict(model, data), data.labels)


def train_classifier(train, valid, *, hidden, steps, seed, objective, teacher=None, dropout=0.0):
    """A fresh MLP trained with ``fit``; best validation weights are restored."""
    torch.manual_seed(seed)
    model = MLP(64, hidden, out_features=10, dropout=dropout)
    batch = min(64, len(train))
    train_model(
        model,
        train,
        objective=objective,
        teacher=teacher,
        valid=valid,
        max_steps=steps,
        batch_size=batch,
        lr=3e-3,
        eval_every=max(steps // 16, 1),
        seed=seed,
    )
    return model


def jittered(labelled: Dataset, copies: int, seed: int) -> Dataset:
    """``labelled`` plus ``copies`` shifted (±1 pixel) and noised copies without labels."""
    generator = torch.Generator().manual_seed(seed)
    images = labelled.features.view(-1, 8, 8)
    parts = [labelled.features]
    for _ in range(copies):
        dx, dy = torch.randint(-1, 2, (2,), generator=generator).tolist()
        shifted = torch.roll(images, shifts=(dy, dx), dims=(1, 2)).reshape(len(labelled), 64)
        noise = 0.05 * torch.randn(shifted.shape, generator=generator)
        parts.append((shifted + noise).clamp(0.0, 1.0))
    unlabeled = torch.full((copies * len(labelled),), IGNORE_LABEL, dtype=torch.int64)
    return Dataset(torch.cat(parts), torch.cat([labelled.labels, unlabeled]))


def with_unlabeled(train: Dataset, labelled: Dataset) -> Dataset:
    """All training rows; those outside ``labelled`` carry no label (teacher targets only)."""
    labels = train.labels.clone()
    labels[~torch.isin(train.ids, labelled.ids)] = IGNORE_LABEL
    return dataclasses.replace(train, labels=labels)


def run_seed(seed: int, config: dict[str, Any]) -> dict[str, Any]:
    """Every setting of one seed: teacher, full-data student, per-fraction hard and KD sweep.

    The transfer-set variants at 10 % use this seed's best (T, α) by validation accuracy.
    """
    train, valid, test = split(load_builtin("digits"), (0.6, 0.2, 0.2), seed=seed)
    labels = Objective([LabelsTerm("ce")])
    teacher_model = train_classifier(
        train,
        valid,
        hidden=(256, 256),
        steps=config["teacher_steps"],
        seed=seed,
        objective=labels,
        dropout=0.2,
    )
    teacher = ModuleTeacher(teacher_model)

    def student(rows: Dataset, objective: Objective, with_teacher: bool = False) -> dict:
        model = train_classifier(
            rows,
            valid,
            hidden=(32,),
            steps=config["student_steps"],
            seed=seed,
            objective=objective,
            teacher=teacher if with_teacher else None,
        )
        return {"valid": test_accuracy(model, valid), "test": test_accuracy(model, test)}

    out: dict[str, Any] = {"teacher": test_accuracy(teacher_model, test)}
    out["full_hard"] = student(train, labels)
    for fraction in config["fractions"]:
        labelled, _ = split(train, (fraction, 1 - fraction), seed=seed)
        row: dict[str, Any] = {"rows": len(labelled), "hard": student(labelled, labels)}
        for t, a in itertools.product(config["temperatures"], config["alphas"]):
            kd = Objective([KDTerm(temperature=t, alpha=a)])
            row[f"kd_T{t:g}_a{a:g}"] = {
                "temperature": t,
                "alpha": a,
                **student(labelled, kd, with_teacher=True),
            }
        out[f"{fraction:g}"] = row
    ten = out["0.1"]
    best = max((n for n in ten if n.startswith("kd_")), key=lambda n: ten[n]["valid"])
    kd = Objective([KDTerm(temperature=ten[best]["temperature"], alpha=ten[best]["alpha"])])
    labelled, _ = split(train, (0.1, 0.9), seed=seed)
    out["transfer"] = {
        "kd": best,
        "unlabeled_90": student(with_unlabeled(train, labelled), kd, with_teacher=True),
        "jittered": student(jittered(labelled, JITTER_COPIES, seed), kd, with_teacher=True),
    }
    return out


def summarise(seeds: list[dict[str, Any]], fractions: Sequence[float]) -> dict[str, Any]:
    """Mean ± std per setting; the KD setting per fraction chosen by mean validation accuracy."""
    full = mean_std(s["full_hard"]["test"] for s in seeds)
    summary: dict[str, Any] = {
        "fractions": list(fractions),
        "teacher": mean_std(s["teacher"] for s in seeds),
        "full_hard": full,
    }
    for fraction in fractions:
        key = f"{fraction:g}"
        names = [n for n in seeds[0][key] if n != "rows"]
        table = {
            n: {split_: mean_std(s[key][n][split_] for s in seeds) for split_ in ("valid", "test")}
            for n in names
        }
        best = max((n for n in names if n != "hard"), key=lambda n: table[n]["valid"]["mean"])
        summary[key] = {
            "rows": seeds[0][key]["rows"],
            "settings": table,
            "best_kd": best,
            "gap_recovered": _gap(table[best]["test"]["mean"], table["hard"]["test"]["mean"], full),
            "gap_recovered_per_seed": mean_std(
                gap_recovered(s[key][best]["test"], s[key]["hard"]["test"], s["full_hard"]["test"])
                for s in seeds
            ),
        }
    hard10 = summary["0.1"]["settings"]["hard"]["test"]["mean"]
    for variant in ("unlabeled_90", "jittered"):
        stats = mean_std(s["transfer"][variant]["test"] for s in seeds)
        summary[f"transfer_{variant}"] = {
            "test": stats,
            "gap_recovered": _gap(stats["mean"], hard10, full),
            "kd_per_seed": [s["transfer"]["kd"] for s in seeds],
        }
    return summary


def _gap(value: float, baseline: float, full: dict[str, float]) -> float:
    return gap_recovered(value, baseline, full["mean"])


def _pct(stats: dict[str, float]) -> str:
    return fmt(stats, 100.0)


def _main_table(summary: dict[str, Any]) -> str:
    rows = []
    for fraction in summary["fractions"]:
        part = summary[f"{fraction:g}"]
        best, per_seed = part["best_kd"], fmt(part["gap_recovered_per_seed"], 100.0, 0)
        rows.append(
            [
                f"{fraction:.0%} ({part['rows']} rows)",
                _pct(part["settings"]["hard"]["test"]),
                f"{_pct(part['settings'][best]['test'])} ({best})",
                f"{percent(part['gap_recovered'])} (per seed {per_seed} %)",
            ]
        )
    header = ["labelled data", "hard labels", "KD (best T, α by valid)", "gap recovered"]
    return markdown_table(header, rows)


def _transfer_table(summary: dict[str, Any]) -> str:
    variants = (
        ("unlabeled_90", "+ other 90 % unlabelled (teacher soft targets only)"),
        ("jittered", f"+ {JITTER_COPIES} jittered copies of the 10 % (teacher only)"),
    )
    rows = []
    for key, label in variants:
        part = summary[f"transfer_{key}"]
        rows.append([label, _pct(part["test"]), percent(part["gap_recovered"])])
    return markdown_table(
        ["10 % labelled + transfer set", "test accuracy %", "gap recovered"], rows
    )


def _sweep_table(summary: dict[str, Any]) -> str:
    names = [n for n in summary["0.1"]["settings"] if n != "hard"]
    rows = []
    for name in names:
        cells = [summary[f"{f:g}"]["settings"][name] for f in summary["fractions"]]
        rows.append([name, *(f"{_pct(c['valid'])} / {_pct(c['test'])}" for c in cells)])
    header = ["KD setting", *(f"{f:.0%} valid / test" for f in summary["fractions"])]
    return markdown_table(header, rows)


def report(summary: dict[str, Any], config: dict[str, Any], n_seeds: int) -> str:
    """The BENCHMARKS.md section body: main table, transfer sets, sweep, verdict."""
    gap10 = summary["0.1"]["gap_recovered"]
    verdict = "met" if gap10 is not None and gap10 >= 0.9 else "MISSED"
    return f"""Test accuracy %, mean ± std over {n_seeds} seeds (each seed: its own 60/20/20 split,
teacher and students). Teacher MLP 64-256-256-10 (dropout 0.2, {config["teacher_steps"]} steps):
{_pct(summary["teacher"])} %. Student MLP 64-32-10, {config["student_steps"]} AdamW steps, best
validation checkpoint; trained on 100 % of the training rows with hard labels:
{_pct(summary["full_hard"])} %. Gap recovered = (KD − hard) / (hard on 100 % − hard), from the
means.

{_main_table(summary)}

Target ≥ 90 % of the gap recovered at 10 % (Hinton's 87 % at 3 %): **{verdict}** ({percent(gap10)}).

Transfer sets (each seed's best (T, α) at 10 % by validation accuracy):

{_transfer_table(summary)}

Sweep of (T, α), validation / test accuracy %:

{_sweep_table(summary)}
"""


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every seed, write the JSON and the BENCHMARKS.md section; return the summary."""
    args = parse_args(NAME, argv)
    torch.set_num_threads(1)
    config = settings(args.quick)
    seeds = [run_seed(seed, config) for seed in range(args.seeds)]
    summary = summarise(seeds, config["fractions"])
    write_results(NAME, args, {"config": config, "summary": summary, "per_seed": seeds})
    publish(TITLE, report(summary, config, args.seeds), args)
    return summary


if __name__ == "__main__":
    main()
