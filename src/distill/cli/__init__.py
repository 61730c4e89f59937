"""The ``distill`` command (typer + rich).

Sub-commands: ``demo``, ``run``, ``teacher``, ``score``, ``student``, ``evaluate``, ``report``,
``landscape``, ``export``, ``convert``, ``bench``. Exit codes: 0 ok, 1 run failed, 2 bad usage
or config. Errors print one line; ``distill --debug ...`` shows the traceback.

Example:
    $ distill demo --quick
    $ distill run examples/classification.toml --set train.epochs=2
"""

from __future__ import annotations

from typing import Annotated

import typer

from distill import __version__
from distill.cli import bench, convert, demo, export, landscape, run
from distill.cli._common import STATE

app = typer.Typer(
    name="distill",
    help="Knowledge distillation for classifiers, CTR models and rankers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"distill {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when something fails.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print version."),
    ] = False,
) -> None:
    """Knowledge distillation for classifiers, CTR models and rankers.

    Start with `distill demo`, then `distill run examples/classification.toml`.
    """
    STATE.debug = debug


app.command()(demo.demo)
app.command()(run.run)
app.command()(run.teacher)
app.command()(run.score)
app.command()(run.student)
app.command()(run.evaluate)
app.command()(run.report)
app.command()(landscape.landscape)
app.command()(convert.convert)
app.command()(export.export)
app.command()(bench.bench)


def main() -> None:
    """Run the typer app (the ``distill`` script enters through ``distill.__main__:main``)."""
    app()
