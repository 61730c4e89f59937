"""Issue 8 item 2: temperature sweeps, T from 0.5 to 20, for classification and binary CTR.

Classification: ``digits``, the student MLP learns from 10 % of the training rows with KD
(``KDTerm``, α = 0.9) from a teacher trained on all of them. CTR: ``synthetic_ctr`` at three
click rates (positive/negative ratios); a Wide & Deep student learns with ``BinaryKDTerm``
(W = 0.5) from a cached deep teacher. The seed's guidance (FORMULAS §3) says a high T suits a
teacher with a small positive/negative ratio; the best T per click rate tests it.

Run: ``python -m benchmarks.temperature_sweep [--quick] [--seeds 5]``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import (
    fmt,
    markdown_table,
    mean_std,
    parse_args,
    publish,
    train_model,
    write_results,
)
from benchmarks.joint_model import evaluate_ctr
from benchmarks.soft_targets import test_accuracy, train_classifier
from distill import teachers
from distill.data import load_builtin, split
from distill.models import WideAndDeep, ctr_joint_model
from distill.teachers import ModuleTeacher
from distill.train import BinaryKDTerm, KDTerm, LabelsTerm, Objective

NAME = "temperature_sweep"
TITLE = "Temperature sweep (classification and CTR)"
TEMPERATURES = (0.5, 1.0, 2.0, 4.0, 8.0, 20.0)
CLICK_RATES = (0.02, 0.1, 0.3)
KD_ALPHA, CTR_W = 0.9, 0.5
CTR_TEACHER_HIDDEN = (256, 128, 64)


def settings(quick: bool) -> dict[str, Any]:
    """Sizes of the run: full, or a few seconds with ``--quick``."""
    if quick:
        return {
            "temperatures": (1.0, 4.0),
            "click_rates": (0.1,),
            "teacher_steps": 20,
            "student_steps": 10,
            "ctr_rows": 2000,
            "ctr_epochs": 1,
        }
    return {
        "temperatures": TEMPERATURES,
        "click_rates": CLICK_RATES,
        "teacher_steps": 600,
        "student_steps": 1000,
        "ctr_rows": 20_000,
        "ctr_epochs": 3,
    }


def classification_seed(seed: int, config: dict[str, Any]) -> dict[str, float]:
    """Test accuracy of the 10 % student per temperature (and with hard labels: ``"hard"``)."""
    train, valid, test = split(load_builtin("digits"), (0.6, 0.2, 0.2), seed=seed)
    labels = Objective([LabelsTerm("ce")])
    teacher = train_classifier(
        train, valid, hidden=(256, 256), steps=config["teacher_steps"], seed=seed,
        objective=labels, dropout=0.2,
    )  # fmt: skip
    labelled, _ = split(train, (0.1, 0.9), seed=seed)

    def student(objective: Objective, source: Any = None) -> float:
        model = train_classifier(
            labelled, valid, hidden=(32,), steps=config["student_steps"], seed=seed,
            objective=objective, teacher=source,
        )  # fmt: skip
        return test_accuracy(model, test)

    out = {"hard": student(labels)}
    for t in config["temperatures"]:
        kd = Objective([KDTerm(temperature=t, alpha=KD_ALPHA)])
        out[f"{t:g}"] = student(kd, ModuleTeacher(teacher))
    return out


def ctr_seed(seed: int, rate: float, config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Test AUC / log loss of the CTR student per temperature at one click rate."""
    data = load_builtin("synthetic_ctr", n_rows=config["ctr_rows"], seed=seed, click_rate=rate)
    train, valid, test = split(data, (0.7, 0.15, 0.15), seed=seed)
    sizes = {"num_embeddings": data.num_embeddings, "num_fields": data.features.shape[1]}
    common = {"valid": valid, "epochs": config["ctr_epochs"], "metric": "auc", "seed": seed}
    common |= {"eval_every": 50}
    torch.manual_seed(seed)
    teacher = ctr_joint_model(**sizes, teacher_hidden=CTR_TEACHER_HIDDEN).teacher()
    train_model(teacher, train, objective=Objective([LabelsTerm("bce")]), **common)
    shard = teachers.score(ModuleTeacher(teacher), train, folder / f"{seed}-{rate:g}")
    cached = teachers.CachedScores(shard.parent, train)

    def student(objective: Objective, source: Any = None) -> dict[str, float]:
        torch.manual_seed(seed + 1)
        model = WideAndDeep(**sizes, hidden=(16,))
        train_model(model, train, objective=objective, teacher=source, **common)
        return evaluate_ctr(model, test)

    out = {"teacher": evaluate_ctr(teacher, test), "hard": student(Objective([LabelsTerm("bce")]))}
    for t in config["temperatures"]:
        out[f"{t:g}"] = student(Objective([BinaryKDTerm(temperature=t, alpha=CTR_W)]), cached)
    return out


