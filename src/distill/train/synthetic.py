"""Synthetic transfer rows generated on the fly: ``fit(..., transfer=SyntheticTransfer(...))``.

Every training step the batch gets ``copies × B`` generated rows without labels; the teacher
labels them in the same step from the very same inputs the student sees (consistent function
matching), so only teacher terms learn from them. Mimic learning after Bucilă, Caruana &
Niculescu-Mizil (2006); ``docs/methods.md``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from distill._validation import check_choice, check_positive_int
from distill.data import synthetic_transfer as generate
from distill.train.batches import Batch

Method = Literal["munge", "mixup", "jitter"]
IGNORE_LABEL = -100


class SyntheticTransfer:
    """A batch transform adding generated, unlabeled rows (class labels ``-100``, ids ``-1``).

    Args:
        pool: ``(N, D)`` real feature rows MUNGE draws rows and nearest neighbours from (the
            labelled training rows); mixup and jitter transform the batch's own rows.
        method: ``"munge"``, ``"mixup"`` or ``"jitter"``.
        copies: generated rows per real row of the batch.
        params: the generator's keywords (``swap_prob``, ``spread``; ``alpha``; ``sigma``,
            ``low``, ``high``).

    Raises:
        ValueError / TypeError: a bad method, ``copies`` or parameter.

    Example:
        >>> transfer = SyntheticTransfer(train.features, method="munge", copies=4)
        >>> fit(model, train, objective=kd, options=options, teacher=teacher,
        ...     transfer=transfer)  # doctest: +SKIP
    """

    def __init__(
        self, pool: torch.Tensor, *, method: Method = "munge", copies: int = 1, **params: Any
    ) -> None:
        self.method = check_choice("method", method, ("munge", "mixup", "jitter"))
        self.copies = check_positive_int("copies", copies)
        self.pool = generate._check_pool(pool)
        self.params = params
        self.neighbours = generate.nearest_neighbours(pool) if method == "munge" else None
        self._generate(pool[:2].repeat(2, 1))  # validate the parameters now

    def __repr__(self) -> str:
        params = "".join(f", {key}={value!r}" for key, value in self.params.items())
        return f"SyntheticTransfer(method={self.method!r}, copies={self.copies}{params})"

    def _generate(self, rows: torch.Tensor) -> torch.Tensor:
        if self.method == "munge":
            index = torch.randint(len(self.pool), (len(rows),))
            return generate.munge(self.pool, index, neighbours=self.neighbours, **self.params)
        if self.method == "mixup":
            return generate.mixup(rows, **self.params)
        return generate.jitter(rows, **self.params)

    def __call__(self, batch: Batch) -> Batch:
        """``batch`` with ``copies × len(batch)`` generated rows appended."""
        if batch.labels.is_floating_point() or batch.groups is not None:
            raise ValueError("synthetic transfer rows need class labels and no groups")
        if batch.teacher_features is not None or batch.feature_values is not None:
            raise ValueError("synthetic transfer rows need the student to see every column")
        rows = batch.features.repeat(self.copies, 1)
        made = self._generate(rows.cpu()).to(batch.features)
        count = len(made)
        return Batch(
            features=torch.cat([batch.features, made]),
            labels=torch.cat([batch.labels, batch.labels.new_full((count,), IGNORE_LABEL)]),
            ids=torch.cat([batch.ids, batch.ids.new_full((count,), -1)]),
        )
