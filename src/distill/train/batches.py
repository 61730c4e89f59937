"""Training batches: global batches from ``distill.data`` batching, sharded across DDP ranks.

Every rank builds the same global batches (same seed and epoch) and takes its own share: whole
groups for grouped data, an equal slice of rows otherwise. With equal shares, the DDP gradient
(mean over ranks of per-rank mean losses) equals the single-process gradient of the same
global batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from distill.data import Dataset, GroupBatchSampler, RowBatchSampler
from distill.train.distributed import DistributedContext


@dataclass
class Batch:
    """One batch on the training device; ``teacher_features`` are the full feature columns.

    Shapes: ``features`` ``(B, D)`` (float) or ``(B, F)`` (int64 ids) with optional
    ``feature_values`` ``(B, F)`` (``teacher_values`` likewise for ``teacher_features``);
    ``labels``, ``ids``, ``groups`` ``(B,)``; ``extras``: per-row columns of streamed rows
    (e.g. logged teacher scores).
    """

    features: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor
    groups: torch.Tensor | None = None
    feature_values: torch.Tensor | None = None
    teacher_features: torch.Tensor | None = None
    teacher_values: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def teacher_inputs(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The teacher's features and, for weighted sparse rows, its ``values=`` keyword."""
        if self.teacher_features is None:
            features, values = self.features, self.feature_values
        else:
            features, values = self.teacher_features, self.teacher_values
        return features, {} if values is None else {"values": values}


def make_batch(
    student: Dataset,
    teacher: Dataset,
    index: torch.Tensor,
    device: torch.device,
    *,
    extras: bool = False,
) -> Batch:
    """Rows ``index`` of the student view and (for teachers) of the full data, on ``device``.

    ``student`` and ``teacher`` are row-aligned views of one dataset that differ only in their
    feature columns (``Dataset.select_features``); pass the same dataset twice when the student
    sees every feature. ``extras``: also carry the data's per-row extras (a logged teacher
    score column, read by streamed training).
    """

    def take(value: torch.Tensor | None) -> torch.Tensor | None:
        return None if value is None else value[index].to(device)

    return Batch(
        features=take(student.features),
        labels=take(student.labels),
        ids=take(student.ids),
        groups=take(student.groups),
        feature_values=take(student.feature_values),
        teacher_features=take(teacher.features) if teacher is not student else None,
        teacher_values=take(teacher.feature_values) if teacher is not student else None,
        extras={name: take(value) for name, value in teacher.extras.items()} if extras else {},
    )


def shard_batch(
    index: torch.Tensor, groups: torch.Tensor | None, context: DistributedContext
) -> torch.Tensor:
    """This rank's part of one global batch of row positions ``index``.

    Grouped rows: the batch's distinct groups, in order of first appearance, are dealt to the
    ranks round-robin, so a group never straddles two ranks. Ungrouped rows: equal contiguous
    slices (``tensor_split``).

    Example:
        >>> shard_batch(torch.arange(6), None, DistributedContext(rank=1, world_size=2))
        tensor([3, 4, 5])
    """
    if not context.is_distributed:
        return index
    if groups is None:
        return index.tensor_split(context.world_size)[context.rank]
    batch_groups = groups[index]
    unique, inverse = torch.unique(batch_groups, return_inverse=True)
    first_seen = torch.full((len(unique),), len(index), dtype=torch.int64)
    first_seen.scatter_reduce_(0, inverse, torch.arange(len(index)), reduce="amin")
    order_of_group = torch.empty_like(first_seen)
    order_of_group[first_seen.argsort()] = torch.arange(len(unique))
    mine = order_of_group[inverse] % context.world_size == context.rank
    return index[mine]


def global_batches(
    dataset: Dataset,
    *,
    batch_size: int,
    groups_per_batch: int | None,
    seed: int,
    epoch: int,
) -> list[torch.Tensor]:
    """One epoch's global batches of row positions (single-process view), seeded by epoch.

    ``distill.data`` samplers: rows in ``batch_size`` batches; groups kept whole,
    ``groups_per_batch`` per batch or packed up to ``batch_size`` items.
    """
    if dataset.groups is None:
        sampler = RowBatchSampler(len(dataset), batch_size=batch_size, seed=seed)
    elif groups_per_batch is not None:
        sampler = GroupBatchSampler(dataset.groups, groups_per_batch=groups_per_batch, seed=seed)
    else:
        sampler = GroupBatchSampler(dataset.groups, max_items=batch_size, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def epoch_batches(
    dataset: Dataset,
    *,
    batch_size: int,
    groups_per_batch: int | None,
    seed: int,
    epoch: int,
    context: DistributedContext,
) -> list[torch.Tensor]:
    """This rank's batches of one epoch (row positions); the same count on every rank.

    Under DDP a global batch with fewer units (groups, or rows when ungrouped) than ranks is
    dropped, so no rank ever gets an empty batch.

    Example:
        >>> ds = Dataset(torch.rand(6, 2), torch.zeros(6), groups=torch.tensor([0, 0, 1, 1, 2, 2]))
        >>> [len(b) for b in epoch_batches(ds, batch_size=4, groups_per_batch=2, seed=0, epoch=0,
        ...                                context=DistributedContext())]
        [4, 2]
    """
    batches = global_batches(
        dataset, batch_size=batch_size, groups_per_batch=groups_per_batch, seed=seed, epoch=epoch
    )
    if context.is_distributed:
        batches = [b for b in batches if _units(b, dataset.groups) >= context.world_size]
    return [shard_batch(index, dataset.groups, context) for index in batches]


def _units(index: torch.Tensor, groups: torch.Tensor | None) -> int:
    return len(index) if groups is None else len(torch.unique(groups[index]))
