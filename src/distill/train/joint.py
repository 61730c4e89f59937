"""Joint teacher/student training with static warm-up, then dynamic distillation
(docs/formulas.md#binary-kd)."""

from __future__ import annotations

from typing import Any

import torch

from distill._validation import check_number, check_positive_int
from distill.train.batches import Batch
from distill.train.objective import Objective
from distill.train.terms import BinaryKDTerm, LabelsTerm


class JointObjective(Objective):
    """Objective of a ``distill.models.JointModel`` whose forward gives ``(teacher, student)``.

    ``loss = teacher_weight · BCE(y, σ(teacher)) + E(x|T)`` with the student's
    ``E(x|T) = W · H(σ(v/T), σ(z)) + (1 − W) · H(y, σ(z))`` (``distill.losses.binary_kd_loss``).
    The teacher target ``v`` is, for steps ``1 … warmup_steps`` (phase ``"static"``), the fixed
    logits of a previously trained teacher (the ``teacher`` source given to ``fit``, e.g. cached
    scores), and afterwards (phase ``"dynamic"``) the concurrent teacher tower's output,
    detached so the student never pulls the teacher. Validation scores the student tower.

    The student gains only where the teacher tower beats the student trained alone *at
    convergence* (enough rows per id; an lr that trains the wide part): on ``synthetic_ctr``
    with 80k rows, 30 values per field, it gains 30–90 % of the teacher's edge (about
    0.003–0.007 AUC), no more than offline distillation from cached teacher scores; dynamic
    targets from step 1 gain least, hence the static warm-up. Where the teacher has no edge,
    the joint student is no better (BENCHMARKS.md, "Joint CTR model: student alone vs static vs
    static → dynamic").

    Args:
        soft_weight: W, the weight of the teacher's soft target in the student loss, in [0, 1].
        temperature: T > 0 of ``σ(v/T)``.
        warmup_steps: length of the static phase (0: dynamic from the start, no teacher source).
        teacher_weight: weight of the teacher tower's BCE.

    Raises:
        ValueError / TypeError: out-of-range arguments.

    Reference: Zhou et al. 2018, "Rocket Launching"; docs/formulas.md#binary-kd.

    Example:
        >>> objective = JointObjective(soft_weight=0.5, temperature=2.0, warmup_steps=100)
        >>> objective.phase(100), objective.phase(101)
        ('static', 'dynamic')
    """

    def __init__(
        self,
        *,
        soft_weight: float = 0.5,
        temperature: float = 1.0,
        warmup_steps: int = 0,
        teacher_weight: float = 1.0,
    ) -> None:
        check_number("soft_weight", soft_weight, low=0.0, high=1.0)
        check_number("temperature", temperature, low=0.0, low_open=True)
        self.warmup_steps = check_positive_int("warmup_steps", warmup_steps, minimum=0)
        self.teacher_term = LabelsTerm("bce", weight=teacher_weight)
        self.student_term = BinaryKDTerm(temperature=temperature, soft_weight=soft_weight)
        super().__init__([self.teacher_term, self.student_term])

    @property
    def uses_teacher(self) -> bool:
        """A teacher source is needed only for a static warm-up."""
        return self.warmup_steps > 0

    def needs_teacher(self, step: int) -> bool:
        """Fixed teacher labels are read during the static phase only."""
        return step <= self.warmup_steps

    def phase(self, step: int) -> str:
        """``"static"`` for steps ``1 … warmup_steps``, then ``"dynamic"``."""
        return "static" if step <= self.warmup_steps else "dynamic"

    def score(self, outputs: Any) -> torch.Tensor:
        """The student tower's logit (the served model)."""
        return outputs[1]

    def __call__(
        self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor | None, *, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and ``{"loss/teacher": ..., "loss/student": ...}``."""
        teacher_logit, student_logit = outputs
        if self.phase(step) == "dynamic":
            teacher_logits = teacher_logit.detach()
        parts = {
            "loss/teacher": self.teacher_term(teacher_logit, batch, None),
            "loss/student": self.student_term(student_logit, batch, teacher_logits),
        }
        total = self.teacher_term.weight * parts["loss/teacher"] + parts["loss/student"]
        return total, parts

    def __repr__(self) -> str:
        return (
            f"JointObjective(soft_weight={self.student_term.soft_weight}, "
            f"temperature={self.student_term.temperature}, warmup_steps={self.warmup_steps}, "
            f"teacher_weight={self.teacher_term.weight})"
        )
