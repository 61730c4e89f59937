"""``distill demo``: the three tracks on built-in data, no files needed.

1. **digits** (classification): a teacher on all training labels; a small student that sees
   hard labels for only 10 % of the training rows; the same student with KD at T = 4 (the
   config lists T ∈ {2, 4, 8, 20}). The KD students also use the unlabeled 90 % as a
   *transfer set* (soft targets only, Hinton et al. 2015 §3) — the setting where distillation
   helps most. All students get the same number of optimiser steps.
2. **synthetic_recommender** (ranking, misspecified student that sees 8 of 16 features):
   labels only (RankNet on the clicks of 3 % of the training rows) vs pairwise L1 (Eq. 8)
   fitting the teacher's scores of every training row (transfer set); the config also lists
   pointwise KD, pairwise L2 (Eq. 3), QR-9 with affine quantile heads (FIG. 4) and Huber.
3. **synthetic_ctr** (CTR; 80k rows, 8 fields of 30 values, 30 % clicks, crosses of field
   values): a Wide & Deep student whose deep part is too small to cross fields, on the clicks
   of 5 % of the training rows alone vs offline KD (the teacher's logits on every training
   row, transfer set) vs the joint model with dynamic distillation on the labeled rows (shared
   embeddings with a deep teacher tower, static warm-up from the saved teacher's scores for
   the first 30 % of the steps; soft weight W = 0.8). The teacher learns from every click.

Every track trains each model with 5 seeds on one data split and prints the paired difference
to the baseline with its 95 % interval (``docs/seeds.md``); ``SHOWN`` lists the variants the
demo trains (the config builders list more, for the benchmarks).

``--quick`` shrinks data and steps so the whole demo takes seconds (used by the tests).
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import torch
import typer

from distill.cli._common import QuietOption

if TYPE_CHECKING:
    from distill.config import RunConfig

KD_TEMPERATURES = (2, 4, 8, 20)
QR9 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
RANKING_STUDENT_FEATURES = 8
"""Of the recommender's 16 features, the ranking student sees the first 8."""
RANKING_LABEL_FRACTION = 0.03
"""Share of training rows whose clicks the ranking students see."""
CTR_LABEL_FRACTION = 0.05
"""Share of training rows whose clicks the CTR students (and the joint model) see."""


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
    """Synthetic CTR: Wide & Deep student alone vs offline KD vs joint dynamic distillation.

    The clicks depend on pairwise crosses of field values. The student's deep part has 2
    units, so it can hardly cross fields; the teacher's deep towers can, which gives the
    teacher a real edge. The teacher learns from every training click, the students see the
    clicks of 5 % of the training rows (``CTR_LABEL_FRACTION``). ``offline_kd`` fits the
    teacher's cached logits on every training row (transfer set, pointwise squared error, no
    labels term: unlabeled clicks cannot be masked); the joint model trains on the labeled rows
    only, with a static warm-up from the saved teacher's scores, then dynamic distillation from
    its own deep teacher tower on shared embeddings. Measured (3 seeds, seed 0): the teacher's
    edge is +0.058 AUC; offline KD recovers 67 % of it, the joint model 52 %, binary KD on the
    labeled rows 54 %. With every click labelled the teacher's edge is +0.019 and neither
    offline KD nor the joint model beats the student alone on every seed.
    """
    steps = 30 if quick else 1000
    data = {"n_rows": 3000 if quick else 80000, "fields": 8, "cardinality": 30}
    train = {"max_steps": steps, "batch_size": 256, "lr": 0.01, "eval_every": steps // 10}
    return {
        "run": {"name": "ctr", "track": "ctr"},
        "data": {
            "name": "synthetic_ctr",
            "options": {**data, "click_rate": 0.3},
            "split": [0.7, 0.15, 0.15],
            "label_fraction": CTR_LABEL_FRACTION,
        },
        "teacher": {
            "model": {"name": "WideAndDeep", "kwargs": {"embed_dim": 8, "hidden": [128, 64]}},
            "train": train,
        },
        "student": {"model": {"name": "WideAndDeep", "kwargs": {"embed_dim": 8, "hidden": [2]}}},
        "train": train,
        "variants": [
            {"name": "student_alone", "objective": {"labels": {}}},
            {
                "name": "offline_kd",
                "transfer": "all",
                "objective": {"pointwise": {"penalty": "squared"}},
            },
        ],
        "joint": {
            "soft_weight": 0.8,
            "temperature": 1.0,
            "warmup_steps": 3 * steps // 10,
            "teacher_hidden": [256, 128, 64],
        },
    }


SEEDS = 5
"""Training seeds per track: every model is trained this many times on one data split."""
SHOWN = {
    "digits": ("labels", "kd_T4"),
    "recommender": ("labels", "pairwise_l1"),
    "ctr": ("student_alone", "offline_kd"),
}
"""The variants ``distill demo`` trains per track (the config builders list more; the
benchmarks run them all)."""


def demo_configs(
    *, quick: bool, out_dir: str, seed: int, seeds: int | None = None, every_variant=False
) -> list[RunConfig]:
    """The demo's three validated run configs (the ``SHOWN`` variants unless
    ``every_variant``), each over ``seeds`` training seeds from ``seed`` (unset: one run)."""
    from distill.config import parse_config

    configs = []
    for build in (classification_config, ranking_config, ctr_config):
        raw = build(quick)
        raw["run"] |= {"out_dir": out_dir, "seed": seed}
        if seeds is not None:
            raw["run"]["seeds"] = list(range(seed, seed + seeds))
        if not every_variant:
            shown = SHOWN[raw["run"]["name"]]
            raw["variants"] = [v for v in raw["variants"] if v["name"] in shown]
        configs.append(parse_config(raw, source=f"demo:{raw['run']['name']}"))
    return configs


def run_track(cfg: RunConfig, quiet: bool, threads: int) -> tuple[dict[str, Any], Path]:
    """Train one track over its seeds and write its report (runs in a worker process)."""
    from distill._progress import configure_progress, progress_prefix
    from distill.cli.reporting import write_run_report
    from distill.experiment.runner import run_experiment

    configure_progress(quiet=quiet)
    torch.set_num_threads(threads)
    with progress_prefix(f"{cfg.run.name} · "):
        results = run_experiment(cfg, force=True)
        return results, write_run_report(cfg, results)


def demo(
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny data and few steps (seconds; for tests).")
    ] = False,
    out: Annotated[
        Path, typer.Option(help="Folder for the run folders (<out>/demo/<track>).")
    ] = Path("runs"),
    seed: Annotated[int, typer.Option(help="First training seed (and the data split's).")] = 0,
    seeds: Annotated[
        int | None,
        typer.Option(min=2, help=f"Training seeds per track (default {SEEDS}; 2 with --quick)."),
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Tracks trained at once, one process each.")] = 2,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="torch CPU threads per process. The demo's models are small: one thread is "
            "as fast on an idle CPU and much faster on a busy one.",
        ),
    ] = 1,
    quiet: QuietOption = False,
) -> None:
    """Run the main job: digits KD, ranking distillation and CTR distillation over 5 seeds.

    Prints one table per track (mean ± std over seeds, the paired Δ to the baseline with its
    95 % interval, wins, gap recovered), the recommendation, any warning and the path of each
    HTML report. About 2 minutes on a 2-core CPU (--quick: seconds).
    """
    from distill._progress import configure_progress
    from distill.cli._common import console, guard, print_results

    configure_progress(quiet=quiet)
    started = time.perf_counter()
    with guard():
        count = seeds or (2 if quick else SEEDS)
        configs = demo_configs(quick=quick, out_dir=str(out / "demo"), seed=seed, seeds=count)
        runs = _run_all(configs, quiet, threads, jobs)
        for cfg, (results, report) in zip(configs, runs, strict=True):
            console.rule(f"[bold]{cfg.run.name}[/] ({cfg.run.track})")
            print_results(results)
            console.print(f"Report: {report}")
    console.print(f"Demo finished in {time.perf_counter() - started:.0f} s.")


def _run_all(configs: list[RunConfig], quiet: bool, threads: int, jobs: int):
    """Every track's results and report path, in order; ``jobs`` > 1 runs tracks at once."""
    if jobs == 1:
        return [run_track(cfg, quiet, threads) for cfg in configs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(run_track, cfg, quiet, threads) for cfg in configs]
        return [future.result() for future in futures]
