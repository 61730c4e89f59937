"""Metrics: classification/CTR (accuracy, NLL, ECE, AUC) and ranking over ragged groups
(NDCG@k, MRR, pair accuracy; each with a ``*_per_group`` form returning :class:`GroupMetric`).
All main functions return Python floats."""

from distill.metrics.classification import accuracy, auc, ece, nll
from distill.metrics.ranking import (
    GroupMetric,
    mrr,
    mrr_per_group,
    ndcg,
    ndcg_per_group,
    pair_accuracy,
    pair_accuracy_per_group,
)

__all__ = [
    "GroupMetric",
    "accuracy",
    "auc",
    "ece",
    "mrr",
    "mrr_per_group",
    "ndcg",
    "ndcg_per_group",
    "nll",
    "pair_accuracy",
    "pair_accuracy_per_group",
]
