"""Core distillation losses: Hinton KD, binary/CTR KD, logit matching, pointwise penalties.

Maths: docs/formulas.md (#classification-kd, #binary-kd, #penalties). Every loss treats the teacher
as a constant (its inputs are detached), computes an unreduced loss and reduces it once with
:func:`distill._reduce.reduce_loss` (``kd_loss`` reduces inside its two fused torch kernels instead;
same convention). float16 and bfloat16 inputs are computed in float32 and the result is cast back.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F

from distill import penalties
from distill._reduce import Reduction, reduce_loss
from distill._validation import (
    REDUCTIONS,
    check_choice,
    check_finite,
    check_float_tensor,
    check_loss_inputs,
    check_number,
    check_pair,
    value_range,
)
from distill.temperature import _check_class_indices, log_softmax_t, sigmoid_t, softmax_t

Signal = Literal["logit", "prob"]


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors are computed in float32 (exp/log lose too much in 16 bits)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_kd_options(temperature: float, alpha: float, reduction: str) -> tuple[float, float]:
    """Validate the :func:`kd_loss` hyperparameters; ``T`` must be finite and positive."""
    check_choice("reduction", reduction, REDUCTIONS)
    temperature = check_number(
        "temperature", temperature, low=0.0, high=math.inf, low_open=True, high_open=True
    )
    return temperature, check_number("alpha", alpha, low=0.0, high=1.0)


def _check_teacher_probs(probs: Any, student_logits: torch.Tensor) -> torch.Tensor:
    """Probabilities of the student's shape: non-negative, each row summing to 1."""
    check_pair("teacher_probs", probs, "student_logits", student_logits)
    if bool((probs < 0).any()):
        raise ValueError(f"`teacher_probs` must be non-negative, got {probs.min().item():.4g}")
    tolerance = 1e-2 if probs.element_size() <= 2 else 1e-4
    sums = probs.sum(dim=-1)
    worst = sums.flatten()[(sums - 1).abs().argmax()].item() if sums.numel() else 1.0
    if abs(worst - 1) > tolerance:
        raise ValueError(
            f"`teacher_probs` rows must sum to 1 (within {tolerance:g}), "
            f"got a row summing to {worst:.6g}"
        )
    return probs


def _teacher_distribution(student_logits, teacher_logits, teacher_probs, temperature):
    """``softmax_T(v)`` from teacher logits, or the given teacher probabilities (detached)."""
    if (teacher_logits is None) == (teacher_probs is None):
        raise ValueError("give exactly one of `teacher_logits` and `teacher_probs`")
    if teacher_probs is not None:
        return _upcast(_check_teacher_probs(teacher_probs, student_logits).detach())
    check_pair("teacher_logits", teacher_logits, "student_logits", student_logits)
    return softmax_t(_upcast(teacher_logits.detach()), temperature)


