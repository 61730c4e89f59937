"""The one in-memory dataset structure, row/column selection and group-preserving splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from distill._validation import check_number, check_positive_int, check_tensor

FEATURE_DTYPES = (torch.float32, torch.int64)
LABEL_DTYPES = (torch.int64, torch.float32)


@dataclass
class Dataset:
    """Features, labels and optional groups of one data set, all as row-aligned tensors.

    Dense data: ``features`` float32 ``(N, D)``. Sparse/categorical data: ``features`` int64
    ``(N, F)`` global feature ids (one column per field or non-zero slot; id 0 is padding or
    missing) with optional ``feature_values`` float32 ``(N, F)`` (None means all ones) and
    ``num_embeddings`` = max id + 1.

    Args:
        features: float32 ``(N, D)`` or int64 ``(N, F)``.
        labels: int64 ``(N,)`` class indices, or float32 ``(N,)`` clicks / relevance grades.
        groups: int64 ``(N,)`` group (query) id per row, or None.
        ids: int64 ``(N,)`` example ids; default ``arange(N)``.
        feature_values: float32 ``(N, F)`` weights of sparse ids, or None.
        feature_names: one name per column of ``features``; default ``"1"`` … ``"D"``.
        num_embeddings: size of the id space of sparse features (None for dense).
        extras: further per-row tensors with first dimension N (e.g. ``"true_prob"``).
        meta: free-form facts (``"task"``, ``"student_features"``, ...).

    Raises:
        TypeError: a tensor of the wrong dtype.
        ValueError: tensors whose row counts or shapes disagree.

    Reference: docs/data.md; the layout follows scikit-learn's ``(X, y)`` plus LightGBM's
    per-row group (query) ids.

    Example:
        >>> ds = Dataset(torch.rand(4, 3), torch.tensor([0, 1, 1, 0]))
        >>> len(ds), ds.feature_names
        (4, ['1', '2', '3'])
    """

    features: torch.Tensor
    labels: torch.Tensor
    groups: torch.Tensor | None = None
    ids: torch.Tensor | None = None
    feature_values: torch.Tensor | None = None
    feature_names: list[str] = field(default_factory=list)
    num_embeddings: int | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_tensor("features", self.features, FEATURE_DTYPES, ndim=2)
        n_rows, n_columns = self.features.shape
        _check_tensor("labels", self.labels, LABEL_DTYPES, ndim=1, rows=n_rows)
        if self.ids is None:
            self.ids = torch.arange(n_rows)
        _check_tensor("ids", self.ids, (torch.int64,), ndim=1, rows=n_rows)
        if self.groups is not None:
            _check_tensor("groups", self.groups, (torch.int64,), ndim=1, rows=n_rows)
        if self.feature_values is not None:
            _check_tensor("feature_values", self.feature_values, (torch.float32,), ndim=2)
            if self.feature_values.shape != self.features.shape:
                raise ValueError(
                    f"`feature_values` shape {tuple(self.feature_values.shape)} does not match "
                    f"`features` shape {tuple(self.features.shape)}"
                )
        if not self.feature_names:
            self.feature_names = [str(i) for i in range(1, n_columns + 1)]
        if len(self.feature_names) != n_columns:
            raise ValueError(
                f"`feature_names` has {len(self.feature_names)} names for {n_columns} columns"
            )
        for name, value in self.extras.items():
            if not isinstance(value, torch.Tensor) or value.ndim == 0 or len(value) != n_rows:
                raise ValueError(f"`extras[{name!r}]` must be a tensor with {n_rows} rows")

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def is_sparse(self) -> bool:
        """True when ``features`` holds int64 feature ids rather than dense floats."""
        return self.features.dtype == torch.int64

    def subset(self, index: torch.Tensor | Sequence[int]) -> Dataset:
        """The rows ``index`` (int positions or a bool mask of length N), in that order."""
        index = torch.as_tensor(index)
        if index.dtype == torch.bool and index.shape != (len(self),):
            raise ValueError(
                f"bool `index` must have shape ({len(self)},), got {tuple(index.shape)}"
            )

        def take(value: torch.Tensor | None) -> torch.Tensor | None:
            return None if value is None else value[index]

        return replace(
            self,
            features=take(self.features),
            labels=take(self.labels),
            groups=take(self.groups),
            ids=take(self.ids),
            feature_values=take(self.feature_values),
            extras={name: value[index] for name, value in self.extras.items()},
            meta=dict(self.meta),
        )

    def select_features(self, spec: str | Sequence[str | int]) -> Dataset:
        """The columns named by ``spec`` (see :func:`parse_feature_spec`), in that order."""
        columns = parse_feature_spec(spec, self.feature_names)
        values = self.feature_values
        return replace(
            self,
            features=self.features[:, columns],
            feature_values=None if values is None else values[:, columns],
            feature_names=[self.feature_names[c] for c in columns],
            extras=dict(self.extras),
            meta=dict(self.meta),
        )


def parse_feature_spec(spec: str | Sequence[str | int], names: Sequence[str]) -> list[int]:
    """Column positions (0-based) selected by a feature spec.

    A string is a comma-separated list of **1-based, inclusive** positions and ranges, as in
    ``cut -f`` and LETOR's feature numbering: ``"1-40,50"`` is columns 1 … 40 and 50, i.e.
    Python indices 0 … 39 and 49. A list holds either feature names (str) or 0-based Python
    indices (int).

    Args:
        spec: ``"1-40,50"``, ``["f1", "f7"]`` or ``[0, 6]``.
        names: the feature names, one per column.

    Returns:
        0-based column positions, in the order given.

    Raises:
        ValueError: a malformed range, a position out of range or an unknown name.
        TypeError: a list that mixes names and indices.

    Example:
        >>> parse_feature_spec("1-3,5", ["a", "b", "c", "d", "e"])
        [0, 1, 2, 4]
    """
    n_columns = len(names)
    if isinstance(spec, str):
        return [position - 1 for position in _parse_ranges(spec, n_columns)]
    if all(isinstance(item, str) for item in spec):
        lookup = {name: i for i, name in enumerate(names)}
        unknown = [item for item in spec if item not in lookup]
        if unknown:
            raise ValueError(f"`spec` names unknown feature(s) {unknown}")
        return [lookup[item] for item in spec]
    if all(isinstance(item, int) and not isinstance(item, bool) for item in spec):
        bad = [item for item in spec if not 0 <= item < n_columns]
        if bad:
            raise ValueError(f"`spec` indices must be in [0, {n_columns - 1}], got {bad}")
        return list(spec)
    raise TypeError("`spec` must be a range string, a list of names or a list of int indices")


def _parse_ranges(spec: str, n_columns: int) -> list[int]:
    positions: list[int] = []
    for part in spec.replace(" ", "").split(","):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            raise ValueError(f"`spec` part {part!r} is not a position or range like '1-40'")
        low, high = int(bounds[0]), int(bounds[-1])
        if not 1 <= low <= high <= n_columns:
            raise ValueError(
                f"`spec` range {part!r} must lie in 1-{n_columns} (1-based, inclusive)"
            )
        positions.extend(range(low, high + 1))
    return positions


def split(
    dataset: Dataset, fractions: Sequence[float], *, seed: int, stratify: bool = False
) -> tuple[Dataset, ...]:
    """Seeded random split into parts of the given fractions, keeping every group whole.

    Grouped data is split by group (part k ends at group ``floor(cumulative_fraction_k · G + ½)``
    of the shuffled G groups); ungrouped data by row. With ``stratify`` the rows of each label
    value are shuffled and cut separately, so every part keeps the label mix (e.g. the click
    rate). Rows keep their original order inside a part.

    Args:
        dataset: the data to split.
        fractions: positive fractions summing to 1, e.g. ``(0.8, 0.1, 0.1)``.
        seed: seed of the shuffle; the same seed gives the same split.
        stratify: cut each label value separately (ungrouped data only).

    Returns:
        One Dataset per fraction.

    Raises:
        ValueError: fractions that are not positive or do not sum to 1; ``stratify`` on
            grouped data.

    Reference: scikit-learn's ``GroupShuffleSplit`` (groups never straddle two parts) and
    ``StratifiedShuffleSplit``.

    Example:
        >>> train, valid = split(ds, (0.8, 0.2), seed=0)
    """
    for fraction in fractions:
        check_number("fractions", fraction, low=0.0, high=1.0, low_open=True)
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must sum to 1, got {sum(fractions)}")
    check_positive_int("seed", seed, minimum=0)
    if stratify and dataset.groups is not None:
        raise ValueError("`stratify` needs ungrouped data (groups are kept whole)")
    keys = torch.arange(len(dataset)) if dataset.groups is None else dataset.groups
    unique_keys, row_key = torch.unique(keys, return_inverse=True)
    strata = torch.zeros(len(unique_keys), dtype=torch.int64)
    if stratify:
        strata = torch.unique(dataset.labels, return_inverse=True)[1]
    generator = torch.Generator().manual_seed(seed)
    part_of_key = torch.empty(len(unique_keys), dtype=torch.int64)
    for stratum in torch.unique(strata):
        members = torch.nonzero(strata == stratum).flatten()
        order = members[torch.randperm(len(members), generator=generator)]
        bounds = [int(c * len(members) + 0.5) for c in _cumulative(fractions)]
        start = 0
        for part, end in enumerate(bounds):
            part_of_key[order[start:end]] = part
            start = end
    row_part = part_of_key[row_key]
    return tuple(
        dataset.subset(torch.nonzero(row_part == part).flatten()) for part in range(len(fractions))
    )


def _cumulative(fractions: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for fraction in fractions[:-1]:
        total += fraction
        out.append(total)
    return [*out, 1.0]


def _check_tensor(
    name: str,
    value: Any,
    dtypes: tuple[torch.dtype, ...],
    *,
    ndim: int,
    rows: int | None = None,
) -> None:
    check_tensor(name, value)
    if value.dtype not in dtypes:
        allowed = " or ".join(str(d) for d in dtypes)
        raise TypeError(f"`{name}` must have dtype {allowed}, got {value.dtype}")
    if value.ndim != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimension(s), got shape {tuple(value.shape)}")
    if rows is not None and value.shape[0] != rows:
        raise ValueError(f"`{name}` has {value.shape[0]} rows but `features` has {rows}")
