"""Input checks shared by the readers: empty files, NaN/inf, label ranges, malformed lines."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal, NoReturn

import torch

Impute = float | Literal["mean"] | None


def check_file(path: str | os.PathLike) -> str:
    """An existing, non-empty file; returns its path as a string."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: file is empty")
    return path


def check_has_rows(source: str, n_rows: int) -> None:
    """A file that parsed to zero rows (only comments or blank lines) is an error."""
    if n_rows == 0:
        raise ValueError(f"{source}: no data rows (file holds only blank or comment lines)")


def finite_features(
    features: torch.Tensor,
    *,
    source: str,
    allow_nan: bool,
    impute: Impute,
    svmlight: bool = False,
) -> torch.Tensor:
    """Reject NaN/inf features (count and first row in the message) unless asked to keep them.

    ``impute`` replaces them by a number or by the column mean of the finite values
    (0 for a column without any); ``allow_nan`` keeps them as they are. ``svmlight``: the
    source is an SVMlight file, whose line of the first bad row is named too.
    """
    bad = ~torch.isfinite(features)
    if not bool(bad.any()) or allow_nan:
        return features
    if impute is None:
        first_row = int(bad.any(dim=1).nonzero()[0])
        problem = (
            f"features contain {int(bad.sum())} NaN/inf value(s), first in row {first_row} "
            "(0-based data row); pass allow_nan=True or impute=<number>|'mean'"
        )
        if svmlight:
            raise_at_row(source, first_row, problem)
        raise ValueError(f"{source}: {problem}")
    if impute == "mean":
        kept = torch.where(bad, torch.zeros_like(features), features)
        counts = (~bad).sum(dim=0).clamp_min(1)
        fill = (kept.sum(dim=0) / counts).expand_as(features)
    else:
        fill = torch.full_like(features, float(impute))
    return torch.where(bad, fill, features)


def check_label_range(
    labels: torch.Tensor, label_range: tuple[float, float] | None, *, source: str
) -> None:
    """All labels in the closed interval ``label_range`` (no check when None)."""
    if label_range is None or len(labels) == 0:
        return
    low, high = label_range
    outside = (labels < low) | (labels > high)
    if bool(outside.any()):
        row = int(outside.nonzero()[0])
        raise ValueError(
            f"{source}: {int(outside.sum())} label(s) outside the declared range "
            f"[{low}, {high}], first in row {row} (0-based data row): {labels[row].item()}"
        )


def raise_located(
    path: str,
    problem_in_line: Callable[[str], str | None],
    error: Exception,
    *,
    skip_lines: int = 0,
    csv: bool = False,
) -> NoReturn:
    """Re-raise a library parse error as ``file:line: problem`` by scanning the file.

    ``problem_in_line`` returns a description naming the offending token, or None for a good
    line; the first ``skip_lines`` lines (a header) are not checked. ``csv``: lines end at
    ``\\n``, ``\\r\\n`` or a lone ``\\r`` (as CSV parsers split them) and must be UTF-8; else
    only ``\\n`` ends a line. The scan runs only after the fast library reader has failed.
    """
    with open(path, "rb") as file:
        lines = file.read().splitlines() if csv else file
        for line_number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                if csv:
                    raise ValueError(
                        f"{path}:{line_number}: line is not valid UTF-8 text"
                    ) from error
                line = raw.decode("utf-8", errors="replace")
            if line_number <= skip_lines:
                continue
            problem = problem_in_line(line.rstrip("\r\n"))
            if problem is not None:
                raise ValueError(f"{path}:{line_number}: {problem}") from error
    raise ValueError(f"{path}: {error}") from error


def raise_at_row(path: str, row: int, problem: str) -> NoReturn:
    """Raise ``ValueError("file:line: problem")`` for 0-based data row ``row`` of an SVMlight
    file (blank and comment-only lines hold no row)."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        seen = -1
        for line_number, line in enumerate(lines, start=1):
            seen += bool(line.split("#", 1)[0].strip())
            if seen == row:
                raise ValueError(f"{path}:{line_number}: {problem}")
    raise ValueError(f"{path}: data row {row} (0-based): {problem}")


def is_number(token: str) -> bool:
    """True for tokens that parse as a float (``nan``/``inf`` included).

    Stricter than ``float()`` where data parsers are: no ``1_4``, and no blanks around the
    number other than spaces and tabs (``float()`` also strips ``\\x0b``, ``\\x0c``).
    """
    if "_" in token or token.strip() != token.strip(" \t"):
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True
