"""Temperature-scaled probabilities, ensemble means, top-k teachers and label smoothing.

Maths: docs/formulas.md (#temperature, #classification-kd). ``temperature`` is a number in
``[0, inf]``: ``0`` is the hard limit (one-hot argmax / step) and ``inf`` the uniform limit; a
negative or NaN temperature raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from distill._validation import (
    check_choice,
    check_float_tensor,
    check_number,
    check_pair,
    check_positive_int,
    check_tensor,
    value_range,
)

EnsembleMean = Literal["arithmetic", "geometric"]


def _check_temperature(temperature: float) -> float:
    """Validate a temperature in ``[0, inf]`` (negative or NaN raises)."""
    return check_number("temperature", temperature, low=0.0)


def _check_dim(logits: torch.Tensor, dim: Any) -> int:
    """A class dimension that exists in ``logits`` (negative counts from the end)."""
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"`dim` must be an integer, got {type(dim).__name__}")
    if not -logits.ndim <= dim < max(logits.ndim, 1):
        raise ValueError(
            f"`dim` must be in [{-logits.ndim}, {logits.ndim - 1}] for logits of shape "
            f"{tuple(logits.shape)}, got {dim}"
        )
    return dim


def _scaled_shifted(logits: torch.Tensor, temperature: float, dim: int) -> torch.Tensor:
    """``(z − max z) / T``: exact for softmax (shift-invariant) and free of overflow.

    Only ``T < 1`` can overflow finite logits (``z / T`` grows), so the shift, which costs a
    reduction and a subtraction on every call, is skipped for ``T ≥ 1``.
    """
    if temperature >= 1.0:
        return logits if temperature == 1.0 else logits / temperature
    shift = logits.detach().amax(dim=dim, keepdim=True).clamp_min(torch.finfo(logits.dtype).min)
    return (logits - shift) / temperature


def _argmax_one_hot(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """The ``T = 0`` limit: one-hot argmax, ties sharing the mass equally."""
    is_max = logits == logits.amax(dim=dim, keepdim=True)
    is_max = is_max.to(logits.dtype)
    return is_max / is_max.sum(dim=dim, keepdim=True)


def softmax_t(logits: torch.Tensor, temperature: float, dim: int = -1) -> torch.Tensor:
    """Softmax at temperature ``T``.

    ``softmax_T(z)_i = exp(z_i / T) / Σ_j exp(z_j / T)``; ``T = 0`` gives the one-hot argmax (ties
    share the mass), ``T = inf`` the uniform distribution. Computed as ``softmax((z − max z)/T)``,
    so logits of ±1e4 and ``T = 1e-3`` stay finite.

    Args:
        logits: float tensor ``(..., C, ...)``.
        temperature: ``T`` in ``[0, inf]``.
        dim: the class dimension.

    Returns:
        Probabilities, same shape and dtype as ``logits``, summing to 1 along ``dim``.

    Raises:
        TypeError: ``logits`` is not a floating-point tensor, or ``dim`` is not an integer.
        ValueError: ``temperature`` is negative or NaN, or ``logits`` has no dimension ``dim``.

    Reference: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", §2.

    Example:
        >>> softmax_t(torch.tensor([0.0, 2.0]), 2.0)
        tensor([0.2689, 0.7311])
    """
    check_float_tensor("logits", logits)
    dim = _check_dim(logits, dim)
    temperature = _check_temperature(temperature)
    if temperature == 0.0:
        return _argmax_one_hot(logits, dim)
    return torch.softmax(_scaled_shifted(logits, temperature, dim), dim=dim)


def log_softmax_t(logits: torch.Tensor, temperature: float, dim: int = -1) -> torch.Tensor:
    """Log-softmax at temperature ``T``: ``log softmax_T(z)``, computed stably.

    ``log softmax_T(z)_i = (z_i − max z)/T − log Σ_j exp((z_j − max z)/T)``. At ``T = 0`` it is
    the log of the one-hot argmax (``0`` for the argmax classes, ``-inf`` elsewhere).

    Args:
        logits: float tensor ``(..., C, ...)``.
        temperature: ``T`` in ``[0, inf]``.
        dim: the class dimension.

    Returns:
        Log-probabilities, same shape and dtype as ``logits``.

    Raises:
        TypeError: ``logits`` is not a floating-point tensor, or ``dim`` is not an integer.
        ValueError: ``temperature`` is negative or NaN, or ``logits`` has no dimension ``dim``.

    Reference: Hinton et al. (2015), §2.

    Example:
        >>> log_softmax_t(torch.tensor([0.0, 0.0]), 4.0)
        tensor([-0.6931, -0.6931])
    """
    check_float_tensor("logits", logits)
    dim = _check_dim(logits, dim)
    temperature = _check_temperature(temperature)
    if temperature == 0.0:
        return torch.log(_argmax_one_hot(logits, dim))
    return torch.log_softmax(_scaled_shifted(logits, temperature, dim), dim=dim)


def sigmoid_t(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sigmoid at temperature ``T``: ``σ_T(z) = 1 / (1 + exp(−z/T))``.

    ``T = 0`` gives the step (1 for z > 0, 0 for z < 0, 0.5 at 0); ``T = inf`` gives 0.5.

    Args:
        logits: float tensor, any shape.
        temperature: ``T`` in ``[0, inf]``.

    Returns:
        Probabilities, same shape and dtype as ``logits``.

    Raises:
        TypeError: ``logits`` is not a floating-point tensor.
        ValueError: ``temperature`` is negative or NaN.

    Reference: docs/formulas.md#temperature and #binary-kd (the tempered teacher label).

    Example:
        >>> sigmoid_t(torch.tensor([-1.0, 0.0, 1.0]), 0.0)
        tensor([0.0000, 0.5000, 1.0000])
    """
    check_float_tensor("logits", logits)
    temperature = _check_temperature(temperature)
    if temperature == 0.0:
        return (torch.sign(logits) + 1) / 2
    return torch.sigmoid(logits / temperature)


