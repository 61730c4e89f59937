"""Ranking distillation: the public API of the pairwise track (docs/formulas.md#pairs,
docs/formulas.md#quantile-heads, US 2023/0252281 Eqs. 3, 5–8).

- :func:`pairwise_distillation_loss` — ``ρ(Δ_teacher − Δ_student)`` over the pairs of each group;
- :func:`pairwise_logistic_loss` — the label-only RankNet baseline;
- :func:`quantile_ranking_loss`, :func:`quantile_distillation_loss` — quantile-head losses;
- :class:`RankingObjective` — label + pointwise + pairwise terms, weighted;
- :func:`listwise_distillation_loss` — ListNet cross-entropy of the group softmaxes;
- :func:`pair_agreement` — the share of pairs within a threshold of the teacher (US 2023/0252281,
  claim 1).

The losses live in :mod:`distill.ranking.losses` and :mod:`distill.ranking.quantile_losses`
(their shared input checks in :mod:`distill.ranking.pair_inputs`), the objective in
:mod:`distill.ranking.objective`; pairs and heads are :mod:`distill.ranking.pairs` and
:mod:`distill.ranking.heads`.
"""

from distill.ranking.listwise import listwise_distillation_loss
from distill.ranking.losses import (
    pair_agreement,
    pairwise_distillation_loss,
    pairwise_logistic_loss,
)
from distill.ranking.objective import RankingObjective
from distill.ranking.quantile_losses import quantile_distillation_loss, quantile_ranking_loss

__all__ = [
    "RankingObjective",
    "listwise_distillation_loss",
    "pair_agreement",
    "pairwise_distillation_loss",
    "pairwise_logistic_loss",
    "quantile_distillation_loss",
    "quantile_ranking_loss",
]
