"""The learning task of a dataset and the label dtype it implies (class ids, clicks, grades)."""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from distill.data.dataset import Dataset

Task = Literal["classification", "binary", "ranking"]
TASKS = ("classification", "binary", "ranking")


def infer_task(labels: torch.Tensor, *, grouped: bool) -> Task | None:
    """The task labels suggest: ranking with groups, binary for 0/1, classification for integers.

    0/1 labels are binary (clicks), even as an integer column; other integer labels are class
    indices; other floats give None (no task).
    """
    if grouped:
        return "ranking"
    if len(labels) and bool(((labels == 0) | (labels == 1)).all()):
        return "binary"
    if labels.dtype == torch.int64:
        return "classification"
    return None


def with_task(dataset: Dataset, task: Task) -> Dataset:
    """``dataset`` with the label dtype of ``task`` and ``meta["task"]`` set.

    - ``classification``: integer class indices ``>= 0`` → int64, ``meta["num_classes"]``;
    - ``binary`` (CTR): labels in [0, 1] → float32;
    - ``ranking``: relevance grades → float32; needs ``groups``.

    Args:
        dataset: any dataset; task: one of "classification", "binary", "ranking".

    Returns:
        A new Dataset (same tensors except ``labels``).

    Raises:
        ValueError: an unknown task, NaN/inf labels, labels the task does not allow (the first
            bad row and value named), ranking data without groups.

    Example:
        >>> with_task(Dataset(torch.rand(2, 3), torch.tensor([0, 1])), "binary").labels.dtype
        torch.float32
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}, got {task!r}")
    source = dataset.meta.get("source", "data")
    labels = dataset.labels
    _first_bad(source, labels, ~torch.isfinite(labels.double()), "NaN/inf label")
    meta = {key: value for key, value in dataset.meta.items() if key != "num_classes"}
    if task == "classification":
        bad = (labels < 0) | (labels != labels.floor())
        _first_bad(source, labels, bad, "task 'classification' needs class indices >= 0; label")
        labels = labels.long()
        meta["num_classes"] = max(
            int(dataset.meta.get("num_classes", 0)), int(labels.max()) + 1 if len(labels) else 0
        )
    else:
        if task == "binary":
            bad = (labels < 0) | (labels > 1)
            _first_bad(source, labels, bad, "task 'binary' (CTR) needs labels in [0, 1]; label")
        elif dataset.groups is None:
            raise ValueError(
                f"{source}: task 'ranking' needs groups (a qid, a .query file or a group column)"
            )
        labels = labels.float()
    return dataclasses.replace(
        dataset, labels=labels, extras=dict(dataset.extras), meta=meta | {"task": task}
    )


def _first_bad(source: str, labels: torch.Tensor, bad: torch.Tensor, what: str) -> None:
    if bool(bad.any()):
        row = int(bad.nonzero()[0])
        raise ValueError(
            f"{source}: {what} {labels[row].item()} in row {row} (0-based data row); "
            f"{int(bad.sum())} such row(s)"
        )
