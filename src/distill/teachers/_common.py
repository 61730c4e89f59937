"""Pieces shared by the file-backed teacher sources: hashes, sizes, lazy imports, checks."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from distill._extras import require
from distill._validation import value_range

CHUNK_BYTES = 1 << 20
EXTRA_OF = {"lightgbm": "gbdt", "xgboost": "gbdt", "catboost": "gbdt", "onnxruntime": "export"}


@dataclass(frozen=True)
class TeacherSize:
    """How big a teacher is, for the results rows.

    Attributes:
        params: learned numbers: weights of a network, or split thresholds plus leaf values
            of a tree ensemble.
        size_bytes: bytes on disk of the model file (in memory for an in-memory module).
        trees, leaves: tree and leaf counts of a tree ensemble (None otherwise).
    """

    params: int
    size_bytes: int
    trees: int | None = None
    leaves: int | None = None

    def row(self) -> dict[str, int]:
        """The fields of a results row: ``params``, ``size_bytes`` (+ ``trees``, ``leaves``)."""
        fields = {"params": self.params, "size_bytes": self.size_bytes}
        if self.trees is not None:
            fields |= {"trees": self.trees, "leaves": self.leaves}
        return fields


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (of every file, by relative name, for a folder)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(f"{file.relative_to(path).as_posix()}|".encode())
        with open(file, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


def bytes_on_disk(path: Path) -> int:
    """Size of a file, or of every file under a folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def import_extra(name: str) -> ModuleType:
    """Import a teacher's optional library, or say which ``pip install`` line brings it.

    Raises:
        ModuleNotFoundError: the library is not installed (the extra's pip line named).
    """
    return require(name, extra=EXTRA_OF[name])


def existing_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path; FileNotFoundError naming it when nothing is there."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such teacher file")
    return path


def check_finite_scores(logits: torch.Tensor, ids: torch.Tensor, *, source: str) -> torch.Tensor:
    """``logits`` unchanged, or ValueError naming the first row (and its id) with NaN/inf."""
    finite = torch.isfinite(logits)
    if logits.ndim > 1:
        finite = finite.all(dim=tuple(range(1, logits.ndim)))
    if not bool(finite.all()):
        row = int(torch.nonzero(~finite)[0])
        value = logits[row].tolist()
        raise ValueError(
            f"{source}: teacher score of row {row} (id {int(ids[row])}) is {value}; "
            "scores must be finite (no NaN/inf)"
        )
    return logits


class IdIndex:
    """Rows of a table looked up by example id (ids ``0 … n−1`` are their own rows).

    Args:
        ids: int64 ``(n,)`` ids, unique.
        source: names the table in errors.

    Raises:
        ValueError: duplicated ids.
    """

    def __init__(self, ids: torch.Tensor, *, source: str) -> None:
        self.source = source
        self.ids, self.order = torch.sort(ids)
        repeated = self.ids[1:] == self.ids[:-1]
        if bool(repeated.any()):
            duplicate = int(self.ids[1:][repeated][0])
            raise ValueError(f"{source}: id {duplicate} occurs more than once")
        self._identity = torch.equal(self.ids, torch.arange(len(self.ids)))

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Position (in the order given to the constructor) of each id.

        Raises:
            KeyError: an id that is not in the table.
        """
        ids = ids.cpu()
        if self._identity and ids.numel():
            low, high = value_range(ids)
            if low >= 0 and high < len(self.ids):
                return self.order[ids]
        position = torch.searchsorted(self.ids, ids).clamp(max=max(len(self.ids) - 1, 0))
        found = self.ids[position] == ids if len(self.ids) else torch.zeros_like(ids, dtype=bool)
        if not bool(found.all()):
            raise KeyError(f"id {int(ids[~found][0])} is not in {self.source}")
        return self.order[position]

    def __len__(self) -> int:
        return len(self.ids)


class FileTeacher:
    """Base of the teachers loaded from a model file: path, file fingerprint, input columns.

    Args:
        path: the model file (or folder).
        feature_columns: 0-based feature columns the model reads, in its order; None: all of them.
    """

    kind = "file"

    def __init__(
        self, path: str | os.PathLike, *, feature_columns: Sequence[int] | None = None
    ) -> None:
        self.path = existing_file(path)
        self.columns = None if feature_columns is None else list(feature_columns)
        self._sha256 = file_sha256(self.path)

    def fingerprint(self) -> str:
        """SHA-256 of the model file's bytes (as loaded): a changed file is a changed teacher."""
        return self._sha256

    def inputs(self, features: torch.Tensor, expected: int | None) -> torch.Tensor:
        """The model's columns of a dense feature batch, checked against its feature count.

        Raises:
            TypeError: sparse (int64 id) features.
            ValueError: a column count other than ``expected``.
        """
        if features.dtype == torch.int64:
            raise TypeError(
                f"{self.path}: a {self.kind} teacher reads dense float features, "
                "got int64 feature ids"
            )
        if self.columns is not None:
            features = features[:, self.columns]
        if expected is not None and features.shape[1] != expected:
            raise ValueError(
                f"{self.path}: the {self.kind} model expects {expected} features, "
                f"the data gives it {features.shape[1]}"
            )
        return features.detach().cpu()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
