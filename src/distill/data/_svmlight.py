"""SVMlight/libsvm parsing via scikit-learn, with located errors and 0/1-based index detection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse

from distill.data._checks import check_file, check_has_rows, is_number, raise_located

ZeroBased = bool | Literal["auto"]


@dataclass
class SvmlightRows:
    """Parsed rows: ``matrix`` columns are feature indices minus ``index_base``."""

    matrix: scipy.sparse.csr_matrix
    labels: np.ndarray
    qid: np.ndarray | None
    index_base: int


def load_svmlight(path: str, *, zero_based: ZeroBased, n_features: int | None) -> SvmlightRows:
    """Parse an SVMlight file (optional ``qid:``, ``#`` comments) with scikit-learn.

    ``zero_based="auto"`` treats the file as 1-based when no feature index 0 occurs (the rule of
    scikit-learn and LightGBM). A malformed line raises ``ValueError("file:line: ...")`` naming
    the offending token.
    """
    from sklearn.datasets import load_svmlight_file  # deferred: sklearn.datasets imports slowly

    path = check_file(path)
    try:
        matrix, labels, qid = load_svmlight_file(
            path, zero_based=True, query_id=True, dtype=np.float32
        )
    except ValueError as error:
        raise_located(path, svmlight_line_problem, error)
    check_has_rows(path, matrix.shape[0])
    if 0 < len(qid) != matrix.shape[0]:
        raise_located(path, _missing_qid_problem, ValueError("some lines lack 'qid:'"))
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


def svmlight_line_problem(line: str) -> str | None:
    """Describe what is wrong with one SVMlight line, or None when it is well formed."""
    tokens = line.split("#", 1)[0].split()
    if not tokens:
        return None
    if not is_number(tokens[0]):
        return f"label {tokens[0]!r} is not a number"
    previous = -1
    for position, token in enumerate(tokens[1:], start=1):
        key, colon, value = token.partition(":")
        if not colon:
            return f"token {token!r} is not of the form 'index:value'"
        if key == "qid":
            if position != 1:
                return f"token {token!r}: qid must come right after the label"
            if not value.lstrip("-").isdigit():
                return f"token {token!r}: qid is not an integer"
            continue
        if not key.isdigit():
            return f"token {token!r}: feature index is not a non-negative integer"
        if not is_number(value):
            return f"token {token!r}: feature value is not a number"
        if int(key) <= previous:
            return f"token {token!r}: feature indices must be strictly increasing"
        previous = int(key)
    return None


def _missing_qid_problem(line: str) -> str | None:
    tokens = line.split("#", 1)[0].split()
    if tokens and not any(token.startswith("qid:") for token in tokens):
        return "line has no 'qid:' token while other lines do"
    return None
