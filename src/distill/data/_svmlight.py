"""SVMlight/libsvm parsing via scikit-learn, with located errors and 0/1-based index detection."""

from __future__ import annotations

import functools
import math
import mmap
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse

from distill.data._checks import (
    check_file,
    check_has_rows,
    is_number,
    raise_at_row,
    raise_located,
)

ZeroBased = bool | Literal["auto"]
BAD_QID = re.compile(rb"qid[^:\s]")  # a mangled qid token such as b"qid\xff\xfe:1" (or a comment)


@dataclass
class SvmlightRows:
    """Parsed rows: ``matrix`` columns are feature indices minus ``index_base``."""

    matrix: scipy.sparse.csr_matrix
    labels: np.ndarray
    qid: np.ndarray | None
    index_base: int


def load_svmlight(
    path: str, *, zero_based: ZeroBased, n_features: int | None, max_index: int
) -> SvmlightRows:
    """Parse an SVMlight file (optional ``qid:``, ``#`` comments) with scikit-learn.

    ``zero_based="auto"`` treats the file as 1-based when no feature index 0 occurs (the rule of
    scikit-learn and LightGBM). Feature indices above ``max_index`` are refused before anything
    of that size is allocated. A malformed line, a NaN/inf label, a mangled ``qid`` token or a
    query id that reappears after another one raises ``ValueError("file:line: ...")``.
    """
    from sklearn.datasets import load_svmlight_file  # deferred: sklearn.datasets imports slowly

    path = check_file(path)
    problem = functools.partial(svmlight_line_problem, max_index=max_index)
    if n_features is not None and n_features > max_index + 1:
        raise ValueError(f"{path}: `n_features` {n_features} is above the limit {max_index + 1}")
    try:
        matrix, labels, qid = load_svmlight_file(
            path, zero_based=True, query_id=True, dtype=np.float32
        )
    except (ValueError, OverflowError) as error:
        raise_located(path, problem, error)
    check_has_rows(path, matrix.shape[0])
    if matrix.shape[1] - 1 > max_index:
        raise_located(path, problem, ValueError(f"feature index above {max_index}"))
    if not np.isfinite(labels).all():
        raise_located(path, problem, ValueError("NaN/inf label"))
    _check_qid_tokens(path, problem)
    if 0 < len(qid) != matrix.shape[0]:
        raise_located(path, _missing_qid_problem, ValueError("some lines lack 'qid:'"))
    if len(qid):
        _check_contiguous_groups(path, qid)
    has_zero = bool((matrix.indices == 0).any())
    if zero_based is False and has_zero:
        raise ValueError(f"{path}: feature index 0 found but `zero_based` is False")
    index_base = 0 if zero_based is True or has_zero else 1
    matrix = matrix[:, index_base:]
    if n_features is not None:
        if n_features < matrix.shape[1]:
            raise ValueError(
                f"{path}: expected at most {n_features} feature columns (`n_features`, or the "
                f"train file's width), found {matrix.shape[1]} (feature index "
                f"{matrix.shape[1] - 1 + index_base})"
            )
        matrix.resize((matrix.shape[0], n_features))
    return SvmlightRows(matrix.tocsr(), labels, qid if len(qid) else None, index_base)


def svmlight_line_problem(line: str, *, max_index: int | None = None) -> str | None:
    """Describe what is wrong with one SVMlight line, or None when it is well formed."""
    tokens = line.split("#", 1)[0].split()
    if not tokens:
        return None
    if not is_number(tokens[0]) or not math.isfinite(float(tokens[0])):
        return f"label {tokens[0]!r} is not a finite number"
    previous = -1
    for position, token in enumerate(tokens[1:], start=1):
        key, colon, value = token.partition(":")
        if not colon:
            return f"token {token!r} is not of the form 'index:value'"
        if key == "qid":
            if position != 1:
                return f"token {token!r}: qid must come right after the label"
            if not re.fullmatch(r"-?\d+", value):
                return f"token {token!r}: qid is not an integer"
            continue
        if not key.isdigit():
            return f"token {token!r}: feature index is not a non-negative integer"
        if max_index is not None and int(key) > max_index:
            return f"token {token!r}: feature index {key} is above the limit {max_index}"
        if not is_number(value):
            return f"token {token!r}: feature value is not a number"
        if int(key) <= previous:
            return f"token {token!r}: feature indices must be strictly increasing"
        previous = int(key)
    return None


def _check_qid_tokens(path: str, problem) -> None:
    """scikit-learn reads any token starting with ``qid`` as a query id; refuse mangled ones."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if BAD_QID.search(data) is None:
            return
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line_number, line in enumerate(lines, start=1):
            found = problem(line.rstrip("\r\n"))
            if found is not None:
                raise ValueError(f"{path}:{line_number}: {found}")


def _check_contiguous_groups(path: str, qid: np.ndarray) -> None:
    """Each query id must form one block of consecutive lines (as LightGBM's layout needs)."""
    starts = np.flatnonzero(np.r_[True, qid[1:] != qid[:-1]])
    if len(np.unique(qid)) == len(starts):
        return
    seen: set[int] = set()
    for start in starts:
        value = int(qid[start])
        if value in seen:
            raise_at_row(
                path,
                int(start),
                f"qid {value} appears again after other queries (a query's lines must be "
                "consecutive)",
            )
        seen.add(value)


def _missing_qid_problem(line: str) -> str | None:
    """The problem of a line without a `qid:` token in a file whose lines have one."""
    tokens = line.split("#", 1)[0].split()
    if tokens and not any(token.startswith("qid:") for token in tokens):
        return "line has no 'qid:' token while other lines do"
    return None
