"""``fit`` over a :class:`~distill.data.streaming.StreamingTable`: chunks become batches.

Every rank reads the same seeded stream of global chunks and trains on its share of each
(whole groups; equal row slices otherwise), as in-memory training does with its global
batches, so every row is used exactly once per epoch across the ranks. Validation streams
too: scores, labels and groups (small) are kept, the features are not. See docs/streaming.md.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from distill.data import Dataset
from distill.train.batches import Batch, make_batch, shard_batch
from distill.train.distributed import DistributedContext, all_gather_tensors

PREFETCH = 4
"""Chunks read ahead of training (memory: this many chunks more)."""

if TYPE_CHECKING:  # pyarrow (the `data` extra) is imported only where tables are read
    from distill.data.streaming import StreamingTable


def is_stream(data: Any) -> bool:
    """Whether ``data`` is a streamed table (read in chunks) rather than an in-memory Dataset."""
    return callable(getattr(data, "iter_chunks", None))


class StreamTrainData:
    """The training stream of ``fit``: per-epoch batches read chunk by chunk.

    Args:
        train: the streamed training table; valid: validation data (streamed or in memory).
        teacher: a teacher source, or ``StreamedScoreColumns`` (logits from the rows).
        options: ``TrainOptions`` (``batch_size`` rows, or ``groups_per_batch`` groups).
        context: the process's distributed context.
        transfer: a batch transform applied every step (``fit``'s ``transfer``), or None.

    Raises:
        ValueError: a grouped table without ``groups_per_batch``; pair-agreement stopping.
    """

    def __init__(
        self, train: StreamingTable, valid, teacher, options, context, transfer=None
    ) -> None:
        grouped = train.num_groups is not None
        if grouped and options.groups_per_batch is None:
            raise ValueError(
                "a grouped StreamingTable needs `groups_per_batch` (whole groups per batch)"
            )
        if options.stop_pair_agreement is not None:
            raise ValueError("`stop_pair_agreement` is not available with streamed data")
        self.train, self.teacher, self.options, self.context = train, teacher, options, context
        self.transfer = transfer
        self.spec = options.student_features
        self.valid = (
            valid if valid is None or self.spec is None else valid.select_features(self.spec)
        )
        self.chunk_size = options.groups_per_batch if grouped else options.batch_size
        units = train.num_rows if train.num_groups is None else train.num_groups
        last = units % self.chunk_size  # dropped under DDP when smaller than the world
        dropped = 0 < last < context.world_size
        self.total_steps = options.total_steps(train.num_chunks(self.chunk_size) - dropped)
        self.valid_teacher_scores = None

    def epoch_items(self, epoch: int, start: int) -> Iterator[Batch]:
        """This rank's batches of ``epoch`` from the ``start``-th on (resume re-reads and
        skips the earlier ones)."""
        chunks = self.train.iter_chunks(
            batch_size=self.chunk_size, seed=self.options.seed, epoch=epoch
        )
        minimum = self.context.world_size
        usable = (chunk for chunk in chunks if _units(chunk) >= minimum)
        return (self._batch(chunk) for chunk in prefetched(islice(usable, start, None)))

    def batch(self, item: Batch) -> Batch:
        """The batch (already on the device), through ``transfer`` when given."""
        return item if self.transfer is None else self.transfer(item)

    def teacher_logits(self, batch: Batch, item: Batch) -> torch.Tensor:
        """From the streamed score columns, else the teacher's forward on every column."""
        if hasattr(self.teacher, "batch_logits"):
            return self.teacher.batch_logits(batch.extras, batch.ids).to(batch.labels.device)
        features, values = batch.teacher_inputs()
        return self.teacher.predict(features, batch.ids, **values).to(batch.labels.device).float()

    def _batch(self, chunk: Dataset) -> Batch:
        index = shard_batch(torch.arange(len(chunk)), chunk.groups, self.context)
        rows = chunk.subset(index)
        student = rows if self.spec is None else rows.select_features(self.spec)
        return make_batch(student, rows, torch.arange(len(rows)), self.context.device, extras=True)


def prefetched(items: Iterator[Any], depth: int = PREFETCH) -> Iterator[Any]:
    """``items`` in order, produced ``depth`` ahead by a background thread (reading and
    hashing the next chunks overlaps the training step; pyarrow releases the GIL).

    An exception of the producer is raised here, at the item where it happened.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for item in items:
                slots.put((item, None))
        except BaseException as error:  # re-raised in the consumer
            slots.put((None, error))
        slots.put((done, None))

    threading.Thread(target=produce, daemon=True).start()
    while True:
        item, error = slots.get()
        if error is not None:
            raise error
        if item is done:
            return
        yield item


def _units(chunk: Dataset) -> int:
    return len(chunk) if chunk.groups is None else len(torch.unique(chunk.groups))


@torch.inference_mode()
def predict_stream(
    model: nn.Module,
    table: StreamingTable,
    *,
    context: DistributedContext = DistributedContext(),
    score: Callable[[Any], torch.Tensor],
    batch_size: int = 4096,
    bf16: bool = False,
) -> tuple[torch.Tensor, Dataset]:
    """Scores of every row of a streamed table, with the rows' labels, ids and groups.

    Chunks are read in file order (groups whole) and dealt to the ranks round-robin; the
    ranks' results are gathered, so every rank returns every row (not in file order when
    distributed; the track metrics do not depend on row order).

    Returns:
        ``(scores, rows)``: float32 ``(N,)``/``(N, C)`` scores and a feature-less Dataset of the
        same rows (labels, ids, groups) for the metric functions.
    """
    was_training = model.training
    model.eval()
    scores, labels, ids, groups = [], [], [], []
    grouped = table.num_groups is not None
    size = max(1, batch_size * table.num_groups // len(table)) if grouped else batch_size
    chunks = table.iter_chunks(batch_size=size, shuffle=False)
    for chunk in islice(chunks, context.rank, None, context.world_size):
        inputs = [chunk.features.to(context.device)]
        if chunk.feature_values is not None:
            inputs.append(chunk.feature_values.to(context.device))
        with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=bf16):
            scores.append(score(model(*inputs)).float().cpu())
        labels.append(chunk.labels)
        ids.append(chunk.ids)
        groups.append(chunk.groups if chunk.groups is not None else chunk.ids[:0])
    model.train(was_training)
    local = [_cat(parts) for parts in (scores, labels, ids, groups)]
    scores, labels, ids, groups = all_gather_tensors(local, context)
    rows = Dataset(
        features=torch.zeros(len(labels), 0),
        labels=labels,
        ids=ids,
        groups=groups if table.num_groups is not None else None,
    )
    return scores, rows


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.empty(0)
