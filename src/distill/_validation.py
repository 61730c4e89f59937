"""Argument and shape checks: the one place where error messages are worded.

Every message names the argument, the constraint and the value received, e.g.
``"`tau` must be in (0, 1), got 1.2"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

REDUCTIONS = ("none", "mean", "sum")


class NonFiniteError(ValueError):
    """A tensor argument holds NaN or inf (raised by :func:`check_finite`)."""


def check_tensor(name: str, value: Any) -> torch.Tensor:
    """Require a ``torch.Tensor`` (not a list, array or number)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_float_tensor(name: str, value: Any) -> torch.Tensor:
    """Require a floating-point tensor (integer logits are a common silent bug)."""
    check_tensor(name, value)
    if not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_same_shape(name: str, value: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """Shapes must match exactly; they are never broadcast silently."""
    if value.shape != ref.shape:
        raise ValueError(
            f"`{name}` shape {tuple(value.shape)} does not match "
            f"`{ref_name}` shape {tuple(ref.shape)}"
        )


def check_same_device_dtype(
    name: str, value: torch.Tensor, ref_name: str, ref: torch.Tensor
) -> None:
    """Tensors combined in one loss must live on one device with one dtype."""
    if value.device != ref.device:
        raise ValueError(
            f"`{name}` is on device {value.device} but `{ref_name}` is on {ref.device}"
        )
    if value.dtype != ref.dtype:
        raise TypeError(f"`{name}` has dtype {value.dtype} but `{ref_name}` has {ref.dtype}")


def check_pair(name: str, value: Any, ref_name: str, ref: torch.Tensor) -> torch.Tensor:
    """A second float tensor of the same shape, device and dtype as ``ref``."""
    check_float_tensor(name, value)
    check_same_shape(name, value, ref_name, ref)
    check_same_device_dtype(name, value, ref_name, ref)
    return value


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real number inside an interval; the message states the interval in math notation."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if math.isnan(value) or below or above:
        raise ValueError(
            f"`{name}` must be in {_interval(low, high, low_open, high_open)}, got {_fmt(value)}"
        )
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of a fixed set of option strings."""
    choices = tuple(choices)
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")
    return value


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """An integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def value_range(tensor: torch.Tensor) -> tuple[float, float]:
    """``(min, max)`` of a non-empty tensor: one ``aminmax`` pass and one host read (the fast
    path of per-batch range checks)."""
    low, high = torch.stack(torch.aminmax(tensor)).tolist()
    return low, high


def check_finite(name: str, value: torch.Tensor, *, allow_neg_inf: bool = False) -> torch.Tensor:
    """No NaN or inf entries (``allow_neg_inf``: −inf allowed); reports how many and the first."""
    bad = ~_finite(value, allow_neg_inf)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        allowed = " (-inf allowed)" if allow_neg_inf else ""
        raise NonFiniteError(
            f"`{name}` must be finite{allowed}, got {int(bad.sum())} NaN/inf value(s), "
            f"first at index {first}"
        )
    return value


def check_loss_inputs(
    named: dict[str, torch.Tensor | None], *, allow_neg_inf: Iterable[str] = ()
) -> None:
    """Non-empty tensors without NaN/inf, checked with one host read for all of them.

    The losses run on every training step, so the common case costs one sum per tensor and a
    single device-to-host read: a sum is finite only if every entry is (NaN and ±inf
    propagate). Only a non-finite sum (or a finite-valued overflow) looks at the entries.

    Raises:
        ValueError: an empty tensor (``"`x` must be non-empty, got shape (0, 3)"``), or NaN/inf
            entries (the argument, the count and the first bad index are named).
    """
    tensors = {name: value for name, value in named.items() if value is not None}
    for name, value in tensors.items():
        if value.numel() == 0:
            raise ValueError(f"`{name}` must be non-empty, got shape {tuple(value.shape)}")
    with torch.no_grad():
        total = sum(
            value.sum(dtype=torch.promote_types(value.dtype, torch.float32))
            for value in tensors.values()
        )
    if math.isfinite(float(total)):
        return
    allowed = set(allow_neg_inf)
    for name, value in tensors.items():
        check_finite(name, value, allow_neg_inf=name in allowed)


def _finite(value: torch.Tensor, allow_neg_inf: bool) -> torch.Tensor:
    if allow_neg_inf:
        return ~torch.isnan(value) & (value != math.inf)
    return torch.isfinite(value)


def _interval(low, high, low_open, high_open) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else _fmt(low)
    hi = "inf" if high is None else _fmt(high)
    return f"{left}{lo}, {hi}{right}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))