def _check_class_target(target: Any, student_logits: torch.Tensor, ignore_index: int) -> int:
    """Class indices of shape ``student_logits.shape[:-1]`` on the student's device.

    Returns the number of labelled rows (target not ``ignore_index``).
    """
    labelled = _check_class_indices(
        "target", target, student_logits.shape[-1], ignore_index=ignore_index
    )
    if target.shape != student_logits.shape[:-1]:
        raise ValueError(
            f"`target` shape {tuple(target.shape)} does not match `student_logits` shape "
            f"without its class axis {tuple(student_logits.shape[:-1])}"
        )
    if target.device != student_logits.device:
        raise ValueError(
            f"`target` is on device {target.device} but `student_logits` is on "
            f"{student_logits.device}"
        )
    return labelled


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    *,
    teacher_probs: torch.Tensor | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    scale_t2: bool = True,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Hinton knowledge-distillation loss: soft teacher term plus hard-label cross-entropy.

    ``α · T² · KL(softmax_T(v) ‖ softmax_T(z)) + (1 − α) · CE(y, softmax(z))``, averaged over
    examples ("batchmean": the KL is summed over classes, never averaged over them). With
    ``target=None`` (unlabeled transfer set) it is the soft term alone with weight 1 (α is
    ignored). Rows whose target is ``ignore_index`` are left out of the CE term and of its mean,
    but still count in the soft term (a teacher exists for every row), so with ``"mean"`` the
    soft term is divided by all N rows and the CE term by the non-ignored rows. ``T`` must be
    finite and positive: at ``T = 0`` the ``T²`` scaling vanishes and the teacher's log of a
    one-hot is ``-inf``; use ``teacher_probs=`` for hard or sharpened teachers instead.

    Args:
        student_logits: float ``(N, C)`` (or ``(..., C)``, class axis last).
        teacher_logits: teacher logits of the same shape, dtype and device.
        target: int class indices ``(N,)`` (or ``(...)``), may hold ``ignore_index``.
        teacher_probs: teacher probabilities ``(N, C)`` instead of ``teacher_logits`` (used as
            given, not re-tempered); exactly one of the two is required.
        temperature: ``T`` in ``(0, inf)``.
        alpha: ``α`` in ``[0, 1]``, the weight of the soft term.
        scale_t2: multiply the soft term by ``T²`` (keeps its gradient scale independent of T).
        ignore_index: target value whose rows are left out of the CE term.
        reduction: ``"mean"`` (per example), ``"sum"`` or ``"none"`` (per-example ``(N,)``).

    Returns:
        A scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        TypeError: non-float logits/probabilities, non-integer ``target``, dtype mismatch.
        ValueError: empty inputs, NaN/inf (teacher logits may be ``-inf``: a class the teacher
            rules out), shape/device mismatch, both or neither teacher given, probabilities
            that do not sum to 1, class index out of range, bad ``temperature``/``alpha``/
            ``reduction``.

    Reference: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network";
    docs/formulas.md#classification-kd.

    Example:
        >>> z, v = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[2.0, 0.0, -2.0]])
        >>> kd_loss(z, v, torch.tensor([0]), temperature=2.0, alpha=0.5)
        tensor(0.3243)
    """
    check_float_tensor("student_logits", student_logits)
    if student_logits.ndim < 2:
        raise ValueError(
            "`student_logits` must have a class axis, shape (N, C) or (..., C), "
            f"got shape {tuple(student_logits.shape)}"
        )
    temperature, alpha = _check_kd_options(temperature, alpha, reduction)
    teacher = _teacher_distribution(student_logits, teacher_logits, teacher_probs, temperature)
    check_loss_inputs(
        {
            "student_logits": student_logits,
            "teacher_logits": teacher_logits,
            "teacher_probs": teacher_probs,
        },
        allow_neg_inf=("teacher_logits",),
    )
    student = _upcast(student_logits)
    summed = "none" if reduction == "none" else "sum"
    soft = F.kl_div(log_softmax_t(student, temperature), teacher, reduction=summed)
    soft = soft.sum(-1) if reduction == "none" else soft
    scale = temperature**2 if scale_t2 else 1.0
    rows = math.prod(student.shape[:-1])
    if target is None:
        return (soft * _term_weight(scale, reduction, rows)).to(student_logits.dtype)
    labelled = _check_class_target(target, student_logits, ignore_index)
    classes = student.shape[-1]
    hard = F.cross_entropy(
        student.reshape(-1, classes),
        target.reshape(-1),
        ignore_index=ignore_index,
        reduction=summed,
    )
    hard = hard.reshape(target.shape) if reduction == "none" else hard
    loss = soft * _term_weight(alpha * scale, reduction, rows)
    loss = loss + hard * _term_weight(1 - alpha, reduction, labelled)
    return loss.to(student_logits.dtype)


def _term_weight(weight: float, reduction: Reduction, count: int) -> float:
    """A summed term's weight, divided by its row count for ``"mean"`` (0 rows count as 1).

    :func:`kd_loss` reduces inside ``kl_div``/``cross_entropy`` and folds the means into these
    host-side weights: it runs on every batch, and each extra tensor op costs ~10 µs per step.
    """
    return weight / max(count, 1) if reduction == "mean" else weight


def _check_binary_options(
    temperature: float, soft_weight: float, temper_student: bool, reduction: str
):
    """Validate :func:`binary_kd_loss` hyperparameters (tempering the student needs 0 < T < inf)."""
    check_choice("reduction", reduction, REDUCTIONS)
    if temper_student:
        temperature = check_number(
            "temperature", temperature, low=0.0, high=math.inf, low_open=True, high_open=True
        )
    else:
        temperature = check_number("temperature", temperature, low=0.0)
    return temperature, check_number("soft_weight", soft_weight, low=0.0, high=1.0)


def _binary_target(target: Any, student_logits: torch.Tensor) -> torch.Tensor:
    """Labels in [0, 1] of the student's shape; integer/bool labels are cast to its dtype."""
    if isinstance(target, torch.Tensor) and not target.is_floating_point():
        target = target.to(student_logits.dtype)
    check_pair("target", target, "student_logits", student_logits)
    if target.numel():
        low, high = value_range(target)
        if not (low >= 0 and high <= 1):  # NaN fails both
            check_finite("target", target)
            raise ValueError(f"`target` values must be in [0, 1], got {low if low < 0 else high:g}")
    return target


