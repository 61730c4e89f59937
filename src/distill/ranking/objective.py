"""A combined ranking objective: label term + pointwise + pairwise distillation, weighted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from distill import penalties
from distill._validation import check_choice, check_number
from distill.losses import pointwise_distillation_loss
from distill.ranking.losses import (
    PenaltySpec,
    pairwise_distillation_loss,
    pairwise_logistic_loss,
)
from distill.ranking.pair_engine import Normalize
from distill.ranking.pairs import SIGNALS, PairSet, Signal
from distill.ranking.quantile_losses import quantile_ranking_loss

LabelTerm = Literal["bce", "pairwise_logistic"]
TERMS = ("label", "pointwise", "pairwise", "quantile")


class RankingObjective:
    """``Σ_term w_term · term`` over label, pointwise, pairwise and quantile-head terms.

    - ``label``: ``"bce"`` (``BCE(σ(s), y)`` with clicks / labels in [0, 1]) or
      ``"pairwise_logistic"`` (RankNet, :func:`~distill.ranking.pairwise_logistic_loss`);
    - ``pointwise``: :func:`distill.losses.pointwise_distillation_loss` with this penalty;
    - ``pairwise``: :func:`~distill.ranking.pairwise_distillation_loss` with this penalty;
    - ``quantile``: :func:`~distill.ranking.quantile_ranking_loss` on the quantile heads'
      scores (FIG. 4/5, :func:`distill.ranking.heads.with_quantile_heads`), one τ per head.

    A term set to ``None`` is off. Weights default to 1 for every enabled term.

    Args:
        label: ``"bce"``, ``"pairwise_logistic"`` or ``None``.
        pointwise: penalty spec (anything :func:`distill.penalties.get` accepts) or ``None``.
        pairwise: penalty spec or ``None``.
        quantile: the heads' quantiles τ_k, or ``None``.
        weights: mapping from enabled term names to weights ``>= 0``.
        signal: pair signal of the pairwise term; ``pairs``, ``normalize`` likewise.
        pointwise_signal: ``"logit"`` or ``"prob"`` for the pointwise term.
        ties: ties handling of ``"pairwise_logistic"``.

    Call:
        ``objective(student_scores (N,), teacher_scores (N,) | None, group_ids (N,),
        labels (N,) | None, *, quantile_scores (N, K) | None)`` → ``(total, terms)`` with
        ``terms`` the unweighted value of each enabled term by name (for logging).

    Raises:
        ValueError: no term enabled, unknown or negative weights, bad options, ``labels`` or
            ``teacher_scores`` / ``quantile_scores`` missing for a term that needs them.

    Reference: docs/formulas.md#pairs (weighted label, pointwise and pairwise terms).

    Example:
        >>> objective = RankingObjective(label="pairwise_logistic", pairwise="absolute",
        ...                              weights={"label": 0.5, "pairwise": 1.0})
        >>> s, t, g, y = torch.zeros(3), torch.ones(3), torch.tensor([0, 0, 1]), torch.ones(3)
        >>> total, terms = objective(s, t, g, y)
        >>> sorted(terms)
        ['label', 'pairwise']
    """

    def __init__(
        self,
        *,
        label: LabelTerm | None = "pairwise_logistic",
        pointwise: PenaltySpec | None = None,
        pairwise: PenaltySpec | None = "squared",
        quantile: Sequence[float] | None = None,
        weights: Mapping[str, float] | None = None,
        signal: Signal = "logit",
        pairs: PairSet = "all",
        normalize: Normalize = "pair",
        pointwise_signal: Literal["logit", "prob"] = "logit",
        ties: Literal["drop", "half"] = "drop",
    ) -> None:
        self.label = (
            None if label is None else check_choice("label", label, ("bce", "pairwise_logistic"))
        )
        self.pointwise = None if pointwise is None else penalties.get(pointwise)
        self.pairwise = None if pairwise is None else penalties.get(pairwise)
        self.quantile = None if quantile is None else _check_quantiles(quantile)
        enabled = [name for name in TERMS if getattr(self, name) is not None]
        if not enabled:
            raise ValueError(
                "RankingObjective needs at least one of `label`, `pointwise`, `pairwise`, "
                "`quantile`"
            )
        self.weights = _check_weights(weights, enabled)
        self.signal = check_choice("signal", signal, SIGNALS)
        self.pairs = check_choice("pairs", pairs, ("all", "unequal"))
        self.normalize = check_choice("normalize", normalize, ("pair", "group"))
        self.pointwise_signal = check_choice(
            "pointwise_signal", pointwise_signal, ("logit", "prob")
        )
        self.ties = check_choice("ties", ties, ("drop", "half"))

    def __call__(
        self,
        student_scores: torch.Tensor,
        teacher_scores: torch.Tensor | None,
        group_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        quantile_scores: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = {}
        if self.label is not None:
            terms["label"] = self._label_term(
                student_scores, group_ids, _required(labels, "labels", "label")
            )
        if self.pointwise is not None:
            teacher = _required(teacher_scores, "teacher_scores", "pointwise")
            terms["pointwise"] = pointwise_distillation_loss(
                student_scores, teacher, penalty=self.pointwise, signal=self.pointwise_signal
            )
        if self.pairwise is not None:
            teacher = _required(teacher_scores, "teacher_scores", "pairwise")
            terms["pairwise"] = pairwise_distillation_loss(
                student_scores,
                teacher,
                group_ids,
                labels,
                penalty=self.pairwise,
                signal=self.signal,
                pairs=self.pairs,
                normalize=self.normalize,
            )
        if self.quantile is not None:
            terms["quantile"] = quantile_ranking_loss(
                _required(quantile_scores, "quantile_scores", "quantile"),
                _required(teacher_scores, "teacher_scores", "quantile"),
                group_ids,
                labels,
                taus=self.quantile,
                signal=self.signal,
                pairs=self.pairs,
                normalize=self.normalize,
            )
        total = sum(self.weights[name] * value for name, value in terms.items())
        return total, terms

    def _label_term(self, scores, group_ids, labels) -> torch.Tensor:
        if self.label == "bce":
            return F.binary_cross_entropy_with_logits(scores, labels.to(scores.dtype))
        return pairwise_logistic_loss(
            scores, group_ids, labels, ties=self.ties, normalize=self.normalize
        )

    def __repr__(self) -> str:
        return (
            f"RankingObjective(label={self.label!r}, pointwise={self.pointwise!r}, "
            f"pairwise={self.pairwise!r}, quantile={self.quantile!r}, weights={self.weights}, "
            f"signal={self.signal!r}, "
            f"pairs={self.pairs!r})"
        )


def _check_weights(weights: Mapping[str, float] | None, enabled: list[str]) -> dict[str, float]:
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(enabled))
    if unknown:
        raise ValueError(
            f"`weights` has key(s) {unknown} for terms that are off; enabled: {enabled}"
        )
    return {
        name: check_number(f"weights[{name!r}]", weights.get(name, 1.0), low=0.0)
        for name in enabled
    }


def _check_quantiles(quantile: Sequence[float]) -> tuple[float, ...]:
    return tuple(check_number("quantile", tau, low=0.0, high=1.0) for tau in quantile)


def _required(value: torch.Tensor | None, name: str, term: str) -> torch.Tensor:
    if value is None:
        raise ValueError(f"`{name}` are required by the {term!r} term")
    return value
