"""Listwise distillation over ragged groups: the teacher's and the student's softmax per group.

US 2023/0252281 generalises its pairwise loss to one loss "for the list of examples in an
example set"; the ListNet top-one cross-entropy (Cao et al. 2007) is that loss for score lists. The
softmax of each group is computed for all groups at once with scatter operations (segment
max, segment sum of exponentials): no Python loop over groups, O(N) memory.
"""

from __future__ import annotations

import torch

from distill._reduce import Reduction, reduce_loss
from distill._validation import (
    check_finite,
    check_float_tensor,
    check_number,
    check_pair,
    check_same_shape,
)
from distill.ranking.pairs import check_group_ids


def segment_log_softmax(scores: torch.Tensor, segment: torch.Tensor, count: int) -> torch.Tensor:
    """``log_softmax`` within each segment: ``s_i − log Σ_{j in i's segment} exp(s_j)``.

    Args:
        scores: ``(N,)`` float scores.
        segment: ``(N,)`` int64 segment of each item, in ``0 .. count − 1``.
        count: number of segments.

    Returns:
        ``(N,)`` log-probabilities; each segment's probabilities sum to 1.
    """
    top = scores.new_full((count,), -torch.inf).scatter_reduce(
        0, segment, scores.detach(), "amax", include_self=True
    )
    shifted = scores - top[segment]
    total = shifted.new_zeros(count).index_add(0, segment, shifted.exp())
    return shifted - total.log()[segment]


def listwise_distillation_loss(
    student_scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    temperature: float = 1.0,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """ListNet distillation: per group, ``−Σ_i softmax(t/T)_i · log softmax(s/T)_i``.

    The cross-entropy between the teacher's and the student's top-one probabilities over the
    items of each group (a query, or a set of items recommended together), at temperature T.
    It equals ``KL(p_teacher ‖ p_student)`` plus the teacher's entropy (constant in the
    student), is smallest when the student's scores equal the teacher's up to a shift per
    group, and is invariant to such shifts. The teacher is detached.

    Args:
        student_scores: ``(N,)`` student logits, one per item.
        teacher_scores: ``(N,)`` teacher logits, same dtype and device.
        group_ids: ``(N,)`` integer group ids (any order, any values).
        temperature: ``T > 0`` of both softmaxes.
        reduction: ``"mean"`` over the groups with at least two items, ``"sum"`` over the
            groups, or ``"none"``: ``(G,)`` per group in sorted group-id order (a group of one
            item has loss 0).

    Returns:
        A scalar, or ``(G,)`` for ``"none"``; 0 with finite gradients when no group has two
        items.

    Raises:
        TypeError: non-float scores, non-integer ``group_ids``.
        ValueError: shape/length mismatch, NaN/inf scores, ``temperature <= 0``, unknown
            ``reduction``.

    Reference: Cao, Qin, Liu, Tsai & Li (2007), "Learning to rank: from pairwise approach to
    listwise approach" (ListNet); US 2023/0252281 (the loss "once for the list of examples in
    an example set"); docs/methods.md.

    Example:
        >>> listwise_distillation_loss(torch.zeros(2), torch.tensor([0.0, 0.0]),
        ...                            torch.tensor([3, 3]))
        tensor(0.6931)
    """
    check_float_tensor("student_scores", student_scores)
    if student_scores.ndim != 1:
        shape = tuple(student_scores.shape)
        raise ValueError(f"`student_scores` must have shape (N,), got {shape}")
    check_pair("teacher_scores", teacher_scores, "student_scores", student_scores)
    check_finite("student_scores", student_scores)
    check_finite("teacher_scores", teacher_scores)
    check_same_shape("group_ids", check_group_ids(group_ids), "student_scores", student_scores)
    temperature = check_number("temperature", temperature, low=0.0, low_open=True)
    groups, segment = torch.unique(group_ids, return_inverse=True)
    count = len(groups)
    teacher = segment_log_softmax(teacher_scores.detach() / temperature, segment, count).exp()
    student = segment_log_softmax(student_scores / temperature, segment, count)
    per_group = student.new_zeros(count).index_add(0, segment, -teacher * student)
    sizes = torch.bincount(segment, minlength=count)
    return reduce_loss(per_group, reduction, count=(sizes > 1).sum())