def binary_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    soft_weight: float = 0.5,
    temper_student: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Binary (CTR) distillation, the joint optimisation model's loss E(x | T).

    ``E = W · H(σ(v/T), σ(z)) + (1 − W) · H(y, σ(z))`` per element, with ``H(a, b) = −a·log b −
    (1 − a)·log(1 − b)`` computed from logits (``binary_cross_entropy_with_logits`` with soft
    targets; ``H`` is linear in ``a``, so without a tempered student ``E = H(W·σ(v/T) + (1 − W)·y,
    σ(z))``, one kernel). Only the teacher is tempered unless ``temper_student=True``, which uses
    ``σ(z/T)`` in the soft term and multiplies it by ``T²``. ``target=None`` gives the soft term
    alone with weight 1. ``T = 0`` gives hard teacher labels (step), ``T = inf`` gives 0.5.
    Multi-label logits ``(N, L)`` are independent sigmoids; ``"mean"`` averages all elements.

    Args:
        student_logits: float ``(N,)`` or ``(N, L)``.
        teacher_logits: same shape, dtype and device (detached: the student never pulls the
            teacher, also in joint training).
        target: labels in ``[0, 1]`` of the same shape (integer/bool labels are cast).
        temperature: ``T`` in ``[0, inf]`` (``(0, inf)`` when ``temper_student``).
        soft_weight: ``W`` in ``[0, 1]``, the weight of the teacher's soft target (the same
            name in ``BinaryKDTerm``, ``JointObjective`` and the config's ``binary_kd``/``joint``).
        temper_student: temper the student's logit too and apply ``T²``.
        reduction: ``"mean"`` (over elements), ``"sum"`` or ``"none"`` (elementwise).

    Returns:
        A scalar, or the student's shape for ``reduction="none"``.

    Raises:
        TypeError: non-float logits or dtype mismatch.
        ValueError: empty inputs, NaN/inf logits (argument and first index named), shape/device
            mismatch, labels outside ``[0, 1]`` (NaN labels included), bad hyperparameters.

    Reference: docs/formulas.md#binary-kd; Hinton et al. (2015); Zhou et al.
    (2018), "Rocket Launching".

    Example:
        >>> z, v = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 3.0])
        >>> binary_kd_loss(z, v, torch.tensor([1.0, 1.0]), temperature=2.0, soft_weight=0.5)
        tensor(0.5013)
    """
    check_float_tensor("student_logits", student_logits)
    check_pair("teacher_logits", teacher_logits, "student_logits", student_logits)
    temperature, soft_weight = _check_binary_options(
        temperature, soft_weight, temper_student, reduction
    )
    check_loss_inputs({"student_logits": student_logits, "teacher_logits": teacher_logits})
    student = _upcast(student_logits)
    teacher = sigmoid_t(_upcast(teacher_logits.detach()), temperature)
    if target is not None:
        labels = _upcast(_binary_target(target, student_logits))
        if not temper_student:  # H is linear in its target: one BCE against the mixed target
            mixed = torch.lerp(labels, teacher, soft_weight)
            loss = F.binary_cross_entropy_with_logits(student, mixed, reduction="none")
            return reduce_loss(loss, reduction).to(student_logits.dtype)
    tempered = student / temperature if temper_student else student
    soft = F.binary_cross_entropy_with_logits(tempered, teacher, reduction="none")
    if temper_student:
        soft = soft * temperature**2
    if target is None:
        return reduce_loss(soft, reduction).to(student_logits.dtype)
    hard = F.binary_cross_entropy_with_logits(student, labels, reduction="none")
    loss = soft_weight * soft + (1 - soft_weight) * hard
    return reduce_loss(loss, reduction).to(student_logits.dtype)


def _check_center(center: bool, student_logits: torch.Tensor) -> None:
    """``center=True`` needs a class axis to centre each example's logits over."""
    if center and student_logits.ndim < 2:
        raise ValueError(
            "`center=True` needs logits with a class axis (N, C), "
            f"got shape {tuple(student_logits.shape)}"
        )


