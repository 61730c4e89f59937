"""Progress of long work (training, teacher scoring, the report) with an ETA.

On a terminal: a rich bar with elapsed time and ETA (plain lines without ``rich``, the ``cli``
extra). Elsewhere (nohup, CI, ``| tee``, a cluster
job's log): a plain line ``phase  step k/N (p%)  elapsed  ETA  latest values`` every
``interval_s`` seconds and when the phase ends. ``configure_progress(quiet=True)`` (the CLI's
``--quiet``) silences both.

Example:
    >>> with ProgressBar(100, "labels") as bar:  # doctest: +SKIP
    ...     for step in range(1, 101):
    ...         bar.update(step, {"loss": 0.3})
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import sys
import time
from collections.abc import Iterator
from typing import Any

_SETTINGS = {"quiet": False, "interval_s": 5.0, "prefix": ""}


def configure_progress(*, quiet: bool | None = None, interval_s: float | None = None) -> None:
    """Silence progress (``quiet``) or set the seconds between plain log lines.

    Raises:
        ValueError: ``interval_s`` not positive.
    """
    if interval_s is not None:
        if not interval_s > 0:
            raise ValueError(f"`interval_s` must be > 0, got {interval_s!r}")
        _SETTINGS["interval_s"] = float(interval_s)
    if quiet is not None:
        _SETTINGS["quiet"] = bool(quiet)


@contextlib.contextmanager
def progress_prefix(prefix: str) -> Iterator[None]:
    """Prefix every phase name inside the block (e.g. ``"seed 2/5 · "``)."""
    previous = _SETTINGS["prefix"]
    _SETTINGS["prefix"] = f"{previous}{prefix}"
    try:
        yield
    finally:
        _SETTINGS["prefix"] = previous


class ProgressBar:
    """A progress display of ``total`` steps with an ETA: a bar, log lines, or nothing.

    Args:
        total: steps of the phase.
        description: the phase (a variant name, ``"scoring teacher"``, ``"report"``).
        enabled: False shows nothing; True forces the bar; None: the bar on a terminal,
            plain lines otherwise (and without ``rich``). ``configure_progress(quiet=True)``
            overrides all three.
    """

    def __init__(self, total: int, description: str, *, enabled: bool | None = None):
        self.total = max(int(total), 1)
        self.description = f"{_SETTINGS['prefix']}{description}"
        quiet = _SETTINGS["quiet"] or enabled is False
        has_rich = importlib.util.find_spec("rich") is not None
        bar = not quiet and (enabled is True or sys.stdout.isatty()) and has_rich
        self._bar = _rich_bar(self.description, self.total) if bar else None
        self._lines = not quiet and not bar
        self._started = time.monotonic()
        self._printed_at = -math.inf
        self._completed, self._values, self._printed = 0, {}, -1

    def __enter__(self) -> ProgressBar:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._lines and self._printed != self._completed:
            self._print_line()

    def update(self, completed: int, values: dict[str, Any] | None = None) -> None:
        """Move to ``completed`` steps and show ``values`` (e.g. ``loss=0.123``): numbers, 0-d
        tensors (read only when shown, so a log line does not sync every step) or text."""
        self._completed, self._values = completed, values or {}
        if self._bar is not None:
            self._bar.update(self._bar.task_ids[0], completed=completed, status=self._status())
        elif self._lines:
            now = time.monotonic()
            if now - self._printed_at >= _SETTINGS["interval_s"] or completed >= self.total:
                self._printed_at = now
                self._print_line()

    def _status(self) -> str:
        return " ".join(f"{key}={_text(value)}" for key, value in self._values.items())

    def _print_line(self) -> None:
        elapsed = time.monotonic() - self._started
        done = self._completed / self.total
        eta = elapsed * (1 - done) / done if done > 0 else math.nan
        line = (
            f"{self.description}  step {self._completed}/{self.total} ({100 * done:.0f}%)  "
            f"elapsed {_clock(elapsed)}  ETA {_clock(eta)}  {self._status()}"
        )
        sys.stdout.write(line.rstrip() + "\n")  # one write: ranks' lines never mix on a pipe
        sys.stdout.flush()
        self._printed = self._completed


def _rich_bar(description: str, total: int):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    bar.add_task(description, total=total, status="")
    return bar


def _text(value: Any) -> str:
    return str(value) if isinstance(value, str) else f"{float(value):.4g}"


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
