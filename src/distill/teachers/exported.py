"""Teachers exported from a training framework: ONNX models and TorchScript / ``torch.export``.

Neither format runs Python code from the file (no pickle), so no ``trust`` is needed. A
``(N, 1)`` output is returned as ``(N,)`` (a binary or ranking score).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from distill._extras import require
from distill.teachers._common import (
    FileTeacher,
    TeacherSize,
    bytes_on_disk,
    check_finite_scores,
    import_extra,
)

ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


def _as_scores(output: torch.Tensor, ids: torch.Tensor, source: str) -> torch.Tensor:
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    return check_finite_scores(output.float(), ids, source=source)


class OnnxTeacher(FileTeacher):
    """An ONNX model run by onnxruntime (CPU) as a teacher.

    The first input gets the features (cast to its element type), a second input the
    ``feature_values`` of sparse rows when given; the first output is the logits.

    Args:
        path: the ``.onnx`` file.
        feature_columns: 0-based feature columns the model reads (default: every column).

    Raises:
        ImportError: onnxruntime is missing (``pip install 'distill[export]'``).
        ValueError: the file is not an ONNX model; a feature count other than the model's.

    Reference: docs/teachers.md; https://onnxruntime.ai.

    Example:
        >>> teacher = OnnxTeacher("teacher.onnx")  # doctest: +SKIP
        >>> teacher.predict(x, ids).shape
        torch.Size([8, 10])
    """

    kind = "ONNX"

    def __init__(
        self, path: str | os.PathLike, *, feature_columns: Sequence[int] | None = None
    ) -> None:
        super().__init__(path, feature_columns=feature_columns)
        onnxruntime = import_extra("onnxruntime")
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.path), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own error types
            raise ValueError(f"{self.path}: not an ONNX model ({error})") from None
        self._inputs = self.session.get_inputs()
        width = self._inputs[0].shape[-1] if len(self._inputs[0].shape) == 2 else None
        self.num_features = width if isinstance(width, int) else None

    def predict(
        self, features: torch.Tensor, ids: torch.Tensor, *, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The model's first output for these rows (float32 ``(N,)`` or ``(N, C)``)."""
        first = self._inputs[0]
        dtype = ONNX_DTYPES.get(first.type, np.float32)
        if dtype == np.int64:
            columns = features if self.columns is None else features[:, self.columns]
            matrix = columns.detach().cpu()
        else:
            matrix = self.inputs(features, self.num_features)
        feeds = {first.name: matrix.numpy().astype(dtype)}
        if values is not None and len(self._inputs) > 1:
            feeds[self._inputs[1].name] = values.detach().cpu().numpy().astype(np.float32)
        output = torch.from_numpy(np.asarray(self.session.run(None, feeds)[0]))
        return _as_scores(output, ids, str(self.path))

    def size(self) -> TeacherSize:
        """Parameters (elements of the graph's initializers) and bytes on disk."""
        onnx = require("onnx", extra="export")
        graph = onnx.load(str(self.path), load_external_data=False).graph
        params = sum(int(np.prod(tensor.dims)) for tensor in graph.initializer)
        return TeacherSize(params=params, size_bytes=bytes_on_disk(self.path))


class TorchScriptTeacher(FileTeacher):
    """A TorchScript archive (``torch.jit.save``) or a ``torch.export`` program (``.pt2``).

    Loaded with ``torch.jit.load`` / ``torch.export.load`` (never a full pickle) and run on
    the CPU under ``inference_mode``.

    Args:
        path: the ``.pt``/``.pt2`` file.

    Raises:
        ValueError: the file is neither format; the model fails on the data's features.

    Reference: docs/teachers.md; PyTorch's TorchScript and ``torch.export`` documentation.

    Example:
        >>> TorchScriptTeacher("teacher.pt2").size().params  # doctest: +SKIP
        2369
    """

    kind = "TorchScript"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        try:
            if self.path.suffix == ".pt2":
                self.module = torch.export.load(self.path).module()
            else:
                self.module = torch.jit.load(self.path, map_location="cpu").eval()
        except Exception as error:  # torch raises RuntimeError or zip/format errors
            raise ValueError(
                f"{self.path}: not a TorchScript archive or torch.export program ({error})"
            ) from None

    def predict(
        self, features: torch.Tensor, ids: torch.Tensor, *, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The module's output for these rows (``module(features[, values])``)."""
        inputs = (features.cpu(),) if values is None else (features.cpu(), values.cpu())
        try:
            with torch.inference_mode():
                output = self.module(*inputs)
        except RuntimeError as error:
            raise ValueError(
                f"{self.path}: the model fails on features of shape "
                f"{tuple(features.shape)}: {error}"
            ) from None
        return _as_scores(output.clone(), ids, str(self.path))

    def size(self) -> TeacherSize:
        """Parameters of the module and bytes on disk."""
        params = sum(p.numel() for p in self.module.parameters())
        return TeacherSize(params=params, size_bytes=bytes_on_disk(self.path))
