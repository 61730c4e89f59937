"""Batch samplers: whole groups per batch (ranking) or plain rows, seeded and DDP-sharded."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from distill._validation import check_positive_int


class GroupBatchSampler(Sampler[torch.Tensor]):
    """Yield batches of row indices that always hold whole groups.

    Each epoch the groups are shuffled (seeded by ``seed`` and the epoch set by
    :meth:`set_epoch`), packed into batches of ``groups_per_batch`` groups or of at most
    ``max_items`` rows (a group larger than the budget forms a batch of its own), and the
    batches are dealt round-robin to the ``world_size`` DDP ranks, so every rank sees whole
    groups and the same number of batches. Rows of a group keep their order in the data.
    Deterministic: the same arguments and epoch give the same batches.

    Args:
        groups: int64 ``(N,)`` group id per row (rows of a group need not be adjacent).
        groups_per_batch: groups per batch; give this or ``max_items``.
        max_items: row budget per batch.
        shuffle: shuffle the groups every epoch (else: groups in ascending id order).
        seed: shuffle seed, shared by all ranks.
        rank, world_size: this process's DDP rank and the number of ranks.
        drop_last: drop a final batch with fewer than ``groups_per_batch`` groups, and drop
            the batches left over after an even deal to the ranks; when False the deal is
            evened out by repeating batches from the start (like ``DistributedSampler``).

    Yields:
        int64 tensors of row indices, e.g. for ``dataset.subset(batch)``; also usable as
        ``DataLoader(..., batch_sampler=sampler)``.

    Raises:
        ValueError: both or neither of ``groups_per_batch`` / ``max_items``; a bad rank.
        TypeError: ``groups`` is not an int64 ``(N,)`` tensor.

    Reference: LightGBM/allRank query-grouped training; ``torch.utils.data.DistributedSampler``
    (padding rule).

    Example:
        >>> sampler = GroupBatchSampler(ds.groups, max_items=512, seed=0, rank=0, world_size=2)
        >>> sampler.set_epoch(3)
        >>> for rows in sampler:
        ...     batch = ds.subset(rows)
    """

    def __init__(
        self,
        groups: torch.Tensor,
        *,
        groups_per_batch: int | None = None,
        max_items: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if (groups_per_batch is None) == (max_items is None):
            raise ValueError("give exactly one of `groups_per_batch` and `max_items`")
        if groups_per_batch is not None:
            check_positive_int("groups_per_batch", groups_per_batch)
        if max_items is not None:
            check_positive_int("max_items", max_items)
        check_positive_int("world_size", world_size)
        check_positive_int("rank", rank, minimum=0)
        if rank >= world_size:
            raise ValueError(f"`rank` must be < world_size ({world_size}), got {rank}")
        if not isinstance(groups, torch.Tensor) or groups.dtype != torch.int64 or groups.ndim != 1:
            raise TypeError("`groups` must be an int64 tensor of shape (N,)")
        self._rows = torch.argsort(groups, stable=True)
        self._sizes = torch.unique_consecutive(groups[self._rows], return_counts=True)[1]
        self._starts = self._sizes.cumsum(0) - self._sizes
        self.groups_per_batch, self.max_items = groups_per_batch, max_items
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle the next iteration uses (call once per epoch)."""
        self.epoch = check_positive_int("epoch", epoch, minimum=0)

    def __len__(self) -> int:
        return len(self._rank_batches())

    def __iter__(self) -> Iterator[torch.Tensor]:
        for batch_groups in self._rank_batches():
            yield self._rows_of(batch_groups)

    def _rank_batches(self) -> list[torch.Tensor]:
        batches = self._pack(self._group_order())
        remainder = len(batches) % self.world_size
        if remainder and self.drop_last:
            batches = batches[: len(batches) - remainder]
        elif remainder:
            missing = self.world_size - remainder
            batches = batches + [batches[i % len(batches)] for i in range(missing)]
        return batches[self.rank :: self.world_size]

    def _group_order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(len(self._sizes))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self._sizes), generator=generator)

    def _pack(self, order: torch.Tensor) -> list[torch.Tensor]:
        if self.groups_per_batch is not None:
            batches = list(order.split(self.groups_per_batch))
            if self.drop_last and batches and len(batches[-1]) < self.groups_per_batch:
                batches.pop()
            return batches
        batches, start, filled = [], 0, 0
        for position, size in enumerate(self._sizes[order].tolist()):
            if filled and filled + size > self.max_items:
                batches.append(order[start:position])
                start, filled = position, 0
            filled += size
        if filled:
            batches.append(order[start:])
        return batches

    def _rows_of(self, batch_groups: torch.Tensor) -> torch.Tensor:
        sizes = self._sizes[batch_groups]
        first_row = torch.repeat_interleave(self._starts[batch_groups], sizes)
        batch_start = torch.repeat_interleave(sizes.cumsum(0) - sizes, sizes)
        return self._rows[first_row + torch.arange(int(sizes.sum())) - batch_start]


class RowBatchSampler(GroupBatchSampler):
    """Plain row batches for ungrouped data: ``batch_size`` rows, seeded shuffle, DDP shards.

    Same behaviour as :class:`GroupBatchSampler` with every row its own group.

    Example:
        >>> for rows in RowBatchSampler(len(ds), batch_size=256, seed=0):
        ...     batch = ds.subset(rows)
    """

    def __init__(
        self,
        n_rows: int,
        *,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        check_positive_int("n_rows", n_rows)
        check_positive_int("batch_size", batch_size)
        super().__init__(
            torch.arange(n_rows),
            groups_per_batch=batch_size,
            shuffle=shuffle,
            seed=seed,
            rank=rank,
            world_size=world_size,
            drop_last=drop_last,
        )
