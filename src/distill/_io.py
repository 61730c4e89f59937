"""Atomic file writes: the one place that does temp file + ``os.replace``.

A reader (or a resumed run) never sees a half-written file: data goes to a temp file in the
target's folder, is flushed to disk, and is renamed over the target in one step.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success it replaces ``path``, on error it is removed.

    Parent folders are created; the file gets the usual permissions (``0o666`` less the umask),
    not the private mode of a temp file.

    Example:
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "scores.txt"
        >>> with atomic_path(target) as temp:
        ...     _ = temp.write_text("0.5\\n")
        >>> target.read_text()
        '0.5\\n'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        _flush_to_disk(temp)
        os.chmod(temp, default_mode(0o666))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically; returns the path.

    Example: ``write_atomic("runs/demo/summary.md", "# demo\\n")``
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as temp:
        temp.write_bytes(payload)
    return Path(path)


def default_mode(full: int) -> int:
    """``full`` permissions less the process umask (temp files and folders are created private)."""
    umask = os.umask(0)
    os.umask(umask)
    return full & ~umask


def _flush_to_disk(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())
