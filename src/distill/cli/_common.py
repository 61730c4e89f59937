"""Shared CLI pieces: error handling with exit codes, config loading, result tables."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # pydantic loads when a command reads a config, not for --help
    from distill.config import RunConfig

EXIT_FAILED = 1
EXIT_USAGE = 2

console = Console()
error_console = Console(stderr=True, soft_wrap=True)


@dataclass
class CliState:
    """Options of the top-level callback (``--debug``)."""

    debug: bool = False


STATE = CliState()

ConfigArgument = Annotated[
    Path,
    typer.Argument(
        help="Run config (TOML). See examples/*.toml; runs/<name>/config.toml reproduces a run.",
        show_default=False,
    ),
]
TrustOption = Annotated[
    bool,
    typer.Option(
        "--trust",
        help="Allow code to run from the run's files: a pickled teacher (teacher.path *.pt) "
        "and import paths ('pkg.module:Class') as model names. Only for sources you trust.",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a config value, e.g. --set train.epochs=2 --set variants.0.name=base "
        "(value parsed as TOML; repeatable).",
        metavar="KEY.PATH=VALUE",
        show_default=False,
    ),
]

QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress output. Otherwise: a bar with ETA on a terminal, and a plain line "
        "(phase, step/total, ETA, latest metric) every few seconds in logs and pipes.",
    ),
]


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Turn exceptions into one error line and an exit code (traceback only with --debug).

    Exit codes: 2 for a bad config or usage (:class:`ConfigError`), 1 for a failed run.
    """
    from distill.config import ConfigError

    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except ConfigError as error:
        if STATE.debug:
            raise
        where = f"{error.source}: " if error.source else ""
        for line in error.lines:
            print_error(f"{where}{line}")
        error_console.print("Fix the config (or the --set value) and run again.", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    except Exception as error:
        if STATE.debug:
            raise
        print_error(f"{type(error).__name__}: {error} (run with --debug for the traceback)")
        raise typer.Exit(EXIT_FAILED) from None


def print_error(message: str) -> None:
    """``error: <message>`` on stderr; the message is plain text (brackets print verbatim)."""
    error_console.print(Text("error: ", style="bold red") + Text(message), highlight=False)


def is_main_process() -> bool:
    """False on the non-zero ranks of a ``torchrun`` launch (they neither print nor report)."""
    return int(os.environ.get("RANK", "0")) == 0


def read_config(path: Path, overrides: list[str] | None, *, trust: bool = False) -> RunConfig:
    """Load and validate a config with ``--set`` overrides (raises :class:`ConfigError`).

    ``trust`` (``--trust``) sets ``teacher.trust``: pickled teachers and import-path models.
    """
    from distill.config import load_config

    cfg = load_config(path, overrides=list(overrides or []))
    if trust:
        cfg = cfg.model_copy(update={"teacher": cfg.teacher.model_copy(update={"trust": True})})
    return cfg


def print_results(results: dict[str, Any]) -> None:
    """The results table, the recommendation, then every warning of the run on its own line."""
    from distill.experiment.decide import recommend

    # Off a terminal (logs, pipes) rich would wrap at 80 columns; the tables need more.
    out = console if console.is_terminal else Console(width=120)
    out.print(results_table(results))
    decision = recommend(results)
    if decision is not None:
        out.print(f"[bold]Recommendation:[/] {decision['sentence']}", highlight=False)
    for warning in results.get("warnings", []):
        out.print(f"[bold yellow]warning:[/] {warning}", highlight=False)


def results_table(results: dict[str, Any]) -> Table:
    """One rich table for a ``results.json`` mapping: teacher first, then every variant.

    Columns: the track's headline metric (with log loss and ECE on the binary track), gap
    recovered, parameters, size and wall time (every metric is in ``results.json`` and the
    report). A multi-seed run's table is
    :func:`distill.cli.seeds_table.seeds_table`.
    """
    from distill.cli.seeds_table import (
        CALIBRATION_COLUMNS,
        percent_interval,
        seeds_table,
        size_text,
    )

    if "seeds" in results:
        return seeds_table(results)
    metric = results["metric"]
    extra = CALIBRATION_COLUMNS.get(results["track"], ())
    table = Table(title=f"{results['name']} ({results['track']}; baseline: {results['baseline']})")
    table.add_column("model", no_wrap=True)
    for column in (metric, *extra, "gap recovered", "params", "size", "time"):
        table.add_column(column, justify="right")
    for row in [results["teacher"], *results["variants"]]:
        table.add_row(
            row["name"],
            _number(row["metrics"].get(metric)),
            *(_number(row["metrics"].get(key)) for key in extra),
            percent_interval(row.get("gap_recovered"), None),
            f"{row['params']:,}",
            size_text(row["size_bytes"]),
            f"{row['wall_time_s']:.1f} s",
        )
    return table


def _number(value: Any) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4f}"
