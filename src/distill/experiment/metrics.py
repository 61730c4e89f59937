"""The test metrics of each track, as reported in a run's comparison table."""

from __future__ import annotations

import torch
from torch import nn

from distill import metrics
from distill.data import Dataset
from distill.train.evaluation import predict


def track_metrics(model: nn.Module, dataset: Dataset, track: str) -> dict[str, float]:
    """Metrics of ``model`` on ``dataset`` (already in the model's feature columns).

    - classification: ``accuracy``, ``nll``, ``ece`` (15 bins);
    - ranking: ``ndcg@10``, ``mrr``, ``pair_accuracy`` (within groups);
    - ctr: ``auc``, ``nll`` (log loss), ``ece`` (15 bins, of the predicted click rate).

    Example:
        >>> track_metrics(model, test, "ctr")  # doctest: +SKIP
        {'auc': 0.74, 'nll': 0.19, 'ece': 0.004}
    """
    return score_metrics(predict(model, dataset), dataset, track)


def score_metrics(scores: torch.Tensor, dataset: Dataset, track: str) -> dict[str, float]:
    """The track's metrics (see :func:`track_metrics`) of given scores/logits of ``dataset``.

    Example:
        >>> score_metrics(teacher_logits, test, "ranking")  # doctest: +SKIP
        {'ndcg@10': 0.71, 'mrr': 0.83, 'pair_accuracy': 0.66}
    """
    labels = dataset.labels
    if track == "classification":
        return {
            "accuracy": metrics.accuracy(scores, labels),
            "nll": metrics.nll(scores, labels),
            "ece": metrics.ece(scores, labels, kind="logits"),
        }
    if track == "ranking":
        groups = dataset.groups
        return {
            "ndcg@10": metrics.ndcg(scores, labels, groups, k=10),
            "mrr": metrics.mrr(scores, labels, groups),
            "pair_accuracy": metrics.pair_accuracy(scores, labels, groups),
        }
    return {
        "auc": metrics.auc(scores, labels),
        "nll": metrics.nll(scores, labels),
        "ece": metrics.ece(scores, labels.float(), kind="logits"),
    }
