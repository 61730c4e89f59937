"""Multi-seed runs: one data split, the teacher and every variant trained once per seed.

Seed ``s`` of the run ``runs/<name>`` is an ordinary run folder ``runs/<name>/seed<s>/``
(its own ``config.toml``, ``teacher/``, ``students/<variant>/``, ``metrics.jsonl`` and
``results.json``), so every single-run tool works on it. The run folder itself holds the
resolved ``config.toml`` and the combined ``results.json``: per model the per-seed metrics,
their mean and std; per variant the paired difference to the baseline with its 95 %
interval, wins k/N and the gap recovered with its interval (``docs/seeds.md``).

Example:
    >>> cfg = load_config("examples/ranking.toml", overrides=["run.seeds=[0, 1, 2]"])
    >>> results = run_seeds(cfg)  # doctest: +SKIP
    >>> results["variants"][1]["paired"]["ci"]  # doctest: +SKIP
    [0.004, 0.011]
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from distill._io import write_atomic
from distill._progress import progress_prefix
from distill.config import RunConfig, write_config
from distill.experiment.checks import run_warnings
from distill.experiment.compare import (
    gap_recovered_over_seeds,
    headline_metric,
    mean_std,
    paired_difference,
)
from distill.experiment.decide import recommend
from distill.experiment.run_folder import prepare_folder, run_lock
from distill.experiment.setup import load_run_data
from distill.train.distributed import barrier, setup_distributed

SEED_FOLDER = "seed{seed}"
"""The folder of one seed inside the run folder."""


def with_seeds(cfg: RunConfig, count: int) -> RunConfig:
    """``cfg`` with ``run.seeds = [run.seed, …, run.seed + count − 1]`` (``--seeds N``).

    Raises:
        ValueError: ``count`` below 1.
    """
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"`seeds` must be an int >= 1, got {count!r}")
    seeds = list(range(cfg.run.seed, cfg.run.seed + count))
    return cfg.model_copy(update={"run": cfg.run.model_copy(update={"seeds": seeds})})


def seed_configs(cfg: RunConfig) -> list[RunConfig]:
    """One single-seed config per ``run.seeds`` entry, all on the split of ``cfg.split_seed``.

    Seed ``s`` is named ``seed<s>`` and lives inside the run folder, so its ``config.toml``
    reruns exactly that seed.
    """
    data = cfg.data.model_copy(update={"split_seed": cfg.split_seed})
    configs = []
    for seed in cfg.run.seeds or [cfg.run.seed]:
        run = cfg.run.model_copy(
            update={
                "seed": seed,
                "seeds": None,
                "out_dir": str(cfg.run.directory),
                "name": SEED_FOLDER.format(seed=seed),
            }
        )
        configs.append(cfg.model_copy(update={"run": run, "data": data}))
    return configs


def run_seeds(cfg: RunConfig, *, force: bool = False, resume: bool = False) -> dict[str, Any]:
    """Run every seed of ``cfg.run.seeds``, then write the combined ``results.json``.

    The run folder's lock is held throughout; ``force`` and ``resume`` apply to the run folder
    and to every seed's folder (a seed not started yet when resuming starts afresh).

    Returns:
        The combined results (see :func:`combine`) with the run's ``warnings``
        (:func:`distill.experiment.checks.run_warnings`) and ``recommendation``
        (:func:`distill.experiment.decide.recommend`).
    """
    from distill.experiment.runner import run_experiment

    folder = cfg.run.directory
    context = setup_distributed(cfg.train.device)
    resolved = cfg.model_copy(
        update={"data": cfg.data.model_copy(update={"split_seed": cfg.split_seed})}
    )
    with run_lock(folder) if context.is_main else contextlib.nullcontext():
        if context.is_main:
            prepare_folder(resolved, force=force, resume=resume)
            write_config(resolved, folder / "config.toml")
            (folder / "results.json").unlink(missing_ok=True)
        barrier(context)
        configs = seed_configs(cfg)
        per_seed = []
        for index, seed_cfg in enumerate(configs, start=1):
            started = (seed_cfg.run.directory / "config.toml").is_file()
            with progress_prefix(f"seed {seed_cfg.run.seed} ({index}/{len(configs)}) · "):
                run = run_experiment(seed_cfg, force=force, resume=resume and started)
                per_seed.append(run)
        results = combine(cfg, per_seed)
        results["warnings"] = run_warnings(cfg, results, load_run_data(cfg).test.labels)
        results["recommendation"] = recommend(results)
        if context.is_main:
            write_atomic(folder / "results.json", json.dumps(results, indent=2) + "\n")
        barrier(context)
    return results


def combine(cfg: RunConfig, per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The combined results of single-seed results (same variants, seeds in order).

    Every model row: ``metrics`` (means), ``std``, ``per_seed`` (lists), params, size,
    ``wall_time_s`` (mean), ``path`` (the first seed's model) and ``paths``. Every variant
    but the baseline, and the teacher: ``paired`` (:func:`paired_difference` against the
    baseline). Every variant: ``gap_recovered`` and ``gap_recovered_ci``.
    """
    seeds = cfg.run.seeds or [cfg.run.seed]
    results = {
        "name": cfg.run.name,
        "track": cfg.run.track,
        "metric": cfg.metric,
        "baseline": cfg.baseline,
        "seeds": list(seeds),
        "split_seed": cfg.split_seed,
        "teacher": _combined_row([r["teacher"] for r in per_seed]),
        "variants": [
            _combined_row([_named(r, row["name"]) for r in per_seed])
            for row in per_seed[0]["variants"]
        ],
    }
    _compare(results)
    return results


def _named(results: dict[str, Any], name: str) -> dict[str, Any]:
    return next(row for row in results["variants"] if row["name"] == name)


def _combined_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = list(rows[0]["metrics"])
    per_seed = {key: [row["metrics"][key] for row in rows] for key in keys}
    spreads = {key: mean_std(values) for key, values in per_seed.items()}
    return {
        "name": rows[0]["name"],
        "metrics": {key: mean for key, (mean, _) in spreads.items()},
        "std": {key: std for key, (_, std) in spreads.items()},
        "per_seed": per_seed,
        "params": rows[0]["params"],
        "size_bytes": rows[0]["size_bytes"],
        "wall_time_s": round(sum(row["wall_time_s"] for row in rows) / len(rows), 3),
        "path": rows[0]["path"],
        "paths": [row["path"] for row in rows],
    }


def _compare(results: dict[str, Any]) -> None:
    metric = headline_metric(results)  # every headline metric is higher-is-better
    rows = {row["name"]: row for row in results["variants"]}
    baseline = rows.get(results["baseline"])
    if baseline is None:
        return
    base = baseline["per_seed"][metric]
    teacher = results["teacher"]
    teacher["paired"] = paired_difference(teacher["per_seed"][metric], base)
    for row in results["variants"]:
        values = row["per_seed"][metric]
        row["paired"] = None if row is baseline else paired_difference(values, base)
        row["gap_recovered"], row["gap_recovered_ci"] = gap_recovered_over_seeds(
            values, base, teacher["per_seed"][metric]
        )
        if row is baseline:  # 0 by definition, not an estimate
            row["gap_recovered_ci"] = None
