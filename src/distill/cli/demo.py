"""``distill demo``: the three tracks on built-in data, no files needed.

1. **digits** (classification): a teacher on all training labels; a small student that sees
   hard labels for only 10 % of the training rows; the same student with KD at T ∈ {2, 4, 8,
   20}. The KD students also use the unlabeled 90 % as a *transfer set* (soft targets only,
   Hinton et al. 2015 §3) — the setting where distillation helps most. All students get the
   same number of optimiser steps.
2. **synthetic_recommender** (ranking, misspecified student that sees 8 of 16 features):
   labels only (RankNet on the clicks of 3 % of the training rows) vs pointwise KD, pairwise
   L2 (Eq. 3), L1 (Eq. 8), QR-9 with affine quantile heads (FIG. 4) and pairwise Huber, each
   fitting the teacher's scores of every training row (transfer set).
3. **synthetic_ctr** (CTR; 80k rows, 8 fields of 30 values, 30 % clicks): a Wide & Deep
   student on labels alone vs the joint model with dynamic distillation (shared embeddings,
   static warm-up from the saved teacher's scores for the first 20 % of the steps).

``--quick`` shrinks data and steps so the whole demo takes seconds (used by the tests).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import torch
import typer

if TYPE_CHECKING:
    from distill.config import RunConfig

KD_TEMPERATURES = (2, 4, 8, 20)
QR9 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
RANKING_STUDENT_FEATURES = 8
"""Of the recommender's 16 features, the ranking student sees the first 8."""
RANKING_LABEL_FRACTION = 0.03
"""Share of training rows whose clicks the ranking students see."""


