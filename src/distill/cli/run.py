"""``distill run | teacher | score | student | evaluate | report``: a run from a config, or its
steps."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from distill._progress import configure_progress
from distill.cli._common import (
    ConfigArgument,
    QuietOption,
    SetOption,
    TrustOption,
    console,
    guard,
    is_main_process,
    print_results,
    read_config,
)


def run(
    config: ConfigArgument,
    set_: SetOption = None,
    report: Annotated[
        bool,
        typer.Option(
            help="Write the compression table, report.html and summary.md after training."
        ),
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a run already in runs/<name>/.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Finish a killed run: finished models are kept, the others continue from "
            "their last checkpoint.",
        ),
    ] = False,
    trust: TrustOption = False,
    seeds: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Train the teacher and every variant with N seeds (run.seed, run.seed + 1, "
            "...) on one data split; compare with mean ± std and paired 95 % intervals.",
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Run a whole experiment: teacher, its score cache, every student variant, the report.

    Writes runs/<name>/ (config.toml, teacher/, students/, scores/, metrics.jsonl,
    results.json, report.html, summary.md) and prints the comparison table. With --seeds N
    (or run.seeds) each seed is a run folder runs/<name>/seed<s>/ and runs/<name>/results.json
    combines them (docs/seeds.md).

    Under torchrun (torchrun --nproc-per-node 2 $(which distill) run CONFIG) every model
    trains with DistributedDataParallel and rank 0 writes the files.

    A folder that already holds a run is overwritten only with --force; --resume finishes a
    killed run with the same weights as an uninterrupted one. One run at a time per folder
    (runs/<name>/run.lock).

    Example: distill run examples/ranking.toml --seeds 5 --set train.max_steps=200
    """
    configure_progress(quiet=quiet)
    with guard():
        cfg = read_config(config, set_, trust=trust)
        from distill.cli.reporting import write_run_report
        from distill.experiment.runner import run_experiment
        from distill.experiment.seeds import with_seeds

        if seeds is not None:
            cfg = with_seeds(cfg, seeds)

        results = run_experiment(cfg, force=force, resume=resume)
        if not is_main_process():
            return
        html = write_run_report(cfg, results) if report else None
    print_results(results)
    console.print(f"Report: {html}" if html else f"Results: {cfg.run.directory / 'results.json'}")


def folder_lock(cfg) -> contextlib.AbstractContextManager:
    """The run folder's lock (main process only): a step never writes beside a running run."""
    from distill.experiment.run_folder import run_lock

    return run_lock(cfg.run.directory) if is_main_process() else contextlib.nullcontext()


def teacher(config: ConfigArgument, set_: SetOption = None, trust: TrustOption = False) -> None:
    """Train the config's teacher (or load teacher.path) and save it to runs/<name>/teacher."""
    with guard():
        cfg = read_config(config, set_, trust=trust)
        from distill.experiment.runner import run_teacher

        with folder_lock(cfg):
            row = run_teacher(cfg)
    metrics = ", ".join(f"{k} = {v:.4f}" for k, v in row["metrics"].items())
    console.print(f"Teacher: {metrics}; {row['params']:,} parameters; saved in {row['path']}")


def score(config: ConfigArgument, set_: SetOption = None, trust: TrustOption = False) -> None:
    """Cache the saved teacher's scores for the config's data in runs/<name>/scores/.

    With data.streaming = true the teacher scores every shard of train, valid and test into
    <split folder>/_scores/<shard> instead: bounded memory, resumable (shards already scored
    by this teacher are skipped), split across torchrun ranks (docs/streaming.md).
    """
    with guard():
        cfg = read_config(config, set_, trust=trust)
        from distill.experiment.runner import score_teacher

        with folder_lock(cfg):
            path = score_teacher(cfg)
    console.print(f"Teacher scores cached in {path}")


def student(
    config: ConfigArgument,
    variant: Annotated[
        list[str] | None,
        typer.Option(help="Variant to train (repeatable); default: all variants of the config."),
    ] = None,
    set_: SetOption = None,
    trust: TrustOption = False,
) -> None:
    """Train student variants from the cached teacher scores (run `distill score` first).

    Scores cached for another teacher (one retrained since `distill score`) are refused.
    """
    with guard():
        cfg = read_config(config, set_, trust=trust)
        from distill.experiment.runner import run_student

        names = variant or [v.name for v in cfg.variants]
        with folder_lock(cfg):
            rows = [run_student(cfg, name) for name in names]
    for row in rows:
        metrics = ", ".join(f"{k} = {v:.4f}" for k, v in row["metrics"].items())
        console.print(f"{row['name']}: {metrics}; saved in {row['path']}")


def report(config: ConfigArgument, set_: SetOption = None, trust: TrustOption = False) -> None:
    """Write the compression table, report.html and summary.md of a run's trained models.

    For runs made step by step (distill teacher, score, student: e.g. one cluster job each),
    this is the report distill run writes at its end.
    """
    with guard():
        cfg = read_config(config, set_, trust=trust)
        from distill.cli.reporting import write_run_report

        with folder_lock(cfg):
            results = _trained_results(cfg.run.directory)
            html = write_run_report(cfg, results)
    print_results(results)
    console.print(f"Report: {html}")


def _trained_results(folder: Path) -> dict:
    """The run folder's results.json, which must hold the baseline student (the report
    compares every student with it)."""
    from distill.config import ConfigError
    from distill.experiment.results import read_results

    if not (folder / "results.json").is_file():
        raise ConfigError(
            [
                f"{folder}: no results.json; train the run first (distill run, or "
                "distill teacher and distill student)"
            ]
        )
    results = read_results(folder)
    baseline = results["baseline"]
    if baseline not in {row["name"] for row in results["variants"]}:
        raise ConfigError(
            [
                f"{folder}: results.json holds no row of the baseline {baseline!r} (the report "
                f"compares every student with it); run distill student --variant {baseline}"
            ]
        )
    return results


def evaluate(
    model: Annotated[
        Path, typer.Argument(help="A saved model folder (teacher/ or students/<variant>/).")
    ],
    config: ConfigArgument,
    split: Annotated[str, typer.Option(help="Data split: train, valid or test.")] = "test",
    set_: SetOption = None,
    trust: TrustOption = False,
) -> None:
    """Evaluate a saved model on the config's data with the track's metrics."""
    with guard():
        cfg = read_config(config, set_, trust=trust)
        from distill.experiment.runner import evaluate_model

        metrics = evaluate_model(cfg, model, split=split)
    for name, value in metrics.items():
        console.print(f"{name}: {value:.4f}")
