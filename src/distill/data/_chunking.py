"""Pieces of rows → chunks: a bounded shuffle buffer and a schedule of chunk sizes.

Rows (or whole groups: the units) are appended to a buffer; once it holds ``buffer_rows`` rows
its units are permuted and the next chunks of the schedule are cut from it; the units that do
not fill the next chunk (and a group that may go on in the next piece) stay. See
docs/streaming.md, "One epoch".
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from distill.data.dataset import Dataset


def full_chunk_sizes(units: int, batch_size: int) -> list[int]:
    """Chunks of ``batch_size`` units, the last one holding the rest."""
    sizes = [batch_size] * (units // batch_size)
    return [*sizes, units % batch_size] if units % batch_size else sizes


def even_chunk_sizes(units: int, chunks: int) -> list[int]:
    """``units`` split into exactly ``chunks`` sizes differing by at most one."""
    return [(k + 1) * units // chunks - k * units // chunks for k in range(chunks)]


def stream_chunks(
    pieces: Iterable[Dataset],
    sizes: list[int],
    generator: np.random.Generator,
    *,
    shuffle: bool,
    buffer_rows: int,
) -> Iterator[Dataset]:
    """Chunks of ``sizes[k]`` units (rows, or whole groups of a grouped table) from ``pieces``.

    ``sizes`` must add up to the units of ``pieces``. Memory: about ``buffer_rows`` rows plus
    one piece (``shuffle=False`` keeps the file order and needs only the next chunk).
    """
    schedule, pending = deque(sizes), []
    held = 0
    for piece in pieces:
        pending.append(piece)
        held += len(piece)
        if held >= buffer_rows:
            pending = yield from _drain(concat_datasets(pending), schedule, generator, shuffle)
            held = sum(len(part) for part in pending)
    if pending:
        yield from _drain(concat_datasets(pending), schedule, generator, shuffle, last=True)


def concat_datasets(parts: list[Dataset]) -> Dataset:
    """The rows of ``parts`` (same columns) one after another, as one Dataset."""
    if len(parts) == 1:
        return parts[0]

    def cat(name: str) -> torch.Tensor | None:
        values = [getattr(part, name) for part in parts]
        return None if values[0] is None else torch.cat(values)

    first = parts[0]
    return dataclasses.replace(
        first,
        features=cat("features"),
        labels=cat("labels"),
        groups=cat("groups"),
        ids=cat("ids"),
        feature_values=cat("feature_values"),
        extras={name: torch.cat([p.extras[name] for p in parts]) for name in first.extras},
    )


def _drain(
    buffer: Dataset,
    schedule: deque,
    generator: np.random.Generator,
    shuffle: bool,
    *,
    last: bool = False,
):
    """Yield the next chunks of ``schedule`` the buffer fills, in shuffled unit order; return
    the rows kept back.

    Kept back: the units that do not fill the next chunk and (until ``last``) the buffer's
    last group, which may go on in the next piece.
    """
    starts, sizes = _units(buffer)
    open_tail = 0 if last or sizes is None else 1
    order = np.arange(len(starts) - open_tail)
    if shuffle:
        order = generator.permutation(order)
    used = 0
    while schedule and used + schedule[0] <= len(order):
        size = schedule.popleft()
        yield buffer.subset(_rows_of(starts, sizes, order[used : used + size]))
        used += size
    if last and used < len(order):
        raise RuntimeError(f"{len(order) - used} unit(s) left beyond the chunk schedule")
    kept = np.r_[order[used:], np.arange(len(starts) - open_tail, len(starts))].astype(np.int64)
    return [buffer.subset(_rows_of(starts, sizes, kept))] if len(kept) else []


def _units(buffer: Dataset) -> tuple[np.ndarray, np.ndarray | None]:
    """First row and row count of each shuffling unit: rows (counts None) or whole groups."""
    if buffer.groups is None:
        return np.arange(len(buffer)), None
    sizes = torch.unique_consecutive(buffer.groups, return_counts=True)[1].numpy()
    return np.cumsum(sizes) - sizes, sizes


def _rows_of(starts: np.ndarray, sizes: np.ndarray | None, units: np.ndarray) -> torch.Tensor:
    """Row positions of ``units`` in order (rows of a unit stay together and in order)."""
    if sizes is None:
        return torch.from_numpy(starts[units])
    counts = sizes[units]
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return torch.from_numpy(np.repeat(starts[units], counts) + offsets)
