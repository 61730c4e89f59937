"""The CTR joint model (a shared embedding, a teacher tower and a Wide & Deep student tower)
and its dynamic-structure teacher tower, a gated mixture of deep experts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from distill._validation import check_positive_int
from distill.models._spec import make_spec
from distill.models.compose import JointModel
from distill.models.ctr import (
    DeepCTRTower,
    Embedded,
    FieldEmbedding,
    WideAndDeepTower,
    deep_input,
)


class GatedExpertTower(nn.Module):
    """A dynamic-structure teacher tower: a softmax gate mixes K deep expert towers.

    ``y(e) = Σ_k softmax(G·x + c)_k · tower_k(e)`` with ``x`` the flattened embedding (plus
    dense input) and each ``tower_k`` a :class:`DeepCTRTower`; the gate picks, per example,
    which experts score it.

    Args:
        num_fields, embed_dim, dense_features, hidden, dropout: as in :class:`DeepCTRTower`
            (each expert's widths).
        experts: K >= 1.

    Reference: Jacobs, Jordan, Nowlan & Hinton (1991), "Adaptive mixtures of local experts";
    Ma et al. (2018), MMoE.

    Example:
        >>> tower = GatedExpertTower(3, experts=2, hidden=(8,))
        >>> tower(FieldEmbedding(10, 3)(torch.tensor([[1, 2, 3]]))).shape
        torch.Size([1])
    """

    def __init__(
        self,
        num_fields: int,
        *,
        embed_dim: int = 8,
        experts: int = 4,
        hidden: Sequence[int] = (128, 64),
        dense_features: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        sizes = {"embed_dim": embed_dim, "dense_features": dense_features}
        count = check_positive_int("experts", experts)
        self.experts = nn.ModuleList(
            DeepCTRTower(num_fields, hidden=hidden, dropout=dropout, **sizes) for _ in range(count)
        )
        self.gate = nn.Linear(num_fields * embed_dim + dense_features, count)

    def forward(self, embedded: Embedded) -> torch.Tensor:
        weights = torch.softmax(self.gate(deep_input(embedded)), dim=-1)
        scores = torch.stack([expert(embedded) for expert in self.experts], dim=-1)
        return (weights * scores).sum(dim=-1)

    def spec(self) -> dict[str, Any]:
        """``{"name": "GatedExpertTower", "kwargs": {...}}``."""
        first = self.experts[0]
        return make_spec(
            "GatedExpertTower",
            num_fields=first.num_fields,
            embed_dim=first.embed_dim,
            experts=len(self.experts),
            hidden=first.deep.hidden,
            dense_features=first.dense_features,
            dropout=first.deep.dropout,
        )


def ctr_joint_model(
    num_embeddings: int,
    num_fields: int,
    *,
    embed_dim: int = 8,
    student_hidden: Sequence[int] = (64, 32),
    teacher_hidden: Sequence[int] = (256, 128, 64),
    dense_features: int = 0,
    dropout: float = 0.0,
    teacher_experts: int = 0,
    gate_hidden: Sequence[int] | None = None,
) -> JointModel:
    """The CTR joint model: shared :class:`FieldEmbedding`, :class:`DeepCTRTower` teacher and
    :class:`WideAndDeepTower` student; ``student()`` has :class:`WideAndDeep`'s state-dict keys.

    ``e = FieldEmbedding(ids, values, dense)``; ``(DeepCTRTower(e), WideAndDeepTower(e))``.

    Args:
        num_embeddings, num_fields: id space size (max id + 1) and number of id columns F.
        embed_dim: shared embedding width; dense_features: dense input width (0: none).
        student_hidden, teacher_hidden: the towers' MLP widths; dropout: in both towers.
        teacher_experts: K > 0 makes the teacher a :class:`GatedExpertTower` of K deep towers
            of ``teacher_hidden`` (a dynamic-structure teacher); 0: one :class:`DeepCTRTower`.
        gate_hidden: widths of a learned label gate (a :class:`DeepCTRTower` on the shared
            embedding: forward then returns a third output, the gate logit); None: no gate.

    Returns:
        A :class:`JointModel`; forward ``(ids, values=None, dense=None)`` →
        ``(teacher_logit (N,), student_logit (N,))``.

    Raises:
        TypeError, ValueError: bad sizes (see the parts).

    Reference: Zhou et al. 2018, "Rocket Launching" (shared bottom, booster and light towers);
    Cheng et al. 2016 (Wide & Deep student).

    Example:
        >>> joint = ctr_joint_model(100, 3)
        >>> [p.shape for p in joint.student().parameters()][0]
        torch.Size([100, 8])
    """
    sizes = {"embed_dim": embed_dim, "dense_features": dense_features}
    teacher = {"hidden": teacher_hidden, "dropout": dropout, **sizes}
    if teacher_experts:
        tower = GatedExpertTower(num_fields, experts=teacher_experts, **teacher)
    else:
        tower = DeepCTRTower(num_fields, **teacher)
    gate = None if gate_hidden is None else DeepCTRTower(num_fields, hidden=gate_hidden, **sizes)
    return JointModel(
        FieldEmbedding(num_embeddings, num_fields, **sizes),
        tower,
        WideAndDeepTower(
            num_embeddings, num_fields, hidden=student_hidden, dropout=dropout, **sizes
        ),
        gate=gate,
    )
