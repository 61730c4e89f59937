"""Atomic export directories: a whole export appears at once, never half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from distill._io import default_mode

MARKER = "export.json"


@contextmanager
def atomic_directory(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temp directory next to ``path``; on success it replaces ``path``.

    On error the temp directory is removed and ``path`` is untouched. An existing ``path`` is
    an error unless ``force``; then the old directory is moved aside, the new one renamed into
    place and the old one removed (there is no moment without a complete directory). The
    caller must write :data:`MARKER` into the new directory; ``force`` only replaces a
    directory holding that marker (or an empty one), so a mistyped ``--out`` cannot delete an
    unrelated directory.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False (checked before and after), or
            ``path`` is not an earlier export.

    Example:
        >>> with atomic_directory("out/student") as temp:  # doctest: +SKIP
        ...     (temp / MARKER).write_text("{}")
    """
    path = Path(path)
    _refuse_existing(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(temp, default_mode(0o777))
    try:
        yield temp
        _refuse_existing(path, force)
        _replace_directory(temp, path)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _refuse_existing(path: Path, force: bool) -> None:
    if not path.exists():
        return
    if not force:
        raise FileExistsError(f"{path} already exists; pass force=True (--force) to replace it")
    earlier_export = path.is_dir() and (not any(path.iterdir()) or (path / MARKER).is_file())
    if not earlier_export:
        raise FileExistsError(
            f"refusing to replace {path}: it is not an earlier export (no {MARKER}); "
            "remove it yourself or choose another output directory"
        )


def _replace_directory(temp: Path, path: Path) -> None:
    if not path.exists():
        os.replace(temp, path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.replace(path, old / "previous")
    os.replace(temp, path)
    shutil.rmtree(old, ignore_errors=True)
