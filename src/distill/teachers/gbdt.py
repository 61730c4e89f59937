"""Gradient-boosted tree teachers (LightGBM, XGBoost, CatBoost model files): raw margins.

Each teacher returns the booster's raw margin ``F(x) = base + Σ_trees leaf(x)`` — the value
before the link function (sigmoid / softmax), so the logit of a binary model, the C class
logits of a multiclass model, the score of a ranker — as float32 ``(N,)`` or ``(N, C)``.
The libraries are optional: ``pip install 'distill[gbdt]'``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from distill.teachers._common import (
    FileTeacher,
    TeacherSize,
    bytes_on_disk,
    check_finite_scores,
    import_extra,
)


class _TreeTeacher(FileTeacher, ABC):
    """Load with the library; predict margins on the model's own columns; count trees."""

    library = ""

    def __init__(
        self, path: str | os.PathLike, *, feature_columns: Sequence[int] | None = None
    ) -> None:
        super().__init__(path, feature_columns=feature_columns)
        library = import_extra(self.library)
        try:
            self.model = self._load(library)
        except Exception as error:  # each library raises its own error type
            raise ValueError(f"{self.path}: not a {self.kind} model file ({error})") from None

    def predict(
        self, features: torch.Tensor, ids: torch.Tensor, *, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Raw margins ``(N,)`` or ``(N, C)`` (float32) of these rows; ``values`` unused.

        Raises:
            TypeError: int64 feature ids (trees read dense features).
            ValueError: a feature count other than the model's; NaN/inf margins.
        """
        matrix = self.inputs(features, self.num_features).numpy().astype(np.float64)
        margins = torch.from_numpy(np.asarray(self._margins(matrix), dtype=np.float32))
        return check_finite_scores(margins, ids, source=str(self.path))

    def size(self) -> TeacherSize:
        """Trees, leaves, parameters (leaf values + split nodes) and bytes on disk."""
        trees, leaf_values, leaves = self._counts()
        return TeacherSize(
            params=leaf_values + leaves - trees,
            size_bytes=bytes_on_disk(self.path),
            trees=trees,
            leaves=leaves,
        )

    @property
    @abstractmethod
    def num_features(self) -> int:
        """Feature columns the model was trained on."""

    @abstractmethod
    def _load(self, library: Any) -> Any:
        """The library's model object, read from ``self.path``."""

    @abstractmethod
    def _margins(self, matrix: np.ndarray) -> np.ndarray:
        """Raw margins of a float64 ``(N, D)`` matrix."""

    @abstractmethod
    def _counts(self) -> tuple[int, int, int]:
        """(trees, leaf values, leaves)."""


class LightGBMTeacher(_TreeTeacher):
    """A LightGBM model file (``Booster.save_model`` text) as a teacher of raw scores.

    Equals ``lightgbm.Booster(model_file=path).predict(X, raw_score=True)``.

    Args:
        path: the model file.
        feature_columns: 0-based feature columns the model reads (default: every column).

    Raises:
        ImportError: lightgbm is not installed (``pip install 'distill[gbdt]'``).
        ValueError: the file is not a LightGBM model.

    Reference: Ke et al. (2017), "LightGBM"; docs/teachers.md.

    Example:
        >>> teacher = LightGBMTeacher("lambdarank.txt")  # doctest: +SKIP
        >>> teacher.predict(test.features, test.ids).shape
        torch.Size([1000])
    """

    kind, library = "LightGBM", "lightgbm"

    def _load(self, library: Any) -> Any:
        return library.Booster(model_file=str(self.path))

    @property
    def num_features(self) -> int:
        return self.model.num_feature()

    def _margins(self, matrix: np.ndarray) -> np.ndarray:
        return self.model.predict(matrix, raw_score=True)

    def _counts(self) -> tuple[int, int, int]:
        trees = self.model.dump_model()["tree_info"]
        leaves = sum(tree["num_leaves"] for tree in trees)
        return len(trees), leaves, leaves


class XGBoostTeacher(_TreeTeacher):
    """An XGBoost model file (JSON or UBJSON ``save_model``) as a teacher of margins.

    Equals ``booster.predict(DMatrix(X), output_margin=True)``.

    Args:
        path: the model file; ``feature_columns``: as in :class:`LightGBMTeacher`.

    Raises:
        ImportError: xgboost is not installed (``pip install 'distill[gbdt]'``).
        ValueError: the file is not an XGBoost model.

    Reference: Chen & Guestrin (2016), "XGBoost"; docs/teachers.md.

    Example:
        >>> XGBoostTeacher("model.ubj").size().trees  # doctest: +SKIP
        100
    """

    kind, library = "XGBoost", "xgboost"

    def _load(self, library: Any) -> Any:
        self._library = library
        return library.Booster(model_file=str(self.path))

    @property
    def num_features(self) -> int:
        return self.model.num_features()

    def _margins(self, matrix: np.ndarray) -> np.ndarray:
        rows = self._library.DMatrix(matrix)
        return self.model.predict(rows, output_margin=True, validate_features=False)

    def _counts(self) -> tuple[int, int, int]:
        dumps = self.model.get_dump()
        leaves = sum(tree.count("leaf=") for tree in dumps)
        return len(dumps), leaves, leaves


class CatBoostTeacher(_TreeTeacher):
    """A CatBoost model file (``.cbm``, or ``.json``) as a teacher of raw formula values.

    Equals ``model.predict(X, prediction_type="RawFormulaVal")``. Numeric features only.

    Args:
        path: the model file; ``feature_columns``: as in :class:`LightGBMTeacher`.

    Raises:
        ImportError: catboost is not installed (``pip install 'distill[gbdt]'``).
        ValueError: the file is not a CatBoost model.

    Reference: Prokhorenkova et al. (2018), "CatBoost"; docs/teachers.md.

    Example:
        >>> CatBoostTeacher("model.cbm").predict(x, ids)  # doctest: +SKIP
    """

    kind, library = "CatBoost", "catboost"

    def _load(self, library: Any) -> Any:
        model_format = "json" if self.path.suffix.lower() == ".json" else "cbm"
        return library.CatBoost().load_model(str(self.path), format=model_format)

    @property
    def num_features(self) -> int:
        return len(self.model.feature_names_)

    def _margins(self, matrix: np.ndarray) -> np.ndarray:
        return self.model.predict(matrix, prediction_type="RawFormulaVal")

    def _counts(self) -> tuple[int, int, int]:
        leaves = int(np.sum(self.model.get_tree_leaf_counts()))
        leaf_values = len(self.model.get_leaf_values())
        return self.model.tree_count_, leaf_values, leaves