def _stack_members(teacher_logits: torch.Tensor | Sequence[torch.Tensor], binary: bool):
    """A ``(K, ...)`` tensor from a sequence of members or a tensor with a member axis."""
    if isinstance(teacher_logits, torch.Tensor):
        stacked = check_float_tensor("teacher_logits", teacher_logits)
    else:
        members = list(teacher_logits)
        if not members:
            raise ValueError("`teacher_logits` must hold at least 1 member, got 0")
        for k, member in enumerate(members):
            check_pair(f"teacher_logits[{k}]", member, "teacher_logits[0]", members[0])
        stacked = torch.stack(members)
    min_ndim = 1 if binary else 2
    if stacked.ndim < min_ndim:
        raise ValueError(
            f"`teacher_logits` must have a leading member axis and "
            f"{'' if binary else 'a class axis, '}at least {min_ndim} dimension(s), "
            f"got shape {tuple(stacked.shape)}"
        )
    return stacked


def ensemble_probs(
    teacher_logits: torch.Tensor | Sequence[torch.Tensor],
    *,
    temperature: float = 1.0,
    mean: EnsembleMean = "arithmetic",
    binary: bool = False,
) -> torch.Tensor:
    """The ensemble teacher distribution from K members' logits.

    Arithmetic: ``p̄ = (1/K) Σ_k softmax_T(v_k)``. Geometric: ``p̃ ∝ exp((1/K) Σ_k log
    softmax_T(v_k)) = softmax_T(mean_k v_k)``. Binary (independent sigmoids): the mean of
    ``sigmoid_T(v_k)``, or ``sigmoid_T(mean_k v_k)`` for the geometric mean.

    Args:
        teacher_logits: a sequence of K tensors of one shape ``(N, C)`` (binary: ``(N, ...)``),
            or one tensor ``(K, N, C)`` with a leading member axis.
        temperature: ``T`` in ``[0, inf]``.
        mean: ``"arithmetic"`` or ``"geometric"``.
        binary: members give sigmoid logits instead of softmax (class axis last) logits.

    Returns:
        Probabilities of one member's shape, e.g. ``(N, C)``.

    Raises:
        TypeError: logits are not floating point, or members differ in dtype.
        ValueError: no members, mismatched member shapes/devices, bad ``temperature``/``mean``.

    Reference: Hinton et al. (2015), §2 (ensembles); docs/formulas.md#classification-kd.

    Example:
        >>> members = [torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])]
        >>> ensemble_probs(members, mean="geometric")
        tensor([[0.5000, 0.5000]])
    """
    check_choice("mean", mean, ("arithmetic", "geometric"))
    stacked = _stack_members(teacher_logits, binary)
    if mean == "geometric":
        averaged = stacked.mean(dim=0)
        return sigmoid_t(averaged, temperature) if binary else softmax_t(averaged, temperature)
    probs = sigmoid_t(stacked, temperature) if binary else softmax_t(stacked, temperature)
    return probs.mean(dim=0)


