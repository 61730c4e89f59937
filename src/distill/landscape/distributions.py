"""Teacher distributions over logits for the loss-landscape lab (docs/formulas.md#landscape).

A distribution is held as ``n`` equal-weight quantile nodes ``t_i = F⁻¹((i + ½)/n)``
(midpoint quadrature in probability space: deterministic, exact for medians and quantiles), or
as the sorted values of an empirical sample, so ``E[f(t)] = mean_i f(t_i)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import special, stats

from distill._extras import require
from distill._validation import check_number, check_positive_int
from distill.landscape import DEFAULT_NODES


@dataclass(frozen=True, eq=False)
class TeacherDistribution:
    """A teacher distribution over logits, held as sorted equal-weight nodes.

    Args:
        name: the family (``"normal"``, ``"skew-normal"``, ...).
        params: its parameters, for display and JSON.
        nodes: float64 ``(n,)``, sorted; ``E[f(t)] = mean(f(nodes))``.
    """

    name: str
    params: dict[str, float]
    nodes: np.ndarray = field(repr=False)

    def quantile(self, q: float) -> float:
        """The q-quantile of t (linear interpolation between nodes)."""
        return float(np.quantile(self.nodes, q))

    @property
    def logit_mean(self) -> float:
        """``E[t]``: the minimiser of squared loss on logits."""
        return float(self.nodes.mean())

    @property
    def prob_mean(self) -> float:
        """``logit(E[σ(t)])``: the minimiser of logistic loss."""
        return float(special.logit(special.expit(self.nodes).mean()))

    @property
    def median(self) -> float:
        """The median of t (of σ(t) too, in logits, since σ is monotone)."""
        return self.quantile(0.5)

    def reference_points(self) -> dict[str, float]:
        """``{"logit_mean", "prob_mean", "median"}``, all as logits."""
        return {"logit_mean": self.logit_mean, "prob_mean": self.prob_mean, "median": self.median}


def _from_ppf(name: str, params: dict[str, float], ppf: Callable, num_nodes: int):
    check_positive_int("num_nodes", num_nodes, minimum=3)
    levels = (np.arange(num_nodes) + 0.5) / num_nodes
    return TeacherDistribution(name, params, np.sort(np.asarray(ppf(levels), dtype=np.float64)))


def normal(*, loc: float = 0.0, scale: float = 1.0, num_nodes: int = DEFAULT_NODES):
    """Normal teacher logits ``t ~ N(loc, scale²)``.

    Args:
        loc, scale: mean and standard deviation (``scale > 0``).
        num_nodes: quadrature nodes ``n`` (≥ 3); errors shrink like ``1/n``.
    Returns:
        A :class:`TeacherDistribution` (likewise for every constructor here).
    Raises:
        ValueError: ``scale <= 0`` or ``num_nodes < 3`` (likewise below).
    Reference: US 2023/0252281 FIGS. 6–15 (teacher distributions over logits);
    docs/formulas.md#landscape.
    Example: ``normal(loc=-1.0, scale=2.0).median  # -1.0``
    """
    check_number("loc", loc)
    check_number("scale", scale, low=0, low_open=True)
    rv = stats.norm(loc=loc, scale=scale)
    return _from_ppf("normal", {"loc": loc, "scale": scale}, rv.ppf, num_nodes)


def skew_normal(
    *, skew: float, loc: float = 0.0, scale: float = 1.0, num_nodes: int = DEFAULT_NODES
):
    """Skew-normal teacher logits (density ``2/scale·φ(z)·Φ(skew·z)``, ``z = (t − loc)/scale``).

    ``skew > 0`` gives a long right tail, ``skew = 0`` the normal (scipy's ``skewnorm``).
    Args, Returns, Raises: as :func:`normal`; ``skew`` is the shape parameter.
    Example: ``skew_normal(skew=4.0).logit_mean > skew_normal(skew=4.0).median  # True``
    """
    check_number("skew", skew)
    check_number("loc", loc)
    check_number("scale", scale, low=0, low_open=True)
    rv = stats.skewnorm(skew, loc=loc, scale=scale)
    return _from_ppf("skew-normal", {"skew": skew, "loc": loc, "scale": scale}, rv.ppf, num_nodes)


def skewed_laplace(
    *, skew: float, loc: float = 0.0, scale: float = 1.0, num_nodes: int = DEFAULT_NODES
):
    """Asymmetric Laplace teacher logits with mode ``loc``.

    Right scale ``scale·e^{skew/2}``, left scale ``scale·e^{−skew/2}`` (so ``skew`` is the log of
    their ratio; scipy's ``laplace_asymmetric`` with ``κ = e^{−skew/2}``).
    Args, Returns, Raises: as :func:`normal`.
    Example: ``skewed_laplace(skew=1.0).median > 0  # True``
    """
    check_number("skew", skew)
    check_number("loc", loc)
    check_number("scale", scale, low=0, low_open=True)
    rv = stats.laplace_asymmetric(np.exp(-skew / 2), loc=loc, scale=scale)
    params = {"skew": skew, "loc": loc, "scale": scale}
    return _from_ppf("skewed-laplace", params, rv.ppf, num_nodes)


def bimodal(
    *,
    loc: float = -2.0,
    scale: float = 1.0,
    loc2: float = 2.0,
    scale2: float = 1.0,
    weight: float = 0.5,
    num_nodes: int = DEFAULT_NODES,
):
    """Two-normal mixture ``weight·N(loc, scale²) + (1 − weight)·N(loc2, scale2²)``.

    The quantile function is the inverse of the exact mixture CDF, tabulated on a fine grid.
    Args, Returns, Raises: as :func:`normal`; ``weight`` in [0, 1] is the first mode's share.
    Example: ``bimodal(weight=0.5).median  # ≈ 0.0``
    """
    check_number("loc", loc)
    check_number("loc2", loc2)
    check_number("scale", scale, low=0, low_open=True)
    check_number("scale2", scale2, low=0, low_open=True)
    check_number("weight", weight, low=0, high=1)
    low = min(loc - 9 * scale, loc2 - 9 * scale2)
    high = max(loc + 9 * scale, loc2 + 9 * scale2)
    grid = np.linspace(low, high, 200_001)
    cdf = weight * stats.norm.cdf(grid, loc, scale) + (1 - weight) * stats.norm.cdf(
        grid, loc2, scale2
    )
    params = {"loc": loc, "scale": scale, "loc2": loc2, "scale2": scale2, "weight": weight}
    return _from_ppf("bimodal", params, lambda u: np.interp(u, cdf, grid), num_nodes)


def empirical(values: Any, *, name: str = "empirical") -> TeacherDistribution:
    """An empirical sample of teacher logits (e.g. a column of a teacher score cache).

    Args:
        values: ``(n,)`` array-like or tensor of finite logits, ``n ≥ 2``.
    Returns:
        A :class:`TeacherDistribution` whose nodes are the sorted values.
    Raises:
        ValueError: if ``values`` is not 1-D, has fewer than 2 entries or a NaN/inf.
    Example: ``empirical([0.0, 1.0, 5.0]).median  # 1.0``
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"`values` must be 1-D with at least 2 entries, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"`values` must be finite, got {bad} NaN/inf value(s)")
    return TeacherDistribution(name, {"n": float(array.size)}, np.sort(array))


def read_sample(path: str | Path, *, column: str = "logits") -> TeacherDistribution:
    """Read teacher logits: a score-cache folder or ``.parquet`` file, ``.npy``, or text.

    A folder is a :func:`distill.teachers.cache.score` cache (every ``*.parquet`` shard in it);
    Parquet is read from ``column`` (the cache's ``logits``); text has one number per line.

    Args:
        path: folder, ``.parquet``, ``.npy``, ``.txt`` or ``.csv``.
        column: the Parquet column of scalar logits.
    Returns:
        An :func:`empirical` distribution.
    Raises:
        ValueError: unknown suffix, missing or non-scalar column, or a line that is not a number
            (``file:line``).
    Example: ``read_sample("runs/demo/scores")``
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".parquet":
        values = _parquet_column(path, column)
    elif suffix == ".npy":
        values = np.load(path, allow_pickle=False)
    elif suffix in (".txt", ".csv"):
        values = [_parse_line(path, number, line) for number, line in _lines(path)]
    else:
        raise ValueError(
            f"{path}: must be a folder or end in .parquet, .npy, .txt or .csv, got {suffix!r}"
        )
    return empirical(values, name=f"empirical:{path.name}")


def _parquet_column(path: Path, column: str) -> np.ndarray:
    if path.is_dir() and not any(path.glob("*.parquet")):
        raise ValueError(f"{path}: no .parquet files in this folder")
    pa = require("pyarrow", extra="data")
    table = require("pyarrow.parquet", extra="data").read_table(path)
    if column not in table.column_names:
        raise ValueError(f"{path}: `column` must be one of {table.column_names}, got {column!r}")
    data = table.column(column)
    if not (pa.types.is_floating(data.type) or pa.types.is_integer(data.type)):
        raise ValueError(
            f"{path}: column {column!r} must hold one number per row (e.g. binary or ranking "
            f"logits), got type {data.type}"
        )
    return data.to_numpy()


def _lines(path: Path):
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def _parse_line(path: Path, number: int, line: str) -> float:
    try:
        return float(line.strip())
    except ValueError:
        raise ValueError(f"{path}:{number}: expected one number, got {line.strip()!r}") from None
