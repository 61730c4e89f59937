"""CTR models over sparse global feature ids: the embedding bottom, Wide & Deep and deep towers
(the joint model: :mod:`distill.models.ctr_joint`).

Input convention (``distill.data.Dataset``): ``ids`` int64 ``(N, F)``, one column per field or
non-zero slot, id 0 = padding/missing (its embedding and wide weight are fixed at zero);
optional ``values`` float ``(N, F)`` weighting each slot (libsvm ``idx:val``; default all ones);
optional ``dense`` float ``(N, dense_features)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from distill._validation import check_float_tensor, check_positive_int
from distill.models._spec import make_spec
from distill.models.compose import StackedModel
from distill.models.mlp import MLP, Norm


class Embedded(NamedTuple):
    """Output of :class:`FieldEmbedding`: what every CTR tower consumes."""

    ids: torch.Tensor  # int64 (N, F)
    values: torch.Tensor  # float (N, F): slot weights, zero where ids == 0
    vectors: torch.Tensor  # float (N, F, E): values-weighted embeddings
    dense: torch.Tensor | None  # float (N, dense_features) or None


class FieldEmbedding(nn.Module):
    """Embedding bottom over global sparse ids: ``vectors[n, f] = values[n, f] · E[ids[n, f]]``.

    Args:
        num_embeddings: size of the id space (max id + 1); id 0 is padding.
        num_fields: F, the number of id columns.
        embed_dim: embedding width E.
        dense_features: width of the optional dense input (0: none).

    Returns (forward ``(ids, values=None, dense=None)``): an :class:`Embedded` tuple.

    Raises:
        TypeError, ValueError: ids not int64 ``(N, F)``, ids outside ``[0, num_embeddings)``,
            values/dense of the wrong shape.

    Reference: the shared embedding layer of the joint CTR model (Zhou et al. 2018, "Rocket
    Launching"; Cheng et al. 2016, "Wide & Deep Learning", Sec. 3.2).

    Example:
        >>> bottom = FieldEmbedding(100, 3, embed_dim=4)
        >>> bottom(torch.tensor([[1, 5, 0]])).vectors.shape
        torch.Size([1, 3, 4])
    """

    def __init__(
        self, num_embeddings: int, num_fields: int, *, embed_dim: int = 8, dense_features: int = 0
    ) -> None:
        super().__init__()
        self.num_embeddings = check_positive_int("num_embeddings", num_embeddings, minimum=2)
        self.num_fields = check_positive_int("num_fields", num_fields)
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self.dense_features = check_positive_int("dense_features", dense_features, minimum=0)
        self.embedding = nn.Embedding(num_embeddings, embed_dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=embed_dim**-0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def forward(
        self,
        ids: torch.Tensor,
        values: torch.Tensor | None = None,
        dense: torch.Tensor | None = None,
    ) -> Embedded:
        _check_ids(ids, self.num_fields, self.num_embeddings)
        embeddings = self.embedding(ids)
        if values is None:
            values = torch.ones(ids.shape, dtype=embeddings.dtype, device=ids.device)
        else:
            _check_float_shape("values", values, tuple(ids.shape))
        values = values * (ids != 0)
        _check_dense(dense, ids.shape[0], self.dense_features)
        vectors = embeddings * values.unsqueeze(-1)
        return Embedded(ids, values, vectors, dense)

    def spec(self) -> dict[str, Any]:
        """``{"name": "FieldEmbedding", "kwargs": {...}}``."""
        return make_spec(
            "FieldEmbedding",
            num_embeddings=self.num_embeddings,
            num_fields=self.num_fields,
            embed_dim=self.embed_dim,
            dense_features=self.dense_features,
        )


class DeepCTRTower(nn.Module):
    """Deep tower: an MLP over the concatenated field embeddings (and dense features).

    ``y = MLP([vec(vectors), dense])``, a logit per row, shape ``(N,)``.

    Args:
        num_fields: F; embed_dim: E; dense_features: dense width (0: none).
        hidden: MLP widths (teacher-sized by default); dropout, norm: as in :class:`MLP`.

    Raises:
        ValueError: bad widths (see :class:`MLP`).

    Reference: the deep teacher ("booster") tower of Zhou et al. 2018, "Rocket Launching".

    Example:
        >>> bottom, tower = FieldEmbedding(100, 3), DeepCTRTower(3)
        >>> tower(bottom(torch.tensor([[1, 2, 3]]))).shape
        torch.Size([1])
    """

    def __init__(
        self,
        num_fields: int,
        *,
        embed_dim: int = 8,
        hidden: Sequence[int] = (256, 128, 64),
        dense_features: int = 0,
        dropout: float = 0.0,
        norm: Norm | None = None,
    ) -> None:
        super().__init__()
        self.num_fields = check_positive_int("num_fields", num_fields)
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self.dense_features = check_positive_int("dense_features", dense_features, minimum=0)
        width = num_fields * embed_dim + dense_features
        self.deep = MLP(width, hidden, 1, dropout=dropout, norm=norm)

    def forward(self, embedded: Embedded) -> torch.Tensor:
        return self.deep(deep_input(embedded))

    def spec(self) -> dict[str, Any]:
        """``{"name": "DeepCTRTower", "kwargs": {...}}``."""
        return make_spec(
            "DeepCTRTower",
            num_fields=self.num_fields,
            embed_dim=self.embed_dim,
            hidden=self.deep.hidden,
            dense_features=self.dense_features,
            dropout=self.deep.dropout,
            norm=self.deep.norm,
        )


class WideAndDeepTower(nn.Module):
    """Wide & Deep tower: a linear model over the sparse ids plus a deep MLP over embeddings.

    ``y = b + Σ_f values[:, f] · w[ids[:, f]] + u·dense + MLP([vec(vectors), dense])``, ``(N,)``.

    Args:
        num_embeddings: id space size (the wide part has one weight per id; id 0 fixed at 0).
        num_fields, embed_dim, dense_features, hidden, dropout, norm: as in
            :class:`DeepCTRTower` (student-sized default ``hidden=(64, 32)``).

    Raises:
        ValueError: bad widths.

    Reference: Cheng et al. 2016, "Wide & Deep Learning for Recommender Systems", Eq. 3.

    Example:
        >>> bottom, tower = FieldEmbedding(100, 3), WideAndDeepTower(100, 3)
        >>> tower(bottom(torch.tensor([[1, 2, 0]]))).shape
        torch.Size([1])
    """

    def __init__(
        self,
        num_embeddings: int,
        num_fields: int,
        *,
        embed_dim: int = 8,
        hidden: Sequence[int] = (64, 32),
        dense_features: int = 0,
        dropout: float = 0.0,
        norm: Norm | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = check_positive_int("num_embeddings", num_embeddings, minimum=2)
        self.num_fields = check_positive_int("num_fields", num_fields)
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self.dense_features = check_positive_int("dense_features", dense_features, minimum=0)
        self.wide = nn.Embedding(num_embeddings, 1, padding_idx=0)
        nn.init.zeros_(self.wide.weight)
        self.wide_dense = nn.Linear(dense_features, 1) if dense_features else None
        self.bias = nn.Parameter(torch.zeros(()))
        width = num_fields * embed_dim + dense_features
        self.deep = MLP(width, hidden, 1, dropout=dropout, norm=norm)

    def forward(self, embedded: Embedded) -> torch.Tensor:
        wide = (self.wide(embedded.ids).squeeze(-1) * embedded.values).sum(dim=1) + self.bias
        if self.wide_dense is not None:
            wide = wide + self.wide_dense(embedded.dense).squeeze(-1)
        return wide + self.deep(deep_input(embedded))

    def spec(self) -> dict[str, Any]:
        """``{"name": "WideAndDeepTower", "kwargs": {...}}``."""
        return make_spec("WideAndDeepTower", **_wide_deep_kwargs(self))


class WideAndDeep(StackedModel):
    """Wide & Deep CTR model: :class:`FieldEmbedding` bottom + :class:`WideAndDeepTower`.

    Same formula as :class:`WideAndDeepTower`; forward ``(ids, values=None, dense=None)`` →
    logits ``(N,)``. Its state dict has the same keys as ``JointModel.student()`` built by
    :func:`ctr_joint_model`, so a jointly trained student loads into it.

    Args:
        num_embeddings, num_fields: id space size and number of id columns.
        embed_dim, hidden, dense_features, dropout, norm: as in :class:`WideAndDeepTower`.

    Raises:
        TypeError, ValueError: bad widths or inputs (see :class:`FieldEmbedding`).

    Reference: Cheng et al. 2016, "Wide & Deep Learning for Recommender Systems".

    Example:
        >>> model = WideAndDeep(100, 3)
        >>> model(torch.tensor([[1, 2, 0]]), torch.tensor([[1.0, 0.5, 0.0]])).shape
        torch.Size([1])
    """

    def __init__(
        self,
        num_embeddings: int,
        num_fields: int,
        *,
        embed_dim: int = 8,
        hidden: Sequence[int] = (64, 32),
        dense_features: int = 0,
        dropout: float = 0.0,
        norm: Norm | None = None,
    ) -> None:
        sizes = {"embed_dim": embed_dim, "dense_features": dense_features}
        super().__init__(
            FieldEmbedding(num_embeddings, num_fields, **sizes),
            WideAndDeepTower(
                num_embeddings, num_fields, hidden=hidden, dropout=dropout, norm=norm, **sizes
            ),
        )

    def forward(
        self,
        ids: torch.Tensor,
        values: torch.Tensor | None = None,
        dense: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.tower(self.bottom(ids, values, dense))

    def spec(self) -> dict[str, Any]:
        """``{"name": "WideAndDeep", "kwargs": {...}}``."""
        return make_spec("WideAndDeep", **_wide_deep_kwargs(self.tower))


def _wide_deep_kwargs(tower: WideAndDeepTower) -> dict[str, Any]:
    return {
        "num_embeddings": tower.num_embeddings,
        "num_fields": tower.num_fields,
        "embed_dim": tower.embed_dim,
        "hidden": tower.deep.hidden,
        "dense_features": tower.dense_features,
        "dropout": tower.deep.dropout,
        "norm": tower.deep.norm,
    }


def deep_input(embedded: Embedded) -> torch.Tensor:
    """The flattened field embeddings, followed by the dense input when there is one."""
    flat = embedded.vectors.flatten(1)
    return flat if embedded.dense is None else torch.cat([flat, embedded.dense], dim=1)


def _check_ids(ids: torch.Tensor, num_fields: int, num_embeddings: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.int64:
        kind = ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"`ids` must be an int64 tensor, got {kind}")
    if ids.ndim != 2 or ids.shape[1] != num_fields:
        raise ValueError(f"`ids` must have shape (N, {num_fields}), got {tuple(ids.shape)}")
    if _exporting() or not ids.numel():
        return  # a data-dependent check cannot be captured in an exported graph
    if int(ids.min()) < 0 or int(ids.max()) >= num_embeddings:
        raise ValueError(
            f"`ids` must be in [0, {num_embeddings}), got values in "
            f"[{int(ids.min())}, {int(ids.max())}]"
        )


def _exporting() -> bool:
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def _check_float_shape(name: str, value: torch.Tensor, shape: tuple[int, ...]) -> None:
    check_float_tensor(name, value)
    if tuple(value.shape) != shape:
        raise ValueError(f"`{name}` must have shape {shape}, got {tuple(value.shape)}")


def _check_dense(dense: torch.Tensor | None, rows: int, dense_features: int) -> None:
    if dense_features == 0:
        if dense is not None:
            raise ValueError("`dense` was given but the model has dense_features=0")
        return
    if dense is None:
        raise ValueError(f"`dense` is required: the model has dense_features={dense_features}")
    _check_float_shape("dense", dense, (rows, dense_features))
