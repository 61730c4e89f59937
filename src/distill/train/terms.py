"""The loss terms an :class:`~distill.train.objective.Objective` is built from.

Each term is a dataclass: its fields are the hyperparameters (shown in ``repr``), ``name`` is
the key it is logged under (``loss/<name>``) and ``__call__(outputs, batch, teacher_logits)``
calls one library loss. ``outputs`` is the model's output: a score/logit tensor, or
``(score, quantile_scores)`` from a model wrapped with quantile heads.

Example:
    >>> term = KDTerm(temperature=4.0, alpha=0.9, weight=1.0)
    >>> loss = term(student_logits, batch, teacher_logits)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from distill import losses, ranking, teacher_transforms
from distill._validation import check_positive_int
from distill.ranking import heads
from distill.ranking.pairs import Pairs, make_pairs
from distill.temperature import softmax_t
from distill.train.batches import Batch


def main_score(outputs: Any) -> torch.Tensor:
    """The main score/logits: the tensor itself, or the first item of a tuple output."""
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


@dataclass
class LabelsTerm:
    """Hard-label loss: ``"ce"`` (classes), ``"bce"`` (clicks) or ``"pairwise_logistic"``."""

    loss: Literal["ce", "bce", "pairwise_logistic"] = "ce"
    weight: float = 1.0
    name: ClassVar[str] = "labels"
    needs_teacher: ClassVar[bool] = False

    def __call__(self, outputs: Any, batch: Batch, teacher_logits: Any) -> torch.Tensor:
        score = main_score(outputs)
        if self.loss == "ce":
            return F.cross_entropy(score, batch.labels)
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(score, batch.labels.to(score.dtype))
        return ranking.pairwise_logistic_loss(score, batch.groups, batch.labels.to(score.dtype))


@dataclass
class KDTerm:
    """Hinton KD, ``distill.losses.kd_loss`` (α·T²·KL + (1 − α)·CE; T² unless ``scale_t2``).

    ``teacher_transform`` (a :func:`distill.teacher_transforms.get` spec) replaces the
    teacher's ``softmax_T`` by a synthetic distribution built from it and the labels (Tang et
    al. 2020: ``reweight``, ``similarity``, ``label_smoothing``, ``top_k``); ``similarity``
    reads the teacher's logit-layer ``class_vectors``, set by the runner.
    """

    temperature: float = 4.0
    alpha: float = 0.9
    scale_t2: bool = True
    weight: float = 1.0
    teacher_transform: Any = None
    class_vectors: torch.Tensor | None = field(default=None, repr=False)
    name: ClassVar[str] = "kd"
    needs_teacher: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.teacher_transform is not None:
            self.teacher_transform = teacher_transforms.get(self.teacher_transform)

    @property
    def needs_class_vectors(self) -> bool:
        """Whether the transform reads the teacher's class vectors (``similarity``)."""
        return getattr(self.teacher_transform, "name", None) == "similarity"

    def __call__(self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor) -> torch.Tensor:
        options = {"temperature": self.temperature, "alpha": self.alpha, "scale_t2": self.scale_t2}
        if self.teacher_transform is None:
            return losses.kd_loss(main_score(outputs), teacher_logits, batch.labels, **options)
        probs = softmax_t(teacher_logits.detach(), self.temperature)
        probs = self.teacher_transform(probs, batch.labels, self.class_vectors)
        return losses.kd_loss(
            main_score(outputs), None, batch.labels, teacher_probs=probs, **options
        )


@dataclass
class BinaryKDTerm:
    """Binary (CTR) KD, ``distill.losses.binary_kd_loss``: W·H(σ(v/T), σ(z)) + (1−W)·H(y, σ(z)).

    ``soft_weight`` is W (as in the loss); ``weight`` is the term's weight in the objective.
    """

    temperature: float = 1.0
    soft_weight: float = 0.5
    temper_student: bool = False
    weight: float = 1.0
    name: ClassVar[str] = "binary_kd"
    needs_teacher: ClassVar[bool] = True

    def __call__(self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor) -> torch.Tensor:
        score = main_score(outputs)
        return losses.binary_kd_loss(
            score,
            teacher_logits,
            batch.labels.to(score.dtype),
            temperature=self.temperature,
            soft_weight=self.soft_weight,
            temper_student=self.temper_student,
        )


@dataclass
class PointwiseTerm:
    """``distill.losses.pointwise_distillation_loss``: mean ρ(teacher − student) per example."""

    penalty: Any = "squared"
    signal: Literal["logit", "prob"] = "logit"
    weight: float = 1.0
    name: ClassVar[str] = "pointwise"
    needs_teacher: ClassVar[bool] = True

    def __call__(self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor) -> torch.Tensor:
        return losses.pointwise_distillation_loss(
            main_score(outputs), teacher_logits, penalty=self.penalty, signal=self.signal
        )


