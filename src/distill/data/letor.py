"""LETOR / SVMlight ranking files (MSLR-WEB, Yahoo LTR, Istella, MQ2007/8) and LightGBM layout."""

from __future__ import annotations

import os

import numpy as np
import torch

from distill._validation import check_positive_int
from distill.data._checks import (
    Impute,
    check_file,
    check_label_range,
    finite_features,
)
from distill.data._svmlight import ZeroBased, load_svmlight
from distill.data.dataset import Dataset

LETOR_MAX_INDEX = 2**16
"""Default bound on LETOR feature indices (MSLR has 136, Yahoo LTR 700, Istella 220)."""


def read_letor(
    path: str | os.PathLike,
    query_file: str | os.PathLike | None = None,
    *,
    zero_based: ZeroBased = "auto",
    n_features: int | None = None,
    max_index: int = LETOR_MAX_INDEX,
    label_range: tuple[float, float] | None = None,
    allow_nan: bool = False,
    impute: Impute = None,
) -> Dataset:
    """Read a ranking file in SVMlight format with ``qid:`` or a LightGBM ``.query`` file.

    Lines are ``<grade> qid:<q> <index>:<value> ... # comment``. Groups come from ``qid`` or,
    in the LightGBM layout, from ``query_file`` (one group size per line, in row order);
    ``<path>.query`` is used when present and no ``query_file`` is given. Parsing is done by
    scikit-learn's ``load_svmlight_file(query_id=True)``.

    Feature columns are named by their index in the file (``"1"`` … ``"136"`` for MSLR), so the
    1-based range spec of :meth:`Dataset.select_features` matches LETOR's feature numbers.

    Args:
        path: the SVMlight file.
        query_file: LightGBM group-size file, overriding any ``qid``.
        zero_based: feature indices start at 0 (True), 1 (False) or detect ("auto": 1-based
            unless index 0 occurs).
        n_features: pad to this many columns (align a validation file with its train file).
        max_index: largest feature index accepted (features are dense: D columns per row).
        label_range: declared ``(low, high)`` of the grades, e.g. ``(0, 4)``; checked if given.
        allow_nan: keep NaN/inf feature values instead of rejecting them.
        impute: replace NaN/inf by a number or by the column mean (``"mean"``).

    Returns:
        Dataset with float32 features ``(N, D)``, float32 grades ``(N,)`` and int64 ``groups``
        (the qid, or the group's position in the query file); ``meta["task"] == "ranking"``.

    Raises:
        ValueError: an empty file, a malformed line (``file:line: token``), a feature index
            above ``max_index``, a NaN/inf label, a qid whose lines are not consecutive,
            a mangled ``qid`` token (all ``file:line``), NaN/inf features,
            grades outside ``label_range``, a group of size 0 or sizes not summing to N.

    Reference: Qin & Liu (2013), "Introducing LETOR 4.0 Datasets"; MSLR-WEB10K/30K; LightGBM's
    "Query Data" file layout.

    Example:
        >>> ds = read_letor("train.txt", label_range=(0, 4))
        >>> ds.select_features("1-40").features.shape[1]
        40
    """
    path = os.fspath(path)
    check_positive_int("max_index", max_index)
    rows = load_svmlight(path, zero_based=zero_based, n_features=n_features, max_index=max_index)
    n_rows = rows.matrix.shape[0]
    if query_file is None and os.path.isfile(path + ".query"):
        query_file = path + ".query"
    if query_file is not None:
        groups = _groups_from_query_file(os.fspath(query_file), n_rows)
    else:
        groups = None if rows.qid is None else torch.from_numpy(rows.qid.astype(np.int64))
    features = torch.from_numpy(rows.matrix.toarray())
    labels = torch.from_numpy(rows.labels.astype(np.float32))
    check_label_range(labels, label_range, source=path)
    n_columns = features.shape[1]
    return Dataset(
        features=finite_features(
            features, source=path, allow_nan=allow_nan, impute=impute, svmlight=True
        ),
        labels=labels,
        groups=groups,
        feature_names=[str(c + rows.index_base) for c in range(n_columns)],
        meta={"task": "ranking", "source": path, "index_base": rows.index_base},
    )


def _groups_from_query_file(path: str, n_rows: int) -> torch.Tensor:
    check_file(path)
    with open(path, encoding="utf-8") as lines:
        tokens = [line.strip() for line in lines]
    sizes = []
    for line_number, token in enumerate(tokens, start=1):
        if not token:
            continue
        if not token.isdigit():
            raise ValueError(f"{path}:{line_number}: group size {token!r} is not an integer >= 1")
        if int(token) == 0:
            raise ValueError(f"{path}:{line_number}: group of size 0")
        sizes.append(int(token))
    if sum(sizes) != n_rows:
        raise ValueError(
            f"{path}: group sizes sum to {sum(sizes)} but the data file has {n_rows} rows"
        )
    return torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
