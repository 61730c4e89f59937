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
            "Adds the low-rank format (with --chain: the rank of its low-rank step). "
            "Default 0.9.",
            show_default=False,
        ),
    ] = None,
    chain: Annotated[
        str | None,
        typer.Option(
            "--chain",
            metavar="STEP[,STEP]",
            help="Instead of separate formats, one compression chain, each step from the "
            "previous one: share (embedding + output layer on one basis), low-rank, then one "
            "of fp16, bf16, int8; writes a row per step (docs/compression.md).",
            show_default=False,
        ),
    ] = None,
    share_rank: Annotated[
        str | None,
        typer.Option(
            "--share-rank",
            metavar="FRACTION|RANK",
            help="The chain's share step: rank of the shared embedding/output basis, or the "
            "share of squared singular values it keeps. Default 0.9.",
            show_default=False,
        ),
    ] = None,
    recover_steps: Annotated[
        int,
        typer.Option(
            "--recover-steps",
            min=0,
            help="After factorising (low-rank, and each factorisation step of a chain), distil "
            "the compressed student from the original for this many steps on the run's "
            "training data (run directories only).",
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
    recover_loss: Annotated[
        str,
        typer.Option(
            "--recover-loss",
            metavar="logit_matching|kd",
            help="Recovery loss: mean squared logit difference, or soft-target KD at "
            "--recover-temperature.",
        ),
    ] = "logit_matching",
    recover_temperature: Annotated[
        float,
        typer.Option("--recover-temperature", min=1e-6, help="T of --recover-loss kd."),
    ] = 4.0,
    recover_lr: Annotated[
        float,
        typer.Option("--recover-lr", min=1e-12, help="Recovery learning rate (AdamW)."),
    ] = 1e-3,
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

        distill export runs/keyboard --chain share,low-rank,fp16 --recover-steps 500 --out chain
    """
    rank = parse_rank(low_rank)
    if recover_from not in ("student", "teacher"):
        raise typer.BadParameter(
            f"must be 'student' or 'teacher', got {recover_from!r}", param_hint="--recover-from"
        )
    if recover_loss not in ("logit_matching", "kd"):
        raise typer.BadParameter(
            f"must be 'logit_matching' or 'kd', got {recover_loss!r}", param_hint="--recover-loss"
        )
    recovery = {"loss": recover_loss, "temperature": recover_temperature, "lr": recover_lr}
    if out.exists() and not force:
        raise typer.BadParameter(
            f"{out} already exists; add --force to replace it", param_hint="--out"
        )
    if chain is not None:
        steps = parse_chain(chain, format_, low_rank, share_rank, recover_steps)
        options = dict(steps=steps, share_rank=parse_rank(share_rank, "--share-rank"), rank=rank)
        options |= dict(recover_steps=recover_steps, recover_from=recover_from)
        options["recover_options"] = recovery
        with guard():
            _export_chain(source, out, variant, spec, trust, repeats, force, options)
        return
    if share_rank is not None:
        raise typer.BadParameter("only applies to a --chain with share", param_hint="--share-rank")
    formats = parse_formats(format_ or [], low_rank is not None)
    if recover_steps and "low-rank" not in formats:
        raise typer.BadParameter(
            "only applies to the low-rank format", param_hint="--recover-steps"
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
            recover_options=recovery,
            repeats=repeats,
            onnx_atol=onnx_atol,
            force=force,
        )
        print_table(rows, metric=source.metric, console=console)
        console.print(f"Exports and compression table written to {out}/")


def _export_chain(source, out, variant, spec, trust, repeats, force, options) -> None:
    from distill.export.chain_table import print_chain
    from distill.export.sources import chain_source, open_source

    opened = open_source(source, variants=variant or (), spec=spec, trust=trust)
    rows = chain_source(opened, out, repeats=repeats, force=force, **options)
    print_chain(rows, metric=opened.metric, console=console)
    console.print(f"Chain steps and table written to {out}/")


def parse_chain(
    text: str,
    formats: list[str] | None,
    low_rank: str | None,
    share_rank: str | None,
    recover_steps: int,
) -> list[str]:
    """Split ``--chain`` (a comma list) and check what does not depend on the model."""
    from distill.export.chain import CHAIN_STEPS, FACTORISATIONS

    if formats:
        raise typer.BadParameter("--format and --chain exclude each other", param_hint="--chain")
    steps = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [step for step in steps if step not in CHAIN_STEPS]
    if not steps or unknown:
        raise typer.BadParameter(
            f"unknown step {(unknown or [''])[0]!r}; choose from {', '.join(CHAIN_STEPS)}",
            param_hint="--chain",
        )
    if share_rank is not None and "share" not in steps:
        raise typer.BadParameter("only applies to a --chain with share", param_hint="--share-rank")
    if low_rank is not None and "low-rank" not in steps:
        raise typer.BadParameter("only applies to a --chain with low-rank", param_hint="--low-rank")
    if recover_steps and not set(steps) & set(FACTORISATIONS):
        raise typer.BadParameter(
            "needs a factorisation step (share or low-rank) in --chain",
            param_hint="--recover-steps",
        )
    return steps


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


def parse_rank(text: str | None, option: str = "--low-rank") -> int | float:
    """``"16"`` → rank 16; ``"0.9"`` → energy 0.9; default 0.9."""
    if text is None:
        return 0.9
    try:
        value: int | float = int(text) if text.strip().isdigit() else float(text)
    except ValueError:
        raise typer.BadParameter(
            f"must be an integer rank or a fraction in (0, 1], got {text!r}",
            param_hint=option,
        ) from None
    valid = value >= 1 if isinstance(value, int) else 0 < value <= 1
    if not valid:
        raise typer.BadParameter(
            f"must be an integer rank >= 1 or a fraction in (0, 1], got {text}",
            param_hint=option,
        )
    return value