def _pair_set(batch: Batch, pairs: str, max_pairs_per_group: int | None) -> str | Pairs:
    """``pairs`` itself, or a fresh uniform sample of at most ``max_pairs_per_group`` per group.

    The sample is drawn from torch's global RNG (seeded and checkpointed by ``fit``).
    """
    if max_pairs_per_group is None:
        return pairs
    labels = batch.labels if pairs == "unequal" else None
    return make_pairs(batch.groups, labels, pairs=pairs, max_pairs_per_group=max_pairs_per_group)


def _check_pair_bound(max_pairs_per_group: int | None) -> None:
    if max_pairs_per_group is not None:
        check_positive_int("max_pairs_per_group", max_pairs_per_group)


@dataclass
class PairwiseTerm:
    """``distill.ranking.pairwise_distillation_loss`` over pairs inside each group.

    ``max_pairs_per_group``: at most this many pairs per group, sampled uniformly without
    replacement afresh every step (:func:`distill.ranking.pairs.make_pairs`); ``None`` uses all
    pairs. ``temperature``: of the student's soft ranks, for ``signal="rank"``. ``weight``
    depends on the penalty's scale: pinball with τ = 0.5 is half of ``absolute``.
    """

    penalty: Any = "squared"
    signal: str = "logit"
    absolute: bool = False
    pairs: str = "all"
    normalize: str = "pair"
    weight: float = 1.0
    max_pairs_per_group: int | None = None
    temperature: float = 1.0
    name: ClassVar[str] = "pairwise"
    needs_teacher: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_pair_bound(self.max_pairs_per_group)

    def __call__(self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor) -> torch.Tensor:
        return ranking.pairwise_distillation_loss(
            main_score(outputs),
            teacher_logits,
            batch.groups,
            labels=batch.labels,
            penalty=self.penalty,
            signal=self.signal,
            absolute=self.absolute,
            pairs=_pair_set(batch, self.pairs, self.max_pairs_per_group),
            normalize=self.normalize,
            temperature=self.temperature,
        )


@dataclass
class ListwiseTerm:
    """``distill.ranking.listwise_distillation_loss``: ListNet cross-entropy per group at T."""

    temperature: float = 1.0
    weight: float = 1.0
    name: ClassVar[str] = "listwise"
    needs_teacher: ClassVar[bool] = True

    def __call__(self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor) -> torch.Tensor:
        return ranking.listwise_distillation_loss(
            main_score(outputs), teacher_logits, batch.groups, temperature=self.temperature
        )


@dataclass
class QuantileHeadsTerm:
    """Quantile heads (US 2023/0252281 FIG. 4/5): pinball(τ_k) on K extra heads against the teacher.

    ``pairs=None``: each head's score against the teacher's score
    (``distill.ranking.quantile_distillation_loss``); else each head's pair differences against
    the teacher's (``distill.ranking.quantile_ranking_loss``), over at most
    ``max_pairs_per_group`` pairs per group if set (sampled afresh every step, as in
    :class:`PairwiseTerm`). The model is wrapped by
    ``distill.ranking.heads.with_quantile_heads`` for training only; serving uses the main score.
    """

    taus: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    mode: Literal["affine", "linear"] = "affine"
    signal: str = "logit"
    pairs: str | None = "all"
    normalize: str = "pair"
    weight: float = 1.0
    max_pairs_per_group: int | None = None
    name: ClassVar[str] = "quantile_heads"
    needs_teacher: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_pair_bound(self.max_pairs_per_group)
        if self.pairs is None and self.max_pairs_per_group is not None:
            raise ValueError("`max_pairs_per_group` needs pair targets, got `pairs` None")

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """The model with K quantile heads, ``(score, quantile_scores)`` in training mode."""
        return heads.with_quantile_heads(model, self.taus, self.mode)

    def __call__(self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor) -> torch.Tensor:
        _, quantile_scores = outputs
        if self.pairs is None:
            return ranking.quantile_distillation_loss(
                quantile_scores, teacher_logits, taus=self.taus, signal=self.signal
            )
        return ranking.quantile_ranking_loss(
            quantile_scores,
            teacher_logits,
            batch.groups,
            labels=batch.labels,
            taus=self.taus,
            signal=self.signal,
            pairs=_pair_set(batch, self.pairs, self.max_pairs_per_group),
            normalize=self.normalize,
        )


@dataclass
class LogitMatchingTerm:
    """Ba & Caruana logit matching, ``distill.losses.logit_matching_loss`` (mean (z − v)²)."""

    center: bool = False
    weight: float = 1.0
    name: ClassVar[str] = "logit_matching"
    needs_teacher: ClassVar[bool] = True

    def __call__(self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor) -> torch.Tensor:
        return losses.logit_matching_loss(main_score(outputs), teacher_logits, center=self.center)


TERMS: dict[str, type] = {
    term.name: term
    for term in (
        LabelsTerm,
        KDTerm,
        BinaryKDTerm,
        PointwiseTerm,
        PairwiseTerm,
        ListwiseTerm,
        QuantileHeadsTerm,
        LogitMatchingTerm,
    )
}
"""Term classes by name: the ``name`` of a term spec in a config."""