def summarise(runs: dict[str, list[dict[str, Any]]], config: dict[str, Any]) -> dict[str, Any]:
    """Mean ± std per temperature; the best T per track / click rate (by test mean)."""
    keys = ["hard", *(f"{t:g}" for t in config["temperatures"])]
    summary: dict[str, Any] = {
        "classification": {k: mean_std(s[k] for s in runs["classification"]) for k in keys}
    }
    summary["classification"]["best_T"] = max(
        keys[1:], key=lambda k: summary["classification"][k]["mean"]
    )
    for rate in config["click_rates"]:
        seeds = runs[f"ctr_{rate:g}"]
        part = {
            k: {m: mean_std(s[k][m] for s in seeds) for m in ("auc", "logloss")}
            for k in ["teacher", *keys]
        }
        part["best_T_auc"] = max(keys[1:], key=lambda k: part[k]["auc"]["mean"])
        part["best_T_logloss"] = min(keys[1:], key=lambda k: part[k]["logloss"]["mean"])
        summary[f"ctr_{rate:g}"] = part
    return summary


def report(summary: dict[str, Any], config: dict[str, Any], n_seeds: int) -> str:
    """The BENCHMARKS.md section body: one table per track, verdict on the seed's guidance."""
    keys = ["hard", *(f"{t:g}" for t in config["temperatures"])]
    labels = ["hard labels", *(f"T = {k}" for k in keys[1:])]
    classification = summary["classification"]
    cls_rows = [
        [label, fmt(classification[k], 100.0)] for label, k in zip(labels, keys, strict=True)
    ]
    header = ["student"]
    for rate in config["click_rates"]:
        header += [f"AUC @ {rate:g}", f"log loss @ {rate:g}"]
    ctr_rows = []
    for label, key in zip(["teacher", *labels], ["teacher", *keys], strict=True):
        cells = []
        for rate in config["click_rates"]:
            part = summary[f"ctr_{rate:g}"][key]
            cells += [fmt(part["auc"], 1.0, 4), fmt(part["logloss"], 1.0, 4)]
        ctr_rows.append([label, *cells])
    best = ", ".join(
        f"click rate {rate:g}: T = {summary[f'ctr_{rate:g}']['best_T_auc']} (AUC), "
        f"T = {summary[f'ctr_{rate:g}']['best_T_logloss']} (log loss)"
        for rate in config["click_rates"]
    )
    return f"""Mean ± std over {n_seeds} seeds.

**Classification** — `digits`, student MLP 64-32-10 on 10 % of the training rows, KD with
α = {KD_ALPHA} from a 64-256-256-10 teacher; test accuracy %:

{markdown_table(["student", "test accuracy %"], cls_rows)}

Best T: {classification["best_T"]}.

**Binary CTR** — `synthetic_ctr`, {config["ctr_rows"]} rows per click rate, Wide & Deep student
(deep part (16,)) with `BinaryKDTerm` (W = {CTR_W}, student not tempered) from cached scores of
a deep teacher; test AUC and log loss at each click rate:

{markdown_table(header, ctr_rows)}

Best T per click rate: {best}. The student is not tempered, so with T > 1 it is fitted to
the flatter σ(v/T): ranking (AUC) can gain while calibration (log loss) pays for it.

The seed's guidance (a higher T for a smaller positive/negative ratio), read as "the best T
does not rise as the click rate rises, and differs somewhere": by AUC
**{guidance(summary, config, "best_T_auc")}**; by log loss
**{guidance(summary, config, "best_T_logloss")}**.
"""


def guidance(summary: dict[str, Any], config: dict[str, Any], key: str) -> str:
    """Whether the best T (by ``key``) falls as the click rate rises."""
    best = [float(summary[f"ctr_{rate:g}"][key]) for rate in config["click_rates"]]
    if len(set(best)) == 1:
        return f"not tested (T = {best[0]:g} is best at every click rate)"
    holds = all(a >= b for a, b in pairwise(best))
    return "holds" if holds else "does not hold"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both sweeps over every seed, write the JSON and the BENCHMARKS.md section."""
    args = parse_args(NAME, argv)
    torch.set_num_threads(1)
    config = settings(args.quick)
    runs: dict[str, list[dict[str, Any]]] = {
        "classification": [classification_seed(s, config) for s in range(args.seeds)]
    }
    with tempfile.TemporaryDirectory() as folder:
        for rate in config["click_rates"]:
            runs[f"ctr_{rate:g}"] = [
                ctr_seed(s, rate, config, Path(folder)) for s in range(args.seeds)
            ]
    summary = summarise(runs, config)
    write_results(NAME, args, {"config": config, "summary": summary, "per_seed": runs})
    publish(TITLE, report(summary, config, args.seeds), args)
    return summary


if __name__ == "__main__":
    main()