def logit_matching_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    center: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Logit matching (Ba & Caruana 2014): ``mean((z − v)²)``, the high-T limit of KD.

    With ``center=True`` each example's logits are first centred over the class axis
    (``z − mean(z)``, ``v − mean(v)``), which removes the per-example shift softmax ignores.

    Args:
        student_logits: float, any shape; ``(N, C)`` (class axis last) when ``center``.
        teacher_logits: same shape, dtype and device (detached).
        center: centre each example's logits over the last axis first.
        reduction: ``"mean"`` (over elements), ``"sum"`` or ``"none"`` (elementwise).

    Returns:
        A scalar, or the logits' shape for ``reduction="none"``.

    Raises:
        TypeError: non-float logits or dtype mismatch.
        ValueError: empty inputs, NaN/inf logits (argument and first index named), shape/device
            mismatch, ``center`` without a class axis, bad ``reduction``.

    Reference: Ba & Caruana (2014), "Do Deep Nets Really Need to be Deep?";
    docs/formulas.md#classification-kd.

    Example:
        >>> logit_matching_loss(torch.tensor([[1.0, 3.0]]), torch.tensor([[2.0, 2.0]]))
        tensor(1.)
    """
    check_float_tensor("student_logits", student_logits)
    check_pair("teacher_logits", teacher_logits, "student_logits", student_logits)
    check_choice("reduction", reduction, REDUCTIONS)
    _check_center(center, student_logits)
    check_loss_inputs({"student_logits": student_logits, "teacher_logits": teacher_logits})
    student, teacher = student_logits, teacher_logits.detach()
    if center:
        student = student - student.mean(dim=-1, keepdim=True)
        teacher = teacher - teacher.mean(dim=-1, keepdim=True)
    return reduce_loss(F.mse_loss(student, teacher, reduction="none"), reduction)


def pointwise_distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    *,
    penalty: penalties.Penalty | str | dict[str, Any],
    signal: Signal = "logit",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Any penalty on the per-example residual ``r = signal(teacher) − signal(student)``.

    ``loss_i = ρ(signal(t_i) − signal(s_i))`` with ``signal`` the identity (``"logit"``) or the
    sigmoid (``"prob"``): direct label distillation with L1, quantile, Huber or G-SmeLU
    penalties. Multi-quantile penalties are averaged over their quantiles.

    Args:
        student: student scores/logits, float, any shape (e.g. ``(N,)``).
        teacher: teacher scores of the same shape, dtype and device (detached).
        penalty: anything :func:`distill.penalties.get` accepts (name, mapping or Penalty).
        signal: ``"logit"`` or ``"prob"``.
        reduction: ``"mean"`` (over elements), ``"sum"`` or ``"none"`` (elementwise).

    Returns:
        A scalar, or the scores' shape for ``reduction="none"``.

    Raises:
        TypeError: non-float scores, dtype mismatch, bad ``penalty`` type.
        ValueError: empty inputs, NaN/inf scores (argument and first index named),
            shape/device mismatch, unknown penalty/keys/values, bad ``signal``.

    Reference: US 2023/0252281 ¶0052, ¶0103 (pointwise distillation with robust penalties);
    docs/formulas.md#penalties.

    Example:
        >>> s, t = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 3.0])
        >>> pointwise_distillation_loss(s, t, penalty={"name": "pinball", "tau": 0.5})
        tensor(0.7500)
    """
    check_float_tensor("student", student)
    check_pair("teacher", teacher, "student", student)
    check_choice("signal", signal, ("logit", "prob"))
    check_choice("reduction", reduction, REDUCTIONS)
    rho = penalties.get(penalty)
    check_loss_inputs({"student": student, "teacher": teacher})
    teacher = teacher.detach()
    if signal == "prob":
        student, teacher = torch.sigmoid(student), torch.sigmoid(teacher)
    return reduce_loss(rho(teacher - student), reduction)
