"""Files of a run directory: atomic writes, PNG bytes of a figure, the ``metrics.jsonl`` reader."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from distill._io import write_atomic


def figure_png(figure: Figure, *, dpi: int = 80) -> bytes:
    """The PNG bytes of a matplotlib figure."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figure(figure: Figure, path: str | Path, *, dpi: int = 80) -> Path:
    """Save ``figure`` as a PNG at ``path`` atomically."""
    return write_atomic(path, figure_png(figure, dpi=dpi))


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl``: one JSON object per non-blank line (run-directory contract).

    Raises:
        ValueError: a line that is not a JSON object, with ``file:line``.
    Example: ``rows = read_metrics("runs/demo/metrics.jsonl")``
    """
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {row!r:.40}")
            rows.append(row)
    return rows
