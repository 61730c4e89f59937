"""Composite models: a bottom under one tower (:class:`StackedModel`) or under two
(:class:`JointModel`, the teacher/student joint model)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill.models._spec import make_spec, module_spec


class StackedModel(nn.Module):
    """A bottom module feeding one tower: ``y = tower(bottom(*inputs))``.

    This is the serving form of a :class:`JointModel` student (shared bottom + student tower).

    Args:
        bottom: any module; it receives the model's inputs.
        tower: any module; it receives the bottom's output.

    Returns (forward): whatever ``tower`` returns, e.g. scores ``(N,)``.

    Raises:
        TypeError: from :meth:`spec` when a part has no ``spec()``.

    Reference: the "light net" served after joint training (Zhou et al. 2018, "Rocket
    Launching", Sec. 3).

    Example:
        >>> from distill.models import MLP
        >>> model = StackedModel(MLP(8, (16,), 4), MLP(4, (), 1))
        >>> model(torch.randn(2, 8)).shape
        torch.Size([2])
    """

    def __init__(self, bottom: nn.Module, tower: nn.Module) -> None:
        super().__init__()
        self.bottom = bottom
        self.tower = tower

    def forward(self, *inputs: Any, **options: Any) -> Any:
        return self.tower(self.bottom(*inputs, **options))

    def spec(self) -> dict[str, Any]:
        """Nested spec: ``{"name": "StackedModel", "kwargs": {"bottom": ..., "tower": ...}}``."""
        bottom = module_spec("bottom", self.bottom)
        return make_spec("StackedModel", bottom=bottom, tower=module_spec("tower", self.tower))


class JointModel(nn.Module):
    """Teacher and student trained together over one shared bottom.

    ``e = bottom(x)``; ``teacher_logit = teacher_tower(e)``, ``student_logit = student_tower(e)``.
    Both towers train the shared bottom; the distillation loss detaches the teacher term
    (docs/formulas.md#binary-kd), so the student never pulls the teacher.

    Args:
        shared_bottom: e.g. :class:`~distill.models.FieldEmbedding` over sparse ids.
        teacher_tower: the large tower (e.g. :class:`~distill.models.DeepCTRTower`).
        student_tower: the small tower that is served (e.g.
            :class:`~distill.models.WideAndDeepTower`).
        gate: optional learned input gate over the shared bottom (a per-example logit g that
            mixes the dynamic and static teacher labels, see ``distill.train.joint``).

    Returns (forward): ``(teacher_logit, student_logit)``, each what its tower returns
    (``(N,)`` for CTR), plus the gate logit when there is a gate.

    Raises:
        TypeError: from :meth:`spec` when a part has no ``spec()``.

    Reference: joint optimisation of a teacher and a student with shared bottom layers
    (Zhou et al. 2018, "Rocket Launching"; docs/formulas.md#binary-kd).

    Example:
        >>> from distill.models import ctr_joint_model
        >>> joint = ctr_joint_model(num_embeddings=100, num_fields=3)
        >>> teacher_logit, student_logit = joint(torch.randint(0, 100, (5, 3)))
        >>> student_logit.shape
        torch.Size([5])
    """

    def __init__(
        self,
        shared_bottom: nn.Module,
        teacher_tower: nn.Module,
        student_tower: nn.Module,
        gate: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.shared_bottom = shared_bottom
        self.teacher_tower = teacher_tower
        self.student_tower = student_tower
        self.gate = gate

    def forward(self, *inputs: Any, **options: Any) -> tuple[torch.Tensor, ...]:
        shared = self.shared_bottom(*inputs, **options)
        towers = (self.teacher_tower(shared), self.student_tower(shared))
        return towers if self.gate is None else (*towers, self.gate(shared))

    def student(self) -> StackedModel:
        """The serving model: shared bottom + student tower only (parameters shared, no copy)."""
        return StackedModel(self.shared_bottom, self.student_tower)

    def teacher(self) -> StackedModel:
        """Shared bottom + teacher tower (parameters shared), e.g. to cache static labels."""
        return StackedModel(self.shared_bottom, self.teacher_tower)

    def spec(self) -> dict[str, Any]:
        """Nested spec with the three parts' specs as kwargs."""
        return make_spec(
            "JointModel",
            shared_bottom=module_spec("shared_bottom", self.shared_bottom),
            teacher_tower=module_spec("teacher_tower", self.teacher_tower),
            student_tower=module_spec("student_tower", self.student_tower),
            **({} if self.gate is None else {"gate": module_spec("gate", self.gate)}),
        )
