"""Expected-loss curves and their minimisers (US 2023/0252281 FIGS. 6–15,
docs/formulas.md#landscape).

For a teacher distribution D over logits t and a student logit s:

    L(s) = E_{t~D}[ρ(t − s)]            (logit domain)
    L(s) = E_{t~D}[ρ(σ(t) − σ(s))]      (probability domain)
    L(s) = E_{t~D}[H(σ(t), σ(s))]       (logistic loss, either domain)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy import optimize

from distill import penalties
from distill._validation import check_choice, check_number, check_positive_int
from distill.landscape.distributions import TeacherDistribution

Domain = Literal["logit", "prob"]
LossSpec = str | Mapping[str, Any]
_PRIMARY_PARAM = {"pinball": "tau", "smoothed_pinball": "tau", "huber": "beta", "smelu": "beta"}
_SEARCH_POINTS = 801
_CHUNK = 64
_MAX_WIDENINGS = 20
_WIDEN_POINTS = 64


def parse_loss(text: str) -> LossSpec:
    """Parse a command-line loss: ``NAME`` or ``NAME:PARTS`` with ``:``-separated parts.

    A part is ``key=value`` or a bare value for the main parameter (τ of pinball and
    smoothed_pinball, β of huber and smelu); a comma list becomes a list of floats.
    ``"logistic"`` stays a name (it is not a residual penalty).

    Example: ``parse_loss("pinball:0.1,0.5,0.9")  # {"name": "pinball", "tau": [0.1, 0.5, 0.9]}``
    ``parse_loss("smoothed_pinball:0.5:beta=0.2:smoother=smelu")``
    """
    name, *parts = text.strip().split(":")
    if not parts:
        return name
    spec: dict[str, Any] = {"name": name}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep:
            if name not in _PRIMARY_PARAM:
                raise ValueError(f"`loss` {text!r}: write parameters of {name!r} as key=value")
            key, value = _PRIMARY_PARAM[name], part
        spec[key.strip()] = _parse_value(value.strip())
    return spec


def _parse_value(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    try:
        numbers = [float(item) for item in value.split(",")]
    except ValueError:
        return value
    return numbers if "," in value else numbers[0]


def _label(loss: LossSpec) -> str:
    if isinstance(loss, str):
        return loss
    params = ", ".join(f"{k}={v}" for k, v in loss.items() if k != "name")
    return f"{loss['name']}({params})"


def expected_loss(
    dist: TeacherDistribution, loss: LossSpec, *, domain: Domain = "logit"
) -> Callable[[np.ndarray], np.ndarray]:
    """The function ``s ↦ L(s)`` for one loss, vectorised over an array of student logits s.

    Args:
        dist: the teacher distribution.
        loss: ``"logistic"`` or a penalty spec for :func:`distill.penalties.get`.
        domain: residual on logits (``t − s``) or on probabilities (``σ(t) − σ(s)``).
    Returns:
        A function from float array ``(m,)`` of student logits to ``(m,)`` expected losses.
    Raises:
        ValueError: unknown domain or a bad penalty spec.
    Example: ``expected_loss(normal(), "squared")(np.array([0.0]))  # ≈ [1.0]``
    """
    check_choice("domain", domain, ("logit", "prob"))
    nodes = torch.from_numpy(dist.nodes)
    if loss == "logistic":
        targets = torch.sigmoid(nodes)

        def term(s: torch.Tensor) -> torch.Tensor:
            logits = s[:, None].expand(-1, nodes.numel())
            target = targets.expand_as(logits)
            return F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    else:
        penalty = penalties.get(loss)
        teacher = nodes if domain == "logit" else torch.sigmoid(nodes)
        student = (lambda s: s) if domain == "logit" else torch.sigmoid

        def term(s: torch.Tensor) -> torch.Tensor:
            return penalty(teacher[None, :] - student(s)[:, None])

    def evaluate(s: np.ndarray) -> np.ndarray:
        s = torch.as_tensor(np.atleast_1d(s), dtype=torch.float64)
        with torch.no_grad():
            chunks = [term(part).mean(dim=1) for part in s.split(_CHUNK)]
        return torch.cat(chunks).numpy()

    return evaluate


def _minimise(function: Callable[[np.ndarray], np.ndarray], search: np.ndarray) -> float:
    """Minimise ``function`` on a sorted ``search`` grid, then refine by bounded Brent search.

    While the grid minimum sits on an end of the grid, the grid is extended past that end
    (doubling its width each time, up to 2^20 widths). The grid minimum then brackets the
    minimiser between its two neighbours; the refined point is kept if it is no worse.
    """
    values = function(search)
    for _ in range(_MAX_WIDENINGS):
        best = int(np.argmin(values))
        if 0 < best < len(search) - 1:
            break
        step = np.linspace(1 / _WIDEN_POINTS, 1, _WIDEN_POINTS) * (search[-1] - search[0] + 1e-6)
        extra = search[0] - step[::-1] if best == 0 else search[-1] + step
        search = np.concatenate([extra, search] if best == 0 else [search, extra])
        values = np.concatenate(
            [function(extra), values] if best == 0 else [values, function(extra)]
        )
    best = int(np.argmin(values))
    low, high = search[max(best - 1, 0)], search[min(best + 1, len(search) - 1)]
    result = optimize.minimize_scalar(
        lambda x: float(function(np.array([x]))[0]),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(result.x) if result.fun <= values[best] else float(search[best])


def _search_grid(dist: TeacherDistribution, points: int = _SEARCH_POINTS) -> np.ndarray:
    """Quantile-spaced grid over the support ``[min t, max t]``: dense where the teacher mass is.

    A penalty with its minimum at ``r = 0`` has its minimiser inside the support (the landscape
    is monotone outside it); :func:`_minimise` extends the grid for one whose minimum is shifted
    (an uncentred G-SmeLU).
    """
    return np.unique(np.quantile(dist.nodes, np.linspace(0.0, 1.0, points)))


@dataclass(frozen=True)
class Minimiser:
    """One row of the minimiser table: ``logit`` = argmin_s L(s), ``prob`` = σ(logit)."""

    loss: str
    logit: float
    prob: float
    value: float


@dataclass(frozen=True, eq=False)
class LossLandscape:
    """Expected-loss curves over a grid of student logits, with minimisers and reference points.

    Attributes:
        distribution: the teacher distribution.
        domain: ``"logit"`` or ``"prob"`` (where the residual is taken).
        grid: float64 ``(m,)`` student logits the curves are evaluated at.
        curves: loss label → float64 ``(m,)`` expected losses.
        minimisers: one :class:`Minimiser` per loss, in input order.
        reference: ``{"logit_mean", "prob_mean", "median"}`` as logits.
    """

    distribution: TeacherDistribution
    domain: Domain
    grid: np.ndarray = field(repr=False)
    curves: dict[str, np.ndarray] = field(repr=False)
    minimisers: list[Minimiser]
    reference: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (curves as lists)."""
        return {
            "distribution": {"name": self.distribution.name, **self.distribution.params},
            "domain": self.domain,
            "reference": self.reference,
            "minimisers": [asdict(row) for row in self.minimisers],
            "grid": self.grid.tolist(),
            "curves": {label: curve.tolist() for label, curve in self.curves.items()},
        }


