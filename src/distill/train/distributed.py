"""``torchrun`` / DistributedDataParallel helpers built on ``torch.distributed`` only."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from distill._validation import check_choice

CPU = torch.device("cpu")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = CPU

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) logs and writes files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """``torchrun`` sets ``WORLD_SIZE`` (and ``RANK``/``LOCAL_RANK``) in each worker."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group when launched by ``torchrun``; else a single-process context.

    Uses ``nccl`` when the device is CUDA, ``gloo`` on CPU. Calling it again in an
    initialised process reuses the group.

    Args:
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.

    Returns:
        The :class:`DistributedContext` of this process.

    Raises:
        ValueError: an unknown ``device``, or ``"cuda"`` on a machine without a CUDA GPU.

    Example:
        >>> setup_distributed("cpu").world_size
        1
    """
    check_choice("device", device, ("auto", "cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "`device` is 'cuda' but torch finds no CUDA GPU (torch.cuda.is_available() is "
            "False); use device = 'cpu' or 'auto', or install a CUDA build of torch"
        )
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(target)
    if not launched_by_torchrun():
        return DistributedContext(device=target)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        atexit.register(_leave_process_group)
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, target)


def _leave_process_group() -> None:
    """Leave the group together at exit, before interpreter teardown, as torch asks.

    Every rank waits at a barrier first, so no rank tears down its gloo connections while a
    peer still uses them: a rank that left alone was aborted by gloo's threads ("terminate
    called without an active exception") in loaded runs of the 2-process test.
    """
    if not dist.is_initialized():
        return
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()


def all_reduce_mean(values: dict[str, float], context: DistributedContext) -> dict[str, float]:
    """Mean of each named number over all ranks (identity in a single process).

    Example:
        >>> all_reduce_mean({"loss": 2.0}, DistributedContext())
        {'loss': 2.0}
    """
    if not context.is_distributed or not values:
        return dict(values)
    names = sorted(values)
    packed = torch.tensor([float(values[name]) for name in names], dtype=torch.float64)
    packed = packed.to(context.device)
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    packed /= context.world_size
    return {name: float(value) for name, value in zip(names, packed.tolist(), strict=True)}


def all_gather_objects(value: Any, context: DistributedContext) -> list[Any]:
    """``[value of rank 0, value of rank 1, ...]`` on every rank (``[value]`` alone)."""
    if not context.is_distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def all_gather_tensors(
    tensors: list[torch.Tensor], context: DistributedContext
) -> list[torch.Tensor]:
    """Concatenate each tensor of ``tensors`` along dim 0 over ranks (in rank order).

    Ranks may hold different numbers of rows; the result is identical on every rank.
    """
    if not context.is_distributed:
        return tensors
    gathered = all_gather_objects([tensor.cpu() for tensor in tensors], context)
    return [_cat_non_empty([part[i] for part in gathered]) for i in range(len(tensors))]


def _cat_non_empty(parts: list[torch.Tensor]) -> torch.Tensor:
    """A rank with no rows sends an empty 1-D tensor; it must not break ``(N, C)`` shapes."""
    non_empty = [part for part in parts if part.numel()]
    return torch.cat(non_empty) if non_empty else parts[0]


def barrier(context: DistributedContext) -> None:
    """Wait for all ranks (no-op in a single process)."""
    if context.is_distributed:
        dist.barrier()


def wrap_ddp(net: nn.Module, context: DistributedContext) -> nn.Module:
    """``DistributedDataParallel(net)`` in a multi-process run, else ``net`` itself."""
    if not context.is_distributed:
        return net
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=device_ids)
