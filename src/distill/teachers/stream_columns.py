"""Teacher logits logged as columns of streamed shards: read with the rows, no extra pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from distill.teachers._common import TeacherSize, check_finite_scores
from distill.teachers.scores import score_columns


class StreamedScoreColumns:
    """The teacher logits stored per row in streamed Parquet shards (``StreamingTable``).

    The columns are read with every record batch as the chunk's ``extras``; ``fit`` takes the
    logits from the batch itself, so no score cache and no second pass over the data are
    needed. The in-memory counterpart is ``ScoreColumnTeacher``.

    Args:
        column: the logit column (binary, ranking); columns: C logit columns (multiclass).

    Raises:
        ValueError: both or neither of ``column``/``columns``.

    Example:
        >>> table = StreamingTable("days/", label="click", extras=["teacher_logit"])
        >>> teacher = StreamedScoreColumns(column="teacher_logit")
    """

    def __init__(self, *, column: str | None = None, columns: Sequence[str] | None = None):
        self.names = score_columns(column, columns)
        self.multi = columns is not None

    def batch_logits(self, extras: Mapping[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
        """The float32 logits ``(B,)`` (or ``(B, C)``) of one batch from its ``extras``.

        Raises:
            ValueError: a missing column (read the table with ``extras`` = these names),
                NaN/inf scores (row and id named).
        """
        missing = [name for name in self.names if name not in extras]
        if missing:
            raise ValueError(
                f"no score column {missing} among the streamed extras {sorted(extras)}; open "
                f"the StreamingTable with extras={self.names}"
            )
        logits = torch.stack([extras[name].float() for name in self.names], dim=1)
        check_finite_scores(logits, ids, source=f"score column(s) {self.names}")
        return logits if self.multi else logits[:, 0]

    def size(self) -> TeacherSize:
        """No parameters and no stored bytes beyond the data's own columns."""
        return TeacherSize(params=0, size_bytes=0)

    def __repr__(self) -> str:
        return f"StreamedScoreColumns({self.names})"