def expected_loss_landscape(
    dist: TeacherDistribution,
    losses: Sequence[LossSpec],
    *,
    domain: Domain = "logit",
    grid: np.ndarray | None = None,
    num_points: int = 401,
) -> LossLandscape:
    """Curves ``L(s) = E_{t~D}[ρ(t − s)]`` for several losses, each with its minimiser.

    Args:
        dist: teacher distribution over logits (see :mod:`distill.landscape.distributions`).
        losses: ``"logistic"`` or :func:`distill.penalties.get` specs (names or mappings).
        domain: ``"logit"`` (residual ``t − s``) or ``"prob"`` (``σ(t) − σ(s)``).
        grid: student logits to draw the curves at; default ``num_points`` points over the
            0.5–99.5% teacher quantiles widened by 10% on each side.
        num_points: grid size when ``grid`` is None.
    Returns:
        A :class:`LossLandscape`. Minimisers are searched over the whole support, not the grid.
    Raises:
        ValueError: empty ``losses``, a bad ``grid``, domain or penalty spec.
    Reference: US 2023/0252281 FIGS. 6–15; docs/formulas.md#landscape (known minimisers).
    Example:
        >>> result = expected_loss_landscape(skew_normal(skew=4.0), ["squared", "absolute"])
        >>> [round(row.logit, 2) for row in result.minimisers]  # mean, median
        [0.77, 0.67]
    """
    if not losses:
        raise ValueError("`losses` must name at least one loss, got none")
    if grid is None:
        grid = _default_grid(dist, check_positive_int("num_points", num_points, minimum=2))
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2 or not np.isfinite(grid).all():
        raise ValueError(
            f"`grid` must be 1-D, finite, with at least 2 points, got shape {grid.shape}"
        )
    search = _search_grid(dist)
    curves, rows = {}, []
    for loss in losses:
        label, function = _label(loss), expected_loss(dist, loss, domain=domain)
        best = _minimise(function, search)
        curves[label] = function(grid)
        rows.append(Minimiser(label, best, _sigmoid(best), float(function(np.array([best]))[0])))
    return LossLandscape(dist, domain, grid, curves, rows, dist.reference_points())


