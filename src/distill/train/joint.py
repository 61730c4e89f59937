"""Joint teacher/student training with static warm-up, then dynamic distillation
(docs/formulas.md#binary-kd)."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F

from distill._validation import check_choice, check_number, check_positive_int
from distill.losses import binary_kd_loss
from distill.train.batches import Batch
from distill.train.objective import Objective
from distill.train.terms import BinaryKDTerm, LabelsTerm

Gate = Literal["switch", "linear", "cosine", "learned"]
GATES = ("switch", "linear", "cosine", "learned")


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

    The input gate mixes the two teacher labels, ``ŷ = g·ŷ_dynamic + (1 − g)·ŷ_static``:
    ``gate="switch"`` is the hard switch above (g = 0, then 1); ``"linear"`` / ``"cosine"``
    ramp g from 0 to 1 over ``gate_steps`` steps after ``warmup_steps``; ``"learned"`` reads a
    per-example gate logit from the model (``ctr_joint_model(gate_hidden=...)``), trained by
    ``H(y, ŷ)`` with both labels detached (which label predicts the click), while the student
    learns from ``ŷ`` with g detached.

    Args:
        soft_weight: W, the weight of the teacher's soft target in the student loss, in [0, 1].
        temperature: T > 0 of ``σ(v/T)``.
        warmup_steps: length of the static phase (0: dynamic from the start, no teacher source).
        teacher_weight: weight of the teacher tower's BCE.
        gate: ``"switch"``, ``"linear"``, ``"cosine"`` or ``"learned"``.
        gate_steps: length of the linear / cosine ramp (>= 1 for those).

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
        gate: Gate = "switch",
        gate_steps: int = 0,
    ) -> None:
        check_number("soft_weight", soft_weight, low=0.0, high=1.0)
        check_number("temperature", temperature, low=0.0, low_open=True)
        self.warmup_steps = check_positive_int("warmup_steps", warmup_steps, minimum=0)
        self.gate = check_choice("gate", gate, GATES)
        self.gate_steps = check_positive_int("gate_steps", gate_steps, minimum=0)
        if gate in ("linear", "cosine") and gate_steps == 0:
            raise ValueError(f"`gate_steps` must be >= 1 for gate {gate!r}, got 0")
        self.teacher_term = LabelsTerm("bce", weight=teacher_weight)
        self.student_term = BinaryKDTerm(temperature=temperature, soft_weight=soft_weight)
        super().__init__([self.teacher_term, self.student_term])

    @property
    def uses_teacher(self) -> bool:
        """A teacher source is needed for a static warm-up, a ramp or a learned gate."""
        return self.warmup_steps > 0 or self.gate != "switch"

    def needs_teacher(self, step: int) -> bool:
        """Fixed teacher labels are read while they still carry weight (``g < 1``)."""
        if self.gate == "learned":
            return True
        return step <= self.warmup_steps + (0 if self.gate == "switch" else self.gate_steps)

    def phase(self, step: int) -> str:
        """``"static"`` for steps ``1 … warmup_steps``, then ``"dynamic"``."""
        return "static" if step <= self.warmup_steps else "dynamic"

    def gate_value(self, step: int) -> float:
        """The scheduled ``g`` of a step: 0 up to ``warmup_steps``, then 1 (``switch``) or a
        linear / cosine ramp to 1 over ``gate_steps`` steps."""
        if self.gate == "learned":
            raise ValueError("gate 'learned' has no schedule: g comes from the model")
        if self.gate == "switch":
            return float(step > self.warmup_steps)
        progress = min(max((step - self.warmup_steps) / self.gate_steps, 0.0), 1.0)
        return progress if self.gate == "linear" else (1 - math.cos(math.pi * progress)) / 2

    def score(self, outputs: Any) -> torch.Tensor:
        """The student tower's logit (the served model)."""
        return outputs[1]

    def __call__(
        self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor | None, *, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and ``{"loss/teacher": ..., "loss/student": ...}`` (``"loss/gate"``)."""
        teacher_logit, student_logit = outputs[0], outputs[1]
        dynamic, static = teacher_logit.detach(), teacher_logits
        parts = {"loss/teacher": self.teacher_term(teacher_logit, batch, None)}
        if self.gate == "learned":
            g = torch.sigmoid(outputs[2])
            parts["loss/gate"] = self._gate_loss(g, dynamic, static, batch)
            parts["loss/student"] = self._mixed(student_logit, dynamic, static, g.detach(), batch)
        else:
            g = self.gate_value(step)
            parts["loss/student"] = self._mixed(student_logit, dynamic, static, g, batch)
        total = self.teacher_term.weight * parts["loss/teacher"] + parts["loss/student"]
        return total + parts.get("loss/gate", 0.0), parts

    def _mixed(self, student_logit, dynamic, static, g, batch: Batch) -> torch.Tensor:
        """``E(x|T)`` against ``ŷ = g·ŷ_dynamic + (1 − g)·ŷ_static``.

        ``H(a, ·)`` is linear in the target a, so this is ``g·E(dynamic) + (1 − g)·E(static)``
        per example (exact; no logit of a mixed probability is needed).
        """
        if isinstance(g, float) and g in (0.0, 1.0):
            return self.student_term(student_logit, batch, dynamic if g == 1.0 else static)
        term, labels = self.student_term, batch.labels.to(student_logit.dtype)
        options = {"temperature": term.temperature, "soft_weight": term.soft_weight}
        per_dynamic = binary_kd_loss(student_logit, dynamic, labels, **options, reduction="none")
        per_static = binary_kd_loss(student_logit, static, labels, **options, reduction="none")
        return (g * per_dynamic + (1 - g) * per_static).mean()

    def _gate_loss(self, g, dynamic, static, batch: Batch) -> torch.Tensor:
        """The learned gate's own loss: ``H(y, g·σ(v_dyn/T) + (1 − g)·σ(v_static/T))``.

        The gate learns, per example, which teacher label predicts the click better; both
        labels are detached, so only the gate moves.
        """
        temperature = self.student_term.temperature
        mixed = g * torch.sigmoid(dynamic / temperature)
        mixed = mixed + (1 - g) * torch.sigmoid(static.detach() / temperature)
        labels = batch.labels.to(mixed.dtype)
        return F.binary_cross_entropy(mixed.clamp(1e-7, 1 - 1e-7), labels)

    def __repr__(self) -> str:
        return (
            f"JointObjective(soft_weight={self.student_term.soft_weight}, "
            f"temperature={self.student_term.temperature}, warmup_steps={self.warmup_steps}, "
            f"teacher_weight={self.teacher_term.weight}, gate={self.gate!r}, "
            f"gate_steps={self.gate_steps})"
        )
