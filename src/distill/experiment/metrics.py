"""The test metrics of each track, as reported in a run's comparison table."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill import metrics, teachers
from distill.data import Dataset
from distill.train.evaluation import predict
from distill.train.streaming import RowColumns, is_stream, predict_stream
from distill.train.terms import main_score


def track_metrics(model: nn.Module, dataset: Dataset, track: str) -> dict[str, float]:
    """Metrics of ``model`` on ``dataset`` (already in the model's feature columns).

    - classification: ``accuracy``, ``nll``, ``ece`` (15 bins);
    - ranking: ``ndcg@10``, ``mrr``, ``pair_accuracy`` (within groups);
    - ctr: ``auc``, ``nll`` (log loss), ``ece`` (15 bins, of the predicted click rate).

    Example:
        >>> track_metrics(model, test, "ctr")  # doctest: +SKIP
        {'auc': 0.74, 'nll': 0.19, 'ece': 0.004}
    """
    if is_stream(dataset):
        scores, rows = predict_stream(model, dataset, score=main_score)
        return score_metrics(scores, rows, track)
    return score_metrics(predict(model, dataset), dataset, track)


def teacher_metrics(teacher: Any, dataset: Any, track: str) -> dict[str, float]:
    """Metrics of a teacher source's logits on ``dataset`` (a streamed table: one pass)."""
    if not is_stream(dataset):
        return score_metrics(teachers.predict_dataset(teacher, dataset), dataset, track)
    return score_metrics(*stream_teacher_scores(teacher, dataset), track)


def stream_teacher_scores(teacher: Any, table: Any) -> tuple[torch.Tensor, Dataset]:
    """A teacher source's logits of every row of a streamed table, in file order, with a
    feature-less Dataset of the rows' labels (and groups): score columns are read with the
    rows, a model file predicts each chunk.
    """
    grouped = table.num_groups is not None
    columns = RowColumns(len(table))
    for chunk in table.iter_chunks(batch_size=4096, shuffle=False):
        if hasattr(teacher, "batch_logits"):
            scores = teacher.batch_logits(chunk.extras, chunk.ids)
        else:
            values = {} if chunk.feature_values is None else {"values": chunk.feature_values}
            scores = teacher.predict(chunk.features, chunk.ids, **values).float()
        groups = chunk.groups if grouped else None
        columns.append(scores=scores, labels=chunk.labels, ids=chunk.ids, groups=groups)
    scores, labels, _, groups = columns.tensors()
    rows = Dataset(torch.zeros(len(labels), 0), labels, groups=groups if grouped else None)
    return scores, rows


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
