"""``distill landscape``: expected-loss curves for a teacher distribution, with minimisers."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from distill._io import write_atomic
from distill.cli._common import EXIT_USAGE, print_error
from distill.landscape import DEFAULT_NODES

if TYPE_CHECKING:  # the lab (scipy, matplotlib) loads when the command runs, not for --help
    from distill.landscape import LossLandscape, TeacherDistribution

DEFAULT_LOSSES = ["squared", "absolute", "logistic", "pinball:0.1,0.5,0.9", "huber:1.0"]


class DistName(str, Enum):
    """Teacher distribution families of the command line."""

    normal = "normal"
    skew_normal = "skew-normal"
    skewed_laplace = "skewed-laplace"
    bimodal = "bimodal"
    empirical = "empirical"


class DomainName(str, Enum):
    """Where the residual is taken."""

    logit = "logit"
    prob = "prob"


_FAMILIES = {
    DistName.normal: ("normal", {"loc", "scale"}),
    DistName.skew_normal: ("skew_normal", {"skew", "loc", "scale"}),
    DistName.skewed_laplace: ("skewed_laplace", {"skew", "loc", "scale"}),
    DistName.bimodal: ("bimodal", {"loc", "scale", "loc2", "scale2", "weight"}),
}


def landscape(
    dist: Annotated[DistName, typer.Option(help="Teacher logit distribution.")] = DistName.normal,
    skew: Annotated[
        float | None, typer.Option(help="Skew: skew-normal shape; skewed-laplace log scale ratio.")
    ] = None,
    loc: Annotated[float | None, typer.Option(help="Location (bimodal: first mode).")] = None,
    scale: Annotated[float | None, typer.Option(help="Scale (bimodal: first mode).")] = None,
    loc2: Annotated[float | None, typer.Option(help="Bimodal: second mode's location.")] = None,
    scale2: Annotated[float | None, typer.Option(help="Bimodal: second mode's scale.")] = None,
    weight: Annotated[float | None, typer.Option(help="Bimodal: first mode's weight.")] = None,
    sample: Annotated[
        Path | None,
        typer.Option(
            help="Empirical teacher logits: a score-cache folder or .parquet (see --column), "
            ".npy, or .txt with one number per line."
        ),
    ] = None,
    column: Annotated[str, typer.Option(help="Parquet column of --sample.")] = "logits",
    domain: Annotated[
        DomainName, typer.Option(help="Residual on logits (t − s) or probabilities.")
    ] = DomainName.logit,
    loss: Annotated[
        list[str] | None,
        typer.Option(
            help="Loss (repeatable): logistic, squared, absolute, log_cosh, pinball:0.1,0.5,0.9, "
            "huber:1.0, smoothed_pinball:0.5:beta=0.2, gsmelu:alpha=1:beta=1:g_minus=-0.5:"
            f"g_plus=1:center=true. Default: {', '.join(DEFAULT_LOSSES)}.",
            show_default=False,
        ),
    ] = None,
    nodes: Annotated[
        int, typer.Option(min=3, help="Quadrature nodes of a parametric distribution.")
    ] = DEFAULT_NODES,
    out: Annotated[
        Path, typer.Option(help="Figure (PNG); the curves and table go next to it as .json.")
    ] = Path("landscape.png"),
    huber_beta: Annotated[
        bool, typer.Option("--huber-beta", help="Also find the Huber β hitting the prob mean.")
    ] = False,
) -> None:
    """Plot E[ρ(t − s)] against the student's value s for a teacher distribution and print
    where each loss is minimised, next to the teacher's logit mean, probability mean and median
    (docs/formulas.md, "Expected-loss landscape").

    Example: distill landscape --dist skew-normal --skew 4 --loss squared --loss absolute
    --loss pinball:0.1,0.5,0.9 --loss huber:1.0 --out landscape.png
    """
    options = {"skew": skew, "loc": loc, "scale": scale, "loc2": loc2, "scale2": scale2}
    options["weight"] = weight
    from distill import landscape as lab

    try:
        teacher = _distribution(dist, sample, column, options, nodes)
        specs = [lab.parse_loss(text) for text in loss or DEFAULT_LOSSES]
        result = lab.expected_loss_landscape(teacher, specs, domain=domain.value)
        beta = _huber_beta(teacher) if huber_beta else None
        lab.plot_landscape(result, out)
        json_path = write_atomic(out.with_suffix(".json"), _json(result, beta))
    except (ValueError, TypeError, OSError) as error:
        print_error(str(error))
        raise typer.Exit(EXIT_USAGE) from None
    console = Console()
    console.print(minimiser_table(result))
    if isinstance(beta, float):
        console.print(f"Huber β with its minimiser on the probability mean: {beta:.6g}")
    elif beta is not None:
        console.print(f"Huber β: {escape(beta)}", highlight=False)
    console.print(f"Wrote {out} and {json_path}")


def _distribution(
    dist: DistName,
    sample: Path | None,
    column: str,
    options: dict[str, float | None],
    nodes: int,
) -> TeacherDistribution:
    from distill import landscape as lab

    given = {key for key, value in options.items() if value is not None}
    if dist is DistName.empirical or sample is not None:
        if sample is None or dist is not DistName.empirical:
            raise ValueError("use --sample PATH together with --dist empirical")
        if given:
            raise ValueError(f"--{sorted(given)[0]} does not apply to --dist empirical")
        return lab.read_sample(sample, column=column)
    family, allowed = _FAMILIES[dist]
    if given - allowed:
        raise ValueError(f"--{sorted(given - allowed)[0]} does not apply to --dist {dist.value}")
    if "skew" in allowed and "skew" not in given:
        raise ValueError(f"--dist {dist.value} needs --skew (0 is symmetric)")
    return getattr(lab, family)(**{key: options[key] for key in given}, num_nodes=nodes)


def minimiser_table(result: LossLandscape) -> Table:
    """A rich table: each loss's minimiser (logit and probability), then the reference points."""
    from scipy.special import expit

    name = result.distribution.name
    table = Table(title=f"Minimisers of E[ρ] for {name} teacher logits ({result.domain} domain)")
    for header in ("loss", "argmin s", "σ(argmin)", "expected loss there"):
        table.add_column(header, justify="left" if header == "loss" else "right")
    for row in result.minimisers:
        table.add_row(row.loss, f"{row.logit:.4f}", f"{row.prob:.4f}", f"{row.value:.4g}")
    table.add_section()
    for key, value in result.reference.items():
        label = f"[italic]{key.replace('_', ' ')}[/]"
        table.add_row(label, f"{value:.4f}", f"{expit(value):.4f}", "")
    return table


def _huber_beta(teacher: TeacherDistribution) -> float | str:
    """β for the probability mean, or why there is none (a finding, not an error)."""
    from distill.landscape import huber_beta_for_prob_mean

    try:
        return huber_beta_for_prob_mean(teacher)
    except ValueError as error:
        return str(error)


def _json(result: LossLandscape, beta: float | str | None) -> str:
    data: dict[str, Any] = result.to_dict()
    if beta is not None:
        data["huber_beta_for_prob_mean"] = beta if isinstance(beta, float) else None
    return json.dumps(data, indent=1)
