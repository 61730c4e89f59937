"""Penalties ρ(r) on a residual ``r = teacher − student`` (docs/formulas.md#penalties).

Elementwise: the result has ``r``'s shape; a 1-D ``tau`` of K quantiles adds a trailing axis.
:func:`get` turns a config spec into a :class:`Penalty` (printable, comparable, r -> r's shape).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

from distill._validation import check_choice, check_float_tensor, check_number
from distill.smooth_relu import gsmelu, smelu

Smoother = Literal["smelu", "softplus", "relu2", "swish", "sigmoid"]
SMOOTHERS = ("smelu", "softplus", "relu2", "swish", "sigmoid")
Tau = float | Sequence[float] | torch.Tensor


def squared(r: torch.Tensor) -> torch.Tensor:
    """Squared error ``ρ(r) = r²``, minimised in expectation at the mean
    (docs/formulas.md#penalties; Eq. 3).

    Args:
        r: residual, float tensor of any shape.

    Returns:
        ``r²``, same shape.

    Raises:
        TypeError: ``r`` is not a floating-point tensor.

    Example:
        >>> squared(torch.tensor([-2.0, 3.0]))
        tensor([4., 9.])
    """
    return check_float_tensor("r", r).square()


def absolute(r: torch.Tensor) -> torch.Tensor:
    """Absolute error ``ρ(r) = |r|``, minimised in expectation at the median.

    Reference: US 2023/0252281 Eq. 8; docs/formulas.md#penalties.

    Args:
        r: residual, float tensor of any shape.

    Returns:
        ``|r|``, same shape.

    Raises:
        TypeError: ``r`` is not a floating-point tensor.

    Example:
        >>> absolute(torch.tensor([-2.0, 3.0]))
        tensor([2., 3.])
    """
    return check_float_tensor("r", r).abs()


def _tau_tensor(tau: Tau, r: torch.Tensor) -> float | torch.Tensor:
    """A float tau, or a 1-D tensor of quantiles on ``r``'s device/dtype; values in [0, 1]."""
    if isinstance(tau, (int, float)) and not isinstance(tau, bool):
        return check_number("tau", tau, low=0.0, high=1.0)
    values = torch.as_tensor(tau, dtype=r.dtype, device=r.device)
    if values.ndim != 1 or values.numel() == 0:
        shape = tuple(values.shape)
        raise ValueError(f"`tau` must be a number or a non-empty 1-D sequence, got shape {shape}")
    for value in values.tolist():
        check_number("tau", value, low=0.0, high=1.0)
    return values


def _trailing(r: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
    """``r`` with a trailing quantile axis when ``tau`` is a tensor of K quantiles."""
    return r.unsqueeze(-1) if isinstance(tau, torch.Tensor) else r


def pinball(r: torch.Tensor, tau: Tau) -> torch.Tensor:
    """Pinball (quantile) loss ``ρ_τ(r) = max(τ·r, (τ − 1)·r) = τ·ReLU(r) + (1 − τ)·ReLU(−r)``.

    Its expected value over ``t`` is minimised at the τ-quantile of ``t``. A 1-D ``tau`` of K
    quantiles is broadcast on a new trailing axis. ``pinball(r, 0.5) = |r|/2`` is half of
    :func:`absolute`: a loss weight tuned for one is not the weight for the other (double it).
    Koenker & Bassett (1978); US 2023/0252281 Eqs. 5–7.

    Args:
        r: residual ``(...)``.
        tau: a quantile in ``[0, 1]`` (0 and 1 are the one-sided ReLU limits), or K quantiles as
            a sequence or 1-D tensor.

    Returns:
        ``(...)`` for a number ``tau``; ``(..., K)`` for K quantiles.

    Raises:
        TypeError: ``r`` is not floating point or ``tau`` is not a number.
        ValueError: a ``tau`` outside ``[0, 1]`` or a ``tau`` that is not 1-D.

    Example:
        >>> pinball(torch.tensor([-1.0, 2.0]), 0.9)
        tensor([0.1000, 1.8000])
    """
    check_float_tensor("r", r)
    tau = _tau_tensor(tau, r)
    r = _trailing(r, tau)
    return tau * F.relu(r) + (1 - tau) * F.relu(-r)


def huber(r: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Huber penalty in smooth-L1 form, ``torch.nn.functional.smooth_l1_loss(r, 0, beta=β)``.

    ``ρ(r) = r²/(2β)`` if ``|r| < β`` else ``|r| − β/2``; equals ``huber_loss(delta=β) / β``.
    Its minimiser lies between the median (β → 0) and the mean (β → ∞). Huber (1964);
    US 2023/0252281 ¶0124.

    Args:
        r: residual, any shape.
        beta: ``β > 0``, the width of the quadratic zone.

    Returns:
        Same shape as ``r``.

    Raises:
        TypeError: ``r`` is not floating point.
        ValueError: ``beta`` not in ``(0, inf)``.

    Example:
        >>> huber(torch.tensor([0.5, 3.0]), beta=1.0)
        tensor([0.1250, 2.5000])
    """
    check_float_tensor("r", r)
    beta = check_number("beta", beta, low=0.0, low_open=True)
    return F.smooth_l1_loss(r, torch.zeros_like(r), reduction="none", beta=beta)


def log_cosh(r: torch.Tensor) -> torch.Tensor:
    """Log-cosh penalty ``ρ(r) = log cosh r = |r| + softplus(−2|r|) − log 2``.

    The second form never overflows (float32 ``cosh`` overflows for ``|r| > 89``). Its minimiser
    lies between the median and the mean (docs/formulas.md#penalties; US 2023/0252281 ¶0124).

    Args:
        r: residual, any shape.

    Returns:
        Same shape as ``r``.

    Raises:
        TypeError: ``r`` is not floating point.

    Example:
        >>> log_cosh(torch.tensor([0.0, 100.0]))
        tensor([ 0.0000, 99.3069])
    """
    magnitude = check_float_tensor("r", r).abs()
    return magnitude + F.softplus(-2.0 * magnitude) - math.log(2.0)


def _smoother(name: str, beta: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The smooth ReLU φ used by :func:`smoothed_pinball`."""
    return {
        "smelu": lambda x: smelu(x, beta),
        "softplus": lambda x: beta * F.softplus(x / beta),
        "relu2": lambda x: F.relu(x).square(),
        "swish": lambda x: x * torch.sigmoid(x / beta),
    }[name]


def smoothed_pinball(
    r: torch.Tensor, tau: Tau, *, smoother: Smoother = "smelu", beta: float = 1.0
) -> torch.Tensor:
    """Pinball with its ReLU replaced by a smooth φ: ``ρ_τ(r) = τ·φ(r) + (1 − τ)·φ(−r)``.

    φ is ``smelu(β)`` (Huberised pinball: equals pinball outside ``[−β, β]`` and equals
    ``gsmelu(g₋=τ−1, g₊=τ, α=β, t=(1−τ)β)``), ``softplus`` (``β·log(1 + exp(x/β))``),
    ``relu2`` (``ReLU(x)²``: expectile regression; ``beta`` is not used) or ``swish``
    (``x·σ(x/β)``). ``sigmoid`` (the Sigmoid smoother of US 2023/0252281, claim 6) replaces
    the pinball's gradient step by a sigmoid, ``ρ'_τ(r) = τ − σ(−r/β)``, i.e. ``ρ_τ(r) = τ·r +
    β·log(1 + exp(−r/β))``; since ``β·softplus(r/β) = r + β·softplus(−r/β)`` it is the
    ``softplus`` smoother up to a constant, and that constant is 0 (one exact ``logaddexp``
    instead of two thresholded softplus). A 1-D ``tau`` adds a trailing axis as in
    :func:`pinball`. Reference: docs/formulas.md#penalties, docs/methods.md; Newey & Powell
    (1987) for expectiles.

    Weights: with ``relu2`` and a symmetric set of τ the shared minimiser is exactly the mean
    (the τ and 1 − τ expectile terms add up to ``r²/2``); ``pinball(0.5)`` is ``|r|/2``, half of
    L1, so a weight tuned for ``absolute`` is not the weight for ``pinball(0.5)``.

    Args:
        r: residual ``(...)``.
        tau: a quantile in ``[0, 1]`` or K quantiles (sequence / 1-D tensor).
        smoother: ``"smelu"``, ``"softplus"``, ``"relu2"``, ``"swish"`` or ``"sigmoid"``.
        beta: smoothing scale ``β > 0``.

    Returns:
        ``(...)`` or ``(..., K)``.

    Raises:
        TypeError: ``r`` is not floating point.
        ValueError: bad ``tau``, ``smoother`` or ``beta``.

    Example:
        >>> smoothed_pinball(torch.tensor([-3.0, 0.0, 3.0]), 0.9, beta=1.0)
        tensor([0.3000, 0.2500, 2.7000])
    """
    check_float_tensor("r", r)
    check_choice("smoother", smoother, SMOOTHERS)
    beta = check_number("beta", beta, low=0.0, low_open=True)
    tau = _tau_tensor(tau, r)
    r = _trailing(r, tau)
    if smoother == "sigmoid":
        return tau * r + beta * torch.logaddexp(torch.zeros_like(r), -r / beta)
    phi = _smoother(smoother, beta)
    return tau * phi(r) + (1 - tau) * phi(-r)


PENALTIES: dict[str, Callable[..., torch.Tensor]] = {
    "squared": squared,
    "absolute": absolute,
    "pinball": pinball,
    "huber": huber,
    "log_cosh": log_cosh,
    "smelu": smelu,
    "gsmelu": gsmelu,
    "smoothed_pinball": smoothed_pinball,
}


@dataclass(frozen=True)
class Penalty:
    """A named penalty with its parameters, built and validated by :func:`get`.

    Calling it applies ``PENALTIES[name](r, **params)`` and averages a trailing quantile axis
    (multi-quantile = ``mean_k pinball(τ_k)``, docs/formulas.md#penalties): the result has
    ``r``'s shape.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        loss = PENALTIES[self.name](r, **self.params)
        return loss.mean(dim=-1) if loss.ndim > r.ndim else loss

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"Penalty({self.name}{', ' if args else ''}{args})"

    def __hash__(self) -> int:
        return hash((self.name, repr(sorted(self.params.items()))))

    def spec(self) -> dict[str, Any]:
        """The JSON/TOML-able mapping that :func:`get` turns back into this penalty."""
        return {"name": self.name, **self.params}


def _split_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"`penalty` must be a name, a mapping or a Penalty, got {type(spec).__name__}"
        )
    if "name" not in spec:
        raise ValueError(f"`penalty` mapping needs a 'name' key, got keys {sorted(spec)}")
    params = {key: value for key, value in spec.items() if key != "name"}
    return spec["name"], params


def _normalise(value: Any) -> Any:
    """Tensors and sequences of quantiles become plain lists of floats (printable, JSON-able)."""
    if isinstance(value, (list, tuple, torch.Tensor)):
        return [float(v) for v in torch.as_tensor(value, dtype=torch.float64).reshape(-1)]
    return value


def get(spec: str | Mapping[str, Any] | Penalty) -> Penalty:
    """Turn a config spec into a validated :class:`Penalty`.

    ``spec`` is a name (``"huber"``) or a mapping with a ``"name"`` key and the function's
    parameters as keys (missing ones take the function's defaults, which the Penalty records),
    e.g. ``{"name": "pinball", "tau": [0.1, 0.5, 0.9]}`` or ``{"name": "gsmelu", "alpha": 1,
    "beta": 1, "g_minus": -0.5, "g_plus": 0.5, "center": True}``. A Penalty is returned as is.

    Args:
        spec: name, mapping or Penalty.

    Returns:
        A Penalty: ``r -> tensor of r's shape`` (docs/formulas.md#penalties).

    Raises:
        TypeError: ``spec`` of another type, or a parameter of the wrong type.
        ValueError: unknown name, unknown or missing keys, or invalid values (the allowed names
            and keys are listed in the message).

    Example:
        >>> get({"name": "pinball", "tau": [0.25, 0.75]})(torch.tensor([1.0]))
        tensor([0.5000])
    """
    if isinstance(spec, Penalty):
        return spec
    name, params = _split_spec(spec)
    check_choice("penalty", name, tuple(PENALTIES))
    allowed = list(inspect.signature(PENALTIES[name]).parameters.values())[1:]
    unknown = sorted(set(params) - {p.name for p in allowed})
    if unknown:
        keys = ", ".join(repr(p.name) for p in allowed) or "none"
        raise ValueError(f"penalty {name!r} got unknown key(s) {unknown}; allowed keys: {keys}")
    missing = [p.name for p in allowed if p.default is p.empty and p.name not in params]
    if missing:
        raise ValueError(f"penalty {name!r} needs key(s) {missing}")
    values = {p.name: params.get(p.name, p.default) for p in allowed}
    penalty = Penalty(name, {key: _normalise(value) for key, value in values.items()})
    penalty(torch.zeros(1))
    return penalty
