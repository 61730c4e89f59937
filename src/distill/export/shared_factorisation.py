"""Shared matrix factorisation of a model's input embedding and output layer (Yu et al. 2018).

The embedding ``E (V × d)`` and the output layer's weight ``W (V × d)`` are replaced by one
``V × r`` basis ``U``, stored once, and two small ``r × d`` projections:
``E ≈ U A`` and ``W ≈ U B``. The maths: docs/compression.md#shared-factorisation.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from distill._validation import check_choice
from distill.export.int8 import replace_module
from distill.export.lowrank import energy_rank

SharedLayers = dict[str, Any]
"""``{"embedding": name, "output": name, "rank": r}``: what :func:`shared_structure` rebuilds."""


class SharedEmbedding(nn.Module):
    """Embedding rows ``U[ids] · A``: a ``V × r`` basis ``U`` (the shared part) and ``A (r, d)``.

    Shapes: int64 ids ``(...)`` → ``(..., d)``.

    Example:
        >>> SharedEmbedding(10, 4, 2)(torch.tensor([[1, 2]])).shape
        torch.Size([1, 2, 4])
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, rank: int) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim, self.rank = num_embeddings, embedding_dim, rank
        self.basis = nn.Parameter(torch.zeros(num_embeddings, rank))
        self.projection = nn.Parameter(torch.zeros(rank, embedding_dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.basis) @ self.projection

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, rank={self.rank} (shared basis)"


class SharedOutput(nn.Module):
    """An output layer ``y = (x Bᵀ) Uᵀ + b`` that reads the basis ``U`` of a
    :class:`SharedEmbedding` without owning it, so ``U`` is stored (and trained) once.

    Shapes: ``(..., d)`` → ``(..., V)``.

    Example:
        >>> shared = SharedEmbedding(10, 4, 2)
        >>> SharedOutput(shared, 4, bias=True)(torch.zeros(3, 4)).shape
        torch.Size([3, 10])
    """

    def __init__(self, shared: SharedEmbedding, in_features: int, *, bias: bool) -> None:
        super().__init__()
        object.__setattr__(self, "shared", shared)  # a reference, not a submodule
        self.in_features, self.out_features = in_features, shared.num_embeddings
        self.projection = nn.Parameter(torch.zeros(shared.rank, in_features))
        self.bias = nn.Parameter(torch.zeros(shared.num_embeddings)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = (x @ self.projection.T) @ self.shared.basis.T
        return logits if self.bias is None else logits + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, shared basis"


def share_embeddings(
    model: nn.Module,
    *,
    rank: int | float = 0.9,
    embedding: str | None = None,
    output: str | None = None,
    weighting: Literal["balanced", "none"] = "balanced",
) -> tuple[nn.Module, SharedLayers]:
    """Return a copy of ``model`` whose embedding and output layer share one ``V × r`` basis.

    With the weighted concatenation ``M = [α E  β W]`` (``V × 2d``, the embedding beside the
    output weight) and its SVD ``M = P Σ Qᵀ``: ``U = P_r`` (orthonormal columns) and
    ``[α A  β B] = Σ_r Q_rᵀ``, so ``E ≈ U A`` and ``W ≈ U B``. This minimises
    ``α²‖E − U A‖²_F + β²‖W − U B‖²_F`` over all ``V × r`` bases and projections
    (Eckart–Young on ``M``); the minimum is ``Σ_{i>r} σ_i²``. ``"balanced"``:
    ``α = 1/‖E‖_F``, ``β = 1/‖W‖_F`` (relative errors, so the larger matrix does not take the
    whole basis); ``"none"``: ``α = β = 1``. At ``r = min(V, 2d)`` the model computes what it
    computed before, up to rounding. The output bias is kept as it is.

    Args:
        model: a float module with an ``nn.Embedding`` ``(V, d)`` and an ``nn.Linear``
            ``d → V`` (left unchanged).
        rank: an int ``1 ≤ r ≤ min(V, 2d)``, or a float in ``(0, 1]``: the smallest rank that
            keeps that share of ``Σ σ_i²`` (:func:`~distill.export.lowrank.energy_rank`).
        embedding, output: dotted names of the two layers; ``None`` finds them: the only
            ``nn.Embedding`` / ``nn.Linear`` pair with the same V and d.
        weighting: ``"balanced"`` or ``"none"`` (α, β above).

    Returns:
        ``(shared, layers)``: the new module (eval mode) and
        ``{"embedding": name, "output": name, "rank": r}``.

    Raises:
        ValueError: no pair (or several) found; a named layer of the wrong type; V or d that
            differ between the two; a rank outside ``[1, min(V, 2d)]`` or ``(0, 1]``; an
            unknown ``weighting``.

    Reference: Yu et al. 2018, "On-Device Neural Language Model Based Word Prediction"
    (shared matrix factorisation); Eckart & Young 1936; docs/compression.md.

    Example:
        >>> from distill.models import NextTokenLM
        >>> shared, layers = share_embeddings(NextTokenLM(50, 2, 50, embedding_dim=8), rank=4)
        >>> layers
        {'embedding': 'embedding', 'output': 'head', 'rank': 4}
    """
    check_choice("weighting", weighting, ("balanced", "none"))
    pair = check_share(model, rank=rank, embedding=embedding, output=output)
    table = model.get_submodule(pair[0]).weight.detach().double()
    linear = model.get_submodule(pair[1])
    scales = _block_scales(table, linear.weight.detach().double(), weighting)
    concatenated = torch.cat([table * scales[0], linear.weight.detach() * scales[1]], dim=1)
    left, values, right = torch.linalg.svd(concatenated, full_matrices=False)
    chosen = _shared_rank(rank, values)
    layers = {"embedding": pair[0], "output": pair[1], "rank": chosen}
    shared = shared_structure(copy.deepcopy(model), layers)
    width = table.shape[1]
    factors = values[:chosen, None] * right[:chosen]  # [αA  βB], (r, 2d)
    factors = torch.cat([factors[:, :width] / scales[0], factors[:, width:] / scales[1]], 1)
    new_table = shared.get_submodule(pair[0])
    new_output = shared.get_submodule(pair[1])
    with torch.no_grad():
        new_table.basis.copy_(left[:, :chosen])
        new_table.projection.copy_(factors[:, :width])
        new_output.projection.copy_(factors[:, width:])
        if linear.bias is not None:
            new_output.bias.copy_(linear.bias.detach())
    return shared.eval(), layers


def _block_scales(table: torch.Tensor, weight: torch.Tensor, weighting: str) -> tuple:
    if weighting == "none":
        return 1.0, 1.0
    tiny = torch.finfo(torch.float64).tiny
    return 1 / float(table.norm().clamp_min(tiny)), 1 / float(weight.norm().clamp_min(tiny))


def shared_structure(model: nn.Module, layers: SharedLayers) -> nn.Module:
    """Swap the named embedding and output layer of ``model`` for empty shared ones (in place,
    before loading weights); ``layers`` as returned by :func:`share_embeddings`."""
    table = model.get_submodule(layers["embedding"])
    linear = model.get_submodule(layers["output"])
    dtype = table.weight.dtype
    shared = SharedEmbedding(table.num_embeddings, table.embedding_dim, layers["rank"])
    output = SharedOutput(shared, linear.in_features, bias=linear.bias is not None)
    replace_module(model, layers["embedding"], shared.to(dtype))
    replace_module(model, layers["output"], output.to(dtype))
    return model


def find_pair(model: nn.Module, embedding: str | None, output: str | None) -> tuple[str, str]:
    """The names of the embedding and the output layer to share (see :func:`share_embeddings`).

    Raises:
        ValueError: as :func:`share_embeddings`.
    """
    tables = _named(model, nn.Embedding)
    linears = _named(model, nn.Linear)
    if embedding is not None:
        _check_named("embedding", embedding, tables, "nn.Embedding")
    if output is not None:
        _check_named("output", output, linears, "nn.Linear")
    if embedding is not None and output is not None:
        _check_match(embedding, tables[embedding], output, linears[output])
        return embedding, output
    pairs = [
        (e, o)
        for e, table in tables.items()
        for o, linear in linears.items()
        if (embedding in (None, e)) and (output in (None, o)) and _matches(table, linear)
    ]
    if len(pairs) == 1:
        return pairs[0]
    if embedding is not None or output is not None:
        named = f"`embedding` {embedding!r}" if embedding is not None else f"`output` {output!r}"
        raise ValueError(f"{named}: no layer of the same V and d to pair it with")
    return _no_single_pair(model, tables, linears, pairs)


def _named(model: nn.Module, kind: type) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if type(m) is kind}


def _check_named(argument: str, name: str, found: dict, kind: str) -> None:
    if name not in found:
        raise ValueError(
            f"`{argument}` {name!r} is not an {kind} layer of the model "
            f"({kind} layers: {', '.join(found) or 'none'})"
        )


def _matches(table: nn.Embedding, linear: nn.Linear) -> bool:
    return (table.num_embeddings, table.embedding_dim) == (linear.out_features, linear.in_features)


def _check_match(name: str, table: nn.Embedding, output: str, linear: nn.Linear) -> None:
    if table.num_embeddings != linear.out_features:
        raise ValueError(
            f"V mismatch: `embedding` {name!r} has V = {table.num_embeddings} rows, `output` "
            f"{output!r} has {linear.out_features} outputs; a shared basis needs the same V"
        )
    if table.embedding_dim != linear.in_features:
        raise ValueError(
            f"d mismatch: `embedding` {name!r} has width {table.embedding_dim}, `output` "
            f"{output!r} has {linear.in_features} inputs; the projections need the same d"
        )


def _no_single_pair(model: nn.Module, tables: dict, linears: dict, pairs: list) -> Any:
    if pairs:
        listed = "; ".join(f"{e} + {o}" for e, o in pairs)
        raise ValueError(f"several embedding/output pairs ({listed}): name them")
    shapes = ", ".join(f"{n} ({m.num_embeddings}×{m.embedding_dim})" for n, m in tables.items())
    raise ValueError(
        f"no embedding/output pair in {type(model).__name__}: sharing needs an nn.Embedding "
        f"(V, d) and an nn.Linear d → V (embeddings: {shapes or 'none'})"
    )


def check_share(
    model: nn.Module,
    *,
    rank: int | float,
    embedding: str | None = None,
    output: str | None = None,
    rank_name: str = "rank",
) -> tuple[str, str]:
    """Validate :func:`share_embeddings`' arguments without computing anything; return the
    pair ``(embedding name, output name)``. ``rank_name`` is the rank's name in messages.

    Raises:
        ValueError: as :func:`share_embeddings`.
    """
    pair = find_pair(model, embedding, output)
    table = model.get_submodule(pair[0])
    largest = min(table.num_embeddings, 2 * table.embedding_dim)
    if isinstance(rank, int) and not isinstance(rank, bool):
        if not 1 <= rank <= largest:
            raise ValueError(
                f"`{rank_name}` must be in [1, {largest}] (min(V, 2d) of the shared pair "
                f"{pair[0]} + {pair[1]}), got {rank}"
            )
    elif not isinstance(rank, float) or not 0 < rank <= 1:
        raise ValueError(
            f"`{rank_name}` must be an int rank or an energy fraction in (0, 1], got {rank!r}"
        )
    return pair


def _shared_rank(rank: int | float, values: torch.Tensor) -> int:
    return rank if isinstance(rank, int) else energy_rank(values, rank)
