"""Run logs: ``metrics.jsonl`` lines, progress with an ETA (``distill._progress``; the bar
needs the ``cli`` extra), TensorBoard."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from distill._io import write_atomic
from distill._progress import ProgressBar

__all__ = ["MetricsLog", "ProgressBar", "read_metrics"]


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file.

    Raises:
        ValueError: a line that is not JSON, as ``"<file>:<line>: not a JSON line: ..."``.

    Example:
        >>> [r["loss"] for r in read_metrics("runs/demo/metrics.jsonl") if r["split"] == "train"]
        ... # doctest: +SKIP
    """
    path = Path(path)
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not a JSON line: {error.msg}") from error
    return records


class MetricsLog:
    """Appends one JSON object per line to ``run_dir/metrics.jsonl`` (main process only).

    Each record follows the run-directory contract: ``variant``, ``step``, ``split``,
    ``phase``, ``loss``, ``loss/<term>``, metrics and ``lr``. Non-finite numbers are written as
    ``null`` so every line stays valid JSON.

    Args:
        run_dir: the run folder; ``None`` disables file logging.
        variant: the name of the model being trained, written on every line.
        tensorboard: also write scalars under ``run_dir/tensorboard/<variant>``.

    Raises:
        ImportError: ``tensorboard=True`` without the ``tensorboard`` package.

    Example:
        >>> log = MetricsLog(tmp_dir, "student")  # doctest: +SKIP
        >>> log.log(10, "train", {"loss": 0.31, "loss/kd": 0.12, "lr": 1e-3})
    """

    def __init__(self, run_dir: str | os.PathLike | None, variant: str, *, tensorboard=False):
        self.variant = variant
        self.path = None if run_dir is None else Path(run_dir) / "metrics.jsonl"
        self._writer = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                self._writer = _summary_writer(Path(run_dir) / "tensorboard" / variant)

    def log(self, step: int, split: str, values: dict[str, float], phase: str | None = None):
        """Write one line: ``{"variant", "step", "split", "phase", **values}``."""
        if self.path is None:
            return
        record = {"variant": self.variant, "step": step, "split": split, "phase": phase}
        record.update({key: _json_number(value) for key, value in values.items()})
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(f"{split}/{key}", value, step)

    def truncate_after(self, step: int) -> None:
        """Drop this variant's lines after ``step`` (a resumed run rewrites them); atomic.

        A torn last line (the process was killed mid-write) is dropped too.
        """
        if self.path is None or not self.path.exists():
            return
        lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        if lines and not _is_json(lines[-1]):
            lines.pop()
        kept = [line for line in lines if not self._is_later(json.loads(line), step)]
        write_atomic(self.path, "".join(line + "\n" for line in kept))

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._writer is not None:
            self._writer.close()

    def _is_later(self, record: dict, step: int) -> bool:
        return record.get("variant") == self.variant and record.get("step", 0) > step


def _summary_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(
            "TensorBoard logging needs the `tensorboard` package: "
            "pip install 'distill[tensorboard]' (or set tensorboard=False)"
        ) from error
    return SummaryWriter(log_dir=str(log_dir))


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