def classification_config(quick: bool) -> dict[str, Any]:
    """Digits: teacher, 10 %-label student, KD students at T ∈ {2, 4, 8, 20}."""
    steps = 40 if quick else 600
    variants = [{"name": "labels", "objective": {"labels": {}}}]
    variants += [
        {"name": f"kd_T{t}", "transfer": "all", "objective": {"kd": {"temperature": t}}}
        for t in KD_TEMPERATURES
    ]
    return {
        "run": {"name": "digits", "track": "classification"},
        "data": {"name": "digits", "split": [0.6, 0.2, 0.2], "label_fraction": 0.1},
        "teacher": {
            "model": {"name": "MLP", "kwargs": {"hidden": [256, 128]}},
            "train": {"max_steps": 40 if quick else 800, "batch_size": 64, "lr": 0.003},
        },
        "student": {"model": {"name": "MLP", "kwargs": {"hidden": [12]}}},
        "train": {"max_steps": steps, "batch_size": 64, "lr": 0.005, "eval_every": steps // 6},
        "variants": variants,
    }


def ranking_config(quick: bool) -> dict[str, Any]:
    """Synthetic recommender: a student on 3 % of the clicks vs distilled from the teacher.

    The student sees 8 of 16 features and the clicks of 3 % of the training rows ("labels",
    RankNet); each distillation variant fits the teacher's scores of every training row instead
    (transfer set, no labels term: unlabeled clicks cannot be masked). Measured (BENCHMARKS.md,
    "Ranking demo"): no 8-feature student gets near the teacher — one fit to the true logits of
    all rows, the reachable ceiling, closes about 30 % of the gap — and the distilled students
    get about 90 % of the way there; with every click labelled, or 4 of 16 features, labels
    alone reach the ceiling and distillation gains nothing.
    """
    transfer = {"transfer": "all"}
    variants = [
        ("labels", {}, {"labels": {}}),
        ("pointwise", transfer, {"pointwise": {"penalty": "squared"}}),
        ("pairwise_l2", transfer, {"pairwise": {"penalty": "squared"}}),
        ("pairwise_l1", transfer, {"pairwise": {"penalty": "absolute"}}),
        ("qr9_affine", transfer, {"quantile_heads": {"taus": QR9, "mode": "affine"}}),
        ("pairwise_huber", transfer, {"pairwise": {"penalty": "huber"}}),
    ]
    return {
        "run": {"name": "recommender", "track": "ranking"},
        "data": {
            "name": "synthetic_recommender",
            "options": {
                "n_groups": 60 if quick else 1000,
                "noise": "skewed",
                "student_features": RANKING_STUDENT_FEATURES,
            },
            "split": [0.6, 0.2, 0.2],
            "label_fraction": RANKING_LABEL_FRACTION,
        },
        "teacher": {
            "model": {"name": "MLP", "kwargs": {"hidden": [128, 64]}},
            "train": {"max_steps": 30 if quick else 600, "groups_per_batch": 16, "lr": 0.003},
        },
        "student": {"model": {"name": "MLP", "kwargs": {"hidden": [16]}}},
        "train": {
            "max_steps": 30 if quick else 500,
            "groups_per_batch": 16,
            "lr": 0.003,
            "eval_every": 10 if quick else 100,
        },
        "variants": [{"name": name, **rows, "objective": terms} for name, rows, terms in variants],
    }


def ctr_config(quick: bool) -> dict[str, Any]:
    """Synthetic CTR: Wide & Deep student alone vs joint dynamic distillation."""
    steps = 30 if quick else 1000
    data = {"n_rows": 3000 if quick else 80000, "fields": 8, "cardinality": 30}
    train = {"max_steps": steps, "batch_size": 256, "lr": 0.01, "eval_every": steps // 10}
    return {
        "run": {"name": "ctr", "track": "ctr"},
        "data": {
            "name": "synthetic_ctr",
            "options": {**data, "click_rate": 0.3},
            "split": [0.7, 0.15, 0.15],
        },
        "teacher": {
            "model": {"name": "WideAndDeep", "kwargs": {"embed_dim": 8, "hidden": [128, 64]}},
            "train": train,
        },
        "student": {"model": {"name": "WideAndDeep", "kwargs": {"embed_dim": 8, "hidden": [8]}}},
        "train": train,
        "variants": [{"name": "student_alone", "objective": {"labels": {}}}],
        "joint": {
            "soft_weight": 0.5,
            "temperature": 1.0,
            "warmup_steps": steps // 5,
            "teacher_hidden": [256, 128, 64],
        },
    }


def demo_configs(*, quick: bool, out_dir: str, seed: int) -> list[RunConfig]:
    """The demo's three validated run configs."""
    from distill.config import parse_config

    configs = []
    for build in (classification_config, ranking_config, ctr_config):
        raw = build(quick)
        raw["run"] |= {"out_dir": out_dir, "seed": seed}
        configs.append(parse_config(raw, source=f"demo:{raw['run']['name']}"))
    return configs


def demo(
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny data and few steps (seconds; for tests).")
    ] = False,
    out: Annotated[
        Path, typer.Option(help="Folder for the run folders (<out>/demo/<track>).")
    ] = Path("runs"),
    seed: Annotated[int, typer.Option(help="Seed of data splits, weights and batches.")] = 0,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="torch CPU threads. The demo's models are small: one thread is as fast on an "
            "idle CPU and much faster on a busy one.",
        ),
    ] = 1,
) -> None:
    """Run the main job: digits KD, ranking distillation and the joint CTR model.

    Prints one results table per track (metric, gap recovered, params, size) and the path of
    each HTML report. About 40 s on a 2-core CPU (--quick: about 10 s).
    """
    from distill.cli._common import console, guard, results_table
    from distill.cli.reporting import write_run_report
    from distill.experiment.runner import run_experiment

    torch.set_num_threads(threads)
    started = time.perf_counter()
    with guard():
        for cfg in demo_configs(quick=quick, out_dir=str(out / "demo"), seed=seed):
            console.rule(f"[bold]{cfg.run.name}[/] ({cfg.run.track})")
            results = run_experiment(cfg, force=True)
            report = write_run_report(cfg, results)
            console.print(results_table(results))
            console.print(f"Report: {report}")
    console.print(f"Demo finished in {time.perf_counter() - started:.0f} s.")
