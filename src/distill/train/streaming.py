"""``fit`` over a :class:`~distill.data.streaming.StreamingTable`: chunks become batches.

Under ``torchrun`` each rank reads only its own run of each epoch's shards, in the same number
of chunks as every other rank (``StreamingTable.iter_chunks(rank=, world_size=)``), so every
row is used exactly once per epoch across the ranks and I/O is split between them. Validation
streams too: scores, labels and groups (small) are kept, the features are not. See
docs/streaming.md.
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
from distill.train.batches import Batch, make_batch
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
        chunks = train.num_chunks(self.chunk_size, context.world_size)
        if chunks == 0:
            raise ValueError(
                f"`train` has fewer {'groups' if grouped else 'rows'} than the "
                f"{context.world_size} processes; no batch can be formed"
            )
        self.total_steps = options.total_steps(chunks)
        self.valid_teacher_scores = None

    def epoch_items(self, epoch: int, start: int) -> Iterator[Batch]:
        """This rank's batches of ``epoch`` from the ``start``-th on (resume re-reads and
        skips the earlier ones)."""
        chunks = self.train.iter_chunks(
            batch_size=self.chunk_size,
            seed=self.options.seed,
            epoch=epoch,
            rank=self.context.rank,
            world_size=self.context.world_size,
        )
        return (self._batch(chunk) for chunk in prefetched(islice(chunks, start, None)))

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
        student = chunk if self.spec is None else chunk.select_features(self.spec)
        return make_batch(
            student, chunk, torch.arange(len(chunk)), self.context.device, extras=True
        )


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

    Rows are read in file order (groups whole), each rank its own run of the shards
    (``iter_chunks(rank=, world_size=)``); the ranks' results are gathered, so every rank
    returns every row (in file order). Per-row results go into tensors that grow by doubling,
    so memory holds a few large arrays rather than one small tensor per chunk.

    Returns:
        ``(scores, rows)``: float32 ``(N,)``/``(N, C)`` scores and a feature-less Dataset of the
        same rows (labels, ids, groups) for the metric functions.
    """
    was_training = model.training
    model.eval()
    grouped = table.num_groups is not None
    size = max(1, batch_size * table.num_groups // len(table)) if grouped else batch_size
    size *= context.world_size  # iter_chunks' batch_size counts the chunks of all ranks
    chunks = table.iter_chunks(
        batch_size=size, shuffle=False, rank=context.rank, world_size=context.world_size
    )
    columns = RowColumns(len(table) // context.world_size + 1)
    for chunk in chunks:
        inputs = [chunk.features.to(context.device)]
        if chunk.feature_values is not None:
            inputs.append(chunk.feature_values.to(context.device))
        with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=bf16):
            scores = score(model(*inputs)).float().cpu()
        groups = chunk.groups if grouped else None
        columns.append(scores=scores, labels=chunk.labels, ids=chunk.ids, groups=groups)
    model.train(was_training)
    scores, labels, ids, groups = all_gather_tensors(columns.tensors(), context)
    rows = Dataset(
        features=torch.zeros(len(labels), 0),
        labels=labels,
        ids=ids,
        groups=groups if grouped else None,
    )
    return scores, rows


class RowColumns:
    """Per-row tensors appended chunk by chunk into buffers grown by doubling."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.size = max(capacity, 1), 0
        self.buffers: dict[str, torch.Tensor] = {}

    def append(self, **values: torch.Tensor | None) -> None:
        """Add one chunk's rows (None: a column this table lacks, kept empty)."""
        rows = next(len(value) for value in values.values() if value is not None)
        while self.size + rows > self.capacity:
            self.capacity *= 2
            self.buffers = {k: _grown(v, self.capacity) for k, v in self.buffers.items()}
        for name, value in values.items():
            if value is None:
                continue
            if name not in self.buffers:
                self.buffers[name] = value.new_empty((self.capacity, *value.shape[1:]))
            self.buffers[name][self.size : self.size + rows] = value
        self.size += rows

    def tensors(self) -> list[torch.Tensor]:
        """Scores, labels, ids and groups of the rows appended (empty 1-D when absent)."""
        names = ("scores", "labels", "ids", "groups")
        return [
            self.buffers[name][: self.size] if name in self.buffers else torch.empty(0)
            for name in names
        ]


def _grown(buffer: torch.Tensor, capacity: int) -> torch.Tensor:
    grown = buffer.new_empty((capacity, *buffer.shape[1:]))
    grown[: len(buffer)] = buffer
    return grown
