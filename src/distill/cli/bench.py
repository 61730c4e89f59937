"""``distill bench NAME``: run ``benchmarks/NAME.py`` from a checkout (development only).

The benchmarks are not part of the installed package; see BENCHMARKS.md in the repository.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Annotated

import typer

from distill.cli._common import EXIT_USAGE, guard, print_error


def available_benchmarks(root: Path) -> list[str]:
    """Benchmark module names found in ``root/benchmarks`` (files not starting with ``_``)."""
    folder = root / "benchmarks"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def bench(
    name: Annotated[str, typer.Argument(help="Benchmark to run: benchmarks/NAME.py.")],
    args: Annotated[
        list[str] | None,
        typer.Argument(help="Arguments passed on to the benchmark.", show_default=False),
    ] = None,
) -> None:
    """Development only: run benchmarks/NAME.py from a checkout of the repository.

    The benchmarks do not ship with the installed package; run this from the repository root.
    Results go to benchmarks/results/NAME.json; see BENCHMARKS.md.
    """
    root = Path.cwd()
    names = available_benchmarks(root)
    if name not in names:
        listing = (
            ", ".join(names)
            if names
            else (
                "none: `distill bench` is development-only, run it from the root of a checkout "
                "of the repository"
            )
        )
        print_error(f"no benchmark {name!r} in {root / 'benchmarks'}; available: {listing}")
        raise typer.Exit(EXIT_USAGE)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    saved_argv = sys.argv
    sys.argv = [str(root / "benchmarks" / f"{name}.py"), *(args or [])]
    try:
        with guard():
            runpy.run_module(f"benchmarks.{name}", run_name="__main__")
    finally:
        sys.argv = saved_argv
