"""Validation: batched predictions (sharded over DDP ranks, then gathered) and track metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from distill import metrics, ranking
from distill.data import Dataset
from distill.train.distributed import DistributedContext, all_gather_tensors
from distill.train.streaming import is_stream, predict_stream
from distill.train.terms import main_score

METRIC_FUNCTIONS: dict[str, Callable[[torch.Tensor, Dataset], float]] = {
    "accuracy": lambda scores, data: metrics.accuracy(scores, data.labels),
    "nll": lambda scores, data: metrics.nll(scores, data.labels),
    "auc": lambda scores, data: metrics.auc(scores, data.labels),
    "ndcg@10": lambda scores, data: metrics.ndcg(scores, data.labels, _groups(data), k=10),
}
"""Track metrics by name: ``f(scores, dataset) -> float``."""


@torch.inference_mode()
def predict(
    model: nn.Module,
    dataset: Dataset,
    *,
    context: DistributedContext = DistributedContext(),
    score: Callable[[Any], torch.Tensor] = main_score,
    batch_size: int = 4096,
    bf16: bool = False,
) -> torch.Tensor:
    """The model's scores/logits for every row of ``dataset``, in row order, on the CPU.

    Under DDP each rank predicts a contiguous share of the rows; the shares are gathered, so
    every rank returns the full result. The model is put in eval mode and restored after.

    Args:
        model: maps features ``(B, D)`` (or ids ``(B, F)`` [+ values]) to its outputs.
        dataset: the rows to score.
        score: picks the score/logits out of the model's outputs (e.g. the student tower).
        batch_size: rows per forward pass; ``bf16``: autocast the forward.

    Returns:
        ``(N,)`` scores or ``(N, C)`` logits, float32.

    Example:
        >>> data = Dataset(torch.rand(10, 4), torch.zeros(10, dtype=torch.long))
        >>> predict(MLP(4, out_features=3), data).shape
        torch.Size([10, 3])
    """
    was_training = model.training
    model.eval()
    own_rows = torch.arange(len(dataset)).tensor_split(context.world_size)[context.rank]
    parts = []
    for index in own_rows.split(batch_size):
        features = dataset.features[index].to(context.device)
        values = dataset.feature_values
        inputs = (features,) if values is None else (features, values[index].to(context.device))
        with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=bf16):
            parts.append(score(model(*inputs)).float().cpu())
    model.train(was_training)
    local = torch.cat(parts) if parts else torch.empty(0)
    return all_gather_tensors([local], context)[0]


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    metric: str,
    context: DistributedContext = DistributedContext(),
    score: Callable[[Any], torch.Tensor] = main_score,
    teacher_scores: torch.Tensor | None = None,
    agreement_threshold: float = 0.1,
    batch_size: int = 4096,
    bf16: bool = False,
) -> dict[str, float]:
    """``{metric: value}`` on ``dataset``, plus ``"pair_agreement"`` with the teacher's scores.

    Args:
        model: the (unwrapped) model.
        dataset: validation data (a ``Dataset`` or a streamed ``StreamingTable``); grouped for
            ``"ndcg@10"`` and pair agreement.
        metric: one of :data:`METRIC_FUNCTIONS`.
        teacher_scores: ``(N,)`` teacher scores of ``dataset``; when given, the share of
            within-group pairs whose difference is within ``agreement_threshold`` of the
            teacher's is added (``distill.ranking.pair_agreement``).
        agreement_threshold: the tolerance of that check.

    Returns:
        Metric names to Python floats; identical on every rank.

    Raises:
        ValueError: ranking metrics or pair agreement on ungrouped data.

    Example:
        >>> evaluate(model, valid, metric="accuracy")  # doctest: +SKIP
        {'accuracy': 0.93}
    """
    if is_stream(dataset):
        scores, dataset = predict_stream(
            model, dataset, context=context, score=score, batch_size=batch_size, bf16=bf16
        )
    else:
        scores = predict(
            model, dataset, context=context, score=score, batch_size=batch_size, bf16=bf16
        )
    values = {metric: METRIC_FUNCTIONS[metric](scores, dataset)}
    if teacher_scores is not None:
        values["pair_agreement"] = float(
            ranking.pair_agreement(scores, teacher_scores, _groups(dataset), agreement_threshold)
        )
    return values


def _groups(dataset: Dataset) -> torch.Tensor:
    if dataset.groups is None:
        raise ValueError("ranking metrics need grouped validation data, got `groups` None")
    return dataset.groups
