"""Low-rank factorisation of Linear layers by truncated SVD, and short recovery distillation."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from distill._validation import check_choice, check_number, check_positive_int
from distill.export._inputs import Inputs, as_tuple
from distill.export.int8 import linear_layer_names, replace_module
from distill.losses import kd_loss, logit_matching_loss


def energy_rank(singular_values: torch.Tensor, energy: float) -> int:
    """Smallest rank r whose singular values keep ``energy`` of the squared mass.

    ``r = min{r : Σ_{i<r} σ_i² ≥ energy · Σ_i σ_i²}`` for descending ``σ``.

    Example:
        >>> energy_rank(torch.tensor([3.0, 1.0, 0.0]), 0.9)
        1
    """
    mass = singular_values.double().square()
    kept = torch.cumsum(mass, 0) / mass.sum().clamp_min(torch.finfo(torch.float64).tiny)
    return min(int((kept < energy * (1 - 1e-9)).sum()) + 1, singular_values.numel())


def factorize_linear(linear: nn.Linear, rank: int) -> nn.Sequential:
    """Replace ``W (O, D)`` by ``B A`` with ``A = √Σ_r V_rᵀ (r, D)`` and ``B = U_r √Σ_r (O, r)``.

    The truncated SVD is the best rank-r approximation in Frobenius norm (Eckart–Young); at
    ``rank = min(O, D)`` the product equals ``W`` up to rounding. The bias stays on ``B``.

    Example:
        >>> factorize_linear(nn.Linear(8, 6), 2)[0].weight.shape
        torch.Size([2, 8])
    """
    weight = linear.weight.detach()
    u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
    root = s[:rank].sqrt()
    first = nn.Linear(linear.in_features, rank, bias=False, dtype=weight.dtype)
    second = nn.Linear(rank, linear.out_features, bias=linear.bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        first.weight.copy_(root[:, None] * vh[:rank])
        second.weight.copy_(u[:, :rank] * root)
        if linear.bias is not None:
            second.bias.copy_(linear.bias.detach())
    return nn.Sequential(first, second)


def low_rank(
    model: nn.Module, rank: int | float, *, layers: Sequence[str] | None = None
) -> tuple[nn.Module, dict[str, int]]:
    """Return a copy of ``model`` with Linear layers factorised into two thinner ones.

    Each chosen ``nn.Linear`` ``W (O, D)`` becomes ``Linear(D, r, bias=False)`` followed by
    ``Linear(r, O)`` from the truncated SVD (:func:`factorize_linear`).

    Args:
        model: the float module to compress (left unchanged).
        rank: an int ``r >= 1`` (the same rank for every layer) or a float in ``(0, 1]``: the
            fraction of squared singular-value mass each layer keeps (:func:`energy_rank`).
        layers: dotted names of the Linear layers to factorise. ``None`` (default) takes every
            Linear layer that the factorisation makes smaller (``r·(O + D) < O·D``) and leaves
            the others whole (e.g. a scorer's ``(1, D)`` head).

    Returns:
        ``(compressed, ranks)``: the new module and ``{layer name: rank}`` of the factorised
        layers (what :func:`low_rank_structure` needs to rebuild it).

    Raises:
        TypeError / ValueError: for a bad ``rank``; a named layer that is not an ``nn.Linear``
        of the model; a rank larger than a named layer allows (``min(O, D)``); or, with
        ``layers=None``, when no layer gets smaller.

    Reference: Eckart & Young 1936; Denton et al. 2014 / Sainath et al. 2013 (low-rank
    factorisation of trained layers).

    Example:
        >>> mlp = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
        >>> low_rank(mlp, 8)[1]
        {'0': 8}
    """
    check_rank(rank)
    compressed = copy.deepcopy(model)
    ranks = _choose_ranks(compressed, rank, layers)
    for name, layer_rank in ranks.items():
        linear = compressed.get_submodule(name)
        replace_module(compressed, name, factorize_linear(linear, layer_rank))
    return compressed, ranks


def low_rank_structure(model: nn.Module, ranks: dict[str, int]) -> nn.Module:
    """Give ``model`` the factorised layer shapes of ``ranks`` (before loading weights)."""
    for name, layer_rank in ranks.items():
        linear = model.get_submodule(name)
        dtype = linear.weight.dtype
        first = nn.Linear(linear.in_features, layer_rank, bias=False, dtype=dtype)
        second = nn.Linear(layer_rank, linear.out_features, bias=linear.bias is not None)
        replace_module(model, name, nn.Sequential(first, second.to(dtype)))
    return model


def check_rank(rank: int | float) -> None:
    """An int rank >= 1 or an energy fraction in (0, 1] (TypeError / ValueError otherwise)."""
    if isinstance(rank, int) and not isinstance(rank, bool):
        check_positive_int("rank", rank)
    else:
        check_number("rank", rank, low=0, high=1, low_open=True)


def _choose_ranks(
    model: nn.Module, rank: int | float, layers: Sequence[str] | None
) -> dict[str, int]:
    all_linear = linear_layer_names(model)
    if layers is not None:
        return {name: _named_layer_rank(model, name, rank, all_linear) for name in layers}
    ranks = {}
    for name in all_linear:
        linear = model.get_submodule(name)
        layer_rank = _layer_rank(linear, rank)
        if layer_rank * (linear.in_features + linear.out_features) < linear.weight.numel():
            ranks[name] = layer_rank
    if not ranks:
        raise ValueError(_nothing_smaller_message(model, rank, all_linear))
    return ranks


def _named_layer_rank(model: nn.Module, name: str, rank: int | float, all_linear) -> int:
    if name not in all_linear:
        raise ValueError(
            f"`layers` entry {name!r} is not an nn.Linear layer of the model "
            f"(Linear layers: {', '.join(all_linear) or 'none'})"
        )
    linear = model.get_submodule(name)
    largest = min(linear.in_features, linear.out_features)
    if isinstance(rank, int) and rank > largest:
        raise ValueError(
            f"`rank` {rank} exceeds the largest rank {largest} of layer `{name}` "
            f"(Linear {linear.in_features}→{linear.out_features})"
        )
    return _layer_rank(linear, rank)


def _layer_rank(linear: nn.Linear, rank: int | float) -> int:
    if isinstance(rank, int):
        return rank
    return energy_rank(torch.linalg.svdvals(linear.weight.detach().double()), rank)


def _nothing_smaller_message(model: nn.Module, rank: int | float, all_linear) -> str:
    if not all_linear:
        return f"`model` has no nn.Linear layer to factorise, got {type(model).__name__}"
    useful = {name: _largest_useful_rank(model.get_submodule(name)) for name in all_linear}
    best = max(useful, key=useful.get)
    what = f"`rank` {rank}" if isinstance(rank, int) else f"energy `rank` {rank}"
    return (
        f"{what} is too large: no Linear layer gets smaller (a layer (O, D) needs "
        f"r·(O + D) < O·D; the largest useful rank here is {useful[best]}, in `{best}`)"
    )


def _largest_useful_rank(linear: nn.Linear) -> int:
    out_dim, in_dim = linear.out_features, linear.in_features
    return (out_dim * in_dim - 1) // (out_dim + in_dim)


def recover(
    student: nn.Module,
    reference: nn.Module,
    inputs: Inputs,
    *,
    reference_inputs: Inputs | None = None,
    steps: int = 500,
    loss: Literal["logit_matching", "kd"] = "logit_matching",
    temperature: float = 4.0,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> list[float]:
    """Fine-tune a compressed ``student`` in place to reproduce a ``reference`` model's logits.

    A short distillation after factorisation: minibatches of ``inputs`` drawn with a seeded
    generator, AdamW, and either ``logit_matching_loss`` (``mean((z − v)²)``, Ba & Caruana
    2014; any output shape) or the soft ``kd_loss`` term (``T²·KL(softmax_T(v) ‖
    softmax_T(z))``, Hinton et al. 2015; ``(N, C)`` logits). The reference's logits are
    computed once, without gradients. A minimal loop of its own rather than ``distill.train.fit``:
    no labels, no validation, no checkpoints are needed here.

    Args:
        student: the compressed module (trained in place, left in eval mode).
        reference: the original student or the teacher, with the student's output shape.
        inputs: the transfer set: a tensor ``(N, ...)`` or a tuple of tensors with a common
            first axis (e.g. ``(ids, values)``).
        reference_inputs: the reference's inputs for the same N rows when they differ (a
            teacher that sees more columns); default ``inputs``.
        steps: optimiser steps (``>= 1``).
        loss: ``"logit_matching"`` or ``"kd"``.
        temperature: T of ``"kd"``.
        lr, batch_size, seed: AdamW learning rate, rows per step, sampling seed.

    Returns:
        The loss of each step.

    Raises:
        ValueError / TypeError: bad ``steps``, ``loss``, ``batch_size`` or inputs (also
            ``reference_inputs`` with another number of rows).

    Reference: Hinton et al. 2015; Ba & Caruana 2014; docs/index.md#shipping.

    Example:
        >>> reference = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
        >>> small, _ = low_rank(reference, 2)
        >>> losses = recover(small, reference, torch.randn(64, 16), steps=20)
    """
    check_positive_int("steps", steps)
    check_positive_int("batch_size", batch_size)
    check_choice("loss", loss, ("logit_matching", "kd"))
    rows = as_tuple("inputs", inputs)
    reference_rows = (
        rows if reference_inputs is None else as_tuple("reference_inputs", reference_inputs)
    )
    if len(reference_rows[0]) != len(rows[0]):
        raise ValueError(
            f"`reference_inputs` must have the {len(rows[0])} rows of `inputs`, "
            f"got {len(reference_rows[0])}"
        )
    targets = _reference_logits(reference, reference_rows, batch_size)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr)
    student.train()
    history = []
    for _ in range(steps):
        index = torch.randint(len(targets), (batch_size,), generator=generator)
        outputs = student(*(t[index] for t in rows))
        value = _recovery_loss(outputs, targets[index], loss, temperature)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        history.append(float(value.detach()))
    student.eval()
    return history


def _reference_logits(
    reference: nn.Module, rows: tuple[torch.Tensor, ...], batch_size: int
) -> torch.Tensor:
    reference.eval()
    with torch.inference_mode():
        chunks = [
            reference(*(t[start : start + batch_size] for t in rows)).float()
            for start in range(0, len(rows[0]), batch_size)
        ]
    return torch.cat(chunks).clone()


def _recovery_loss(
    outputs: torch.Tensor, targets: torch.Tensor, loss: str, temperature: float
) -> torch.Tensor:
    if loss == "kd":
        return kd_loss(outputs, targets, temperature=temperature)
    return logit_matching_loss(outputs, targets)