def top_k_probs(probs: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest probabilities per row, zero the rest and renormalise (KD-topk).

    ``p'_i = p_i · [i ∈ topk(p)] / Σ_{j ∈ topk(p)} p_j`` along the last dimension.

    Args:
        probs: float tensor ``(..., C)`` of non-negative probabilities.
        k: how many classes to keep, ``1 <= k <= C``.

    Returns:
        Renormalised probabilities ``(..., C)`` with at most k non-zero entries per row.

    Raises:
        TypeError: ``probs`` is not floating point or ``k`` is not an integer.
        ValueError: ``k`` outside ``[1, C]``.

    Reference: Tang et al. (2020), "Understanding and Improving Knowledge Distillation" (KD-topk).

    Example:
        >>> top_k_probs(torch.tensor([0.5, 0.3, 0.2]), 2)
        tensor([0.6250, 0.3750, 0.0000])
    """
    check_float_tensor("probs", probs)
    check_positive_int("k", k)
    if k > probs.shape[-1]:
        raise ValueError(f"`k` must be <= the number of classes {probs.shape[-1]}, got {k}")
    values, index = probs.topk(k, dim=-1)
    kept = torch.zeros_like(probs).scatter(-1, index, values)
    return kept / kept.sum(dim=-1, keepdim=True)


def smooth_labels(
    target: torch.Tensor, num_classes: int, epsilon: float, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Label-smoothed one-hot targets: ``y_LS = onehot(y)·(1 − ε) + ε / K``.

    Args:
        target: integer class indices ``(...)`` in ``[0, num_classes)``.
        num_classes: ``K``.
        epsilon: ``ε`` in ``[0, 1]``.
        dtype: float dtype of the result (default: ``torch.get_default_dtype()``).

    Returns:
        Float tensor ``(..., K)`` whose rows sum to 1.

    Raises:
        TypeError: ``target`` is not an integer tensor.
        ValueError: ``epsilon`` outside ``[0, 1]`` or a class index outside ``[0, K)``.

    Reference: Szegedy et al. (2016), "Rethinking the Inception Architecture", §7;
    docs/formulas.md#classification-kd.

    Example:
        >>> smooth_labels(torch.tensor([1]), 4, 0.2)
        tensor([[0.0500, 0.8500, 0.0500, 0.0500]])
    """
    _check_class_indices("target", target, check_positive_int("num_classes", num_classes))
    epsilon = check_number("epsilon", epsilon, low=0.0, high=1.0)
    one_hot = torch.nn.functional.one_hot(target, num_classes).to(
        dtype or torch.get_default_dtype()
    )
    return one_hot * (1.0 - epsilon) + epsilon / num_classes


def _check_class_indices(
    name: str, target: torch.Tensor, num_classes: int, *, ignore_index: int | None = None
) -> int:
    """Integer class indices in ``[0, num_classes)`` (or equal to ``ignore_index``).

    Returns the number of entries not equal to ``ignore_index`` (a host int). The common case,
    every entry a class, costs one min/max pass and one host read.
    """
    check_tensor(name, target)
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"`{name}` must be an integer tensor of class indices, got {target.dtype}")
    if target.numel() == 0:
        return 0
    low, high = value_range(target)
    if (
        low >= 0
        and high < num_classes
        and not (ignore_index is not None and low <= ignore_index <= high)
    ):
        return target.numel()
    bad = (target < 0) | (target >= num_classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bool(bad.any()):
        allowed = f"[0, {num_classes})" + ("" if ignore_index is None else f" or {ignore_index}")
        raise ValueError(f"`{name}` values must be in {allowed}, got {int(target[bad][0])}")
    return int((target != ignore_index).sum()) if ignore_index is not None else target.numel()
