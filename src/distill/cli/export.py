"""``distill export``: ship a trained student as safetensors, fp16/bf16, int8, low-rank or ONNX,
with a compression table (size, metric, CPU latency, ratio to the teacher)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli._common import TrustOption, console, guard
from distill.export.formats import FORMATS

FORMAT_HELP = (
    "Output format(s): " + ", ".join(FORMATS) + ". Repeat the option or give a comma list. "
    "Default: safetensors (low-rank when --low-rank is given)."
)


def export(
    source: Annotated[
        Path,
        typer.Argument(
            help="A run directory (runs/<name>/), a model directory (model.json + "
            "model.safetensors) or a training checkpoint (checkpoints/<variant>/best.pt).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (created).", show_default=False)
    ],
    format_: Annotated[
        list[str] | None,
        typer.Option(
            "--format", "-f", help=FORMAT_HELP, metavar="FORMAT[,FORMAT]", show_default=False
        ),
    ] = None,
    low_rank: Annotated[
        str | None,
        typer.Option(
            "--low-rank",
            metavar="FRACTION|RANK",
            help="Low-rank setting: a fraction in (0, 1] keeps that share of each layer's "
            "squared singular values (0.9 = 90 %); an integer is the rank of every layer. "
            "Adds the low-rank format. Default 0.9.",
            show_default=False,
        ),
    ] = None,
    recover_steps: Annotated[
        int,
        typer.Option(
            "--recover-steps",
            min=0,
            help="After factorising, distil the low-rank student from the original for this "
            "many steps on the run's training data (run directories only).",
        ),
    ] = 0,
    recover_from: Annotated[
        str,
        typer.Option(
            "--recover-from",
            metavar="student|teacher",
            help="Recovery reference: the original student or the run's teacher.",
        ),
    ] = "student",
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            metavar="NAME",
            help="Run directories: a student to export (repeatable; default all).",
        ),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="Checkpoints: the model directory (or model.json) whose spec the checkpoint "
            "must match (default: the run's students/<variant>/).",
            show_default=False,
        ),
    ] = None,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Timed calls per latency measurement.")
    ] = 20,
    onnx_atol: Annotated[
        float,
        typer.Option("--onnx-atol", min=0.0, help="Largest max-abs ONNX vs torch difference."),
    ] = 1e-4,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing output directory (an export).")
    ] = False,
    trust: TrustOption = False,
) -> None:
    """Export students to deployable formats and print the compression table.

    Writes OUT/<student>/<format>/ for every student and format, plus OUT/compression.md,
    OUT/compression.json and OUT/export.json. Nothing is written unless everything succeeds.

    Examples:

        distill export runs/digits --format fp16,int8,onnx --out shipped

        distill export runs/digits --low-rank 0.9 --recover-steps 500 --out shipped
    """
    formats = parse_formats(format_ or [], low_rank is not None)
    rank = parse_rank(low_rank)
    if recover_from not in ("student", "teacher"):
        raise typer.BadParameter(
            f"must be 'student' or 'teacher', got {recover_from!r}", param_hint="--recover-from"
        )
    if recover_steps and "low-rank" not in formats:
        raise typer.BadParameter(
            "only applies to the low-rank format", param_hint="--recover-steps"
        )
    if out.exists() and not force:
        raise typer.BadParameter(
            f"{out} already exists; add --force to replace it", param_hint="--out"
        )
    with guard():
        from distill.export.sources import export_source, open_source
        from distill.export.table import print_table

        source = open_source(source, variants=variant or (), spec=spec, trust=trust)
        rows = export_source(
            source,
            out,
            formats=formats,
            rank=rank,
            recover_steps=recover_steps,
            recover_from=recover_from,
            repeats=repeats,
            onnx_atol=onnx_atol,
            force=force,
        )
        print_table(rows, metric=source.metric, console=console)
        console.print(f"Exports and compression table written to {out}/")


def parse_formats(values: list[str], with_low_rank: bool) -> list[str]:
    """Split comma lists, check names, keep order, drop repeats; add low-rank if asked."""
    formats: list[str] = []
    for name in (part.strip() for value in values for part in value.split(",")):
        if name not in FORMATS:
            raise typer.BadParameter(
                f"unknown format {name!r}; choose from {', '.join(FORMATS)}", param_hint="--format"
            )
        if name not in formats:
            formats.append(name)
    if with_low_rank and "low-rank" not in formats:
        formats.append("low-rank")
    return formats or ["safetensors"]


def parse_rank(text: str | None) -> int | float:
    """``"16"`` → rank 16; ``"0.9"`` → energy 0.9; default 0.9."""
    if text is None:
        return 0.9
    try:
        value: int | float = int(text) if text.strip().isdigit() else float(text)
    except ValueError:
        raise typer.BadParameter(
            f"must be an integer rank or a fraction in (0, 1], got {text!r}",
            param_hint="--low-rank",
        ) from None
    valid = value >= 1 if isinstance(value, int) else 0 < value <= 1
    if not valid:
        raise typer.BadParameter(
            f"must be an integer rank >= 1 or a fraction in (0, 1], got {text}",
            param_hint="--low-rank",
        )
    return value