def _default_grid(dist: TeacherDistribution, num_points: int) -> np.ndarray:
    """``num_points`` student logits over the 0.5–99.5% teacher quantiles widened by 10%."""
    low, high = dist.quantile(0.005), dist.quantile(0.995)
    pad = 0.1 * (high - low) + 1e-6
    return np.linspace(low - pad, high + pad, num_points)


def huber_beta_for_prob_mean(
    dist: TeacherDistribution, *, bounds: tuple[float, float] = (1e-3, 1e3)
) -> float:
    """The Huber β whose logit-domain minimiser is the probability mean ``logit(E[σ(t)])``.

    Huber's minimiser moves from the median (β → 0) to the logit mean (β → ∞); on a skewed
    teacher the probability mean often lies between them, and this finds β by Brent root-finding
    on ``log β``.

    Args:
        dist: teacher distribution over logits.
        bounds: the β interval searched, ``0 < low < high``.
    Returns:
        β as a float.
    Raises:
        ValueError: if no β in ``bounds`` reaches the probability mean (it lies outside the
            range the Huber minimiser covers there).
    Reference: US 2023/0252281 ¶0109; docs/formulas.md#landscape.
    Example:
        >>> round(huber_beta_for_prob_mean(skew_normal(skew=4.0)), 3)
        0.559
    """
    low, high = bounds
    check_number("bounds[0]", low, low=0, low_open=True)
    check_number("bounds[1]", high, low=low, low_open=True)
    target = dist.prob_mean
    lo_ref, hi_ref = sorted((dist.median, dist.logit_mean))
    search = np.linspace(lo_ref - 1e-3, hi_ref + 1e-3, 65)

    def gap(log_beta: float) -> float:
        huber = expected_loss(dist, {"name": "huber", "beta": float(np.exp(log_beta))})
        return _minimise(huber, search) - target

    gap_low, gap_high = gap(np.log(low)), gap(np.log(high))
    if gap_low * gap_high > 0:
        raise ValueError(
            f"no `beta` in [{low:g}, {high:g}] puts the Huber minimiser on the probability mean "
            f"{target:.4f}: it reaches [{gap_low + target:.4f}, {gap_high + target:.4f}] there"
        )
    return float(np.exp(optimize.brentq(gap, np.log(low), np.log(high), xtol=1e-12)))


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))
