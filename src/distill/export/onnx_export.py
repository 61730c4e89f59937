"""ONNX export with a dynamic batch axis, checked against the torch model with onnxruntime."""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distill._extras import require, require_extra
from distill._io import atomic_path
from distill._validation import check_number
from distill.export._inputs import Inputs, as_tuple


class OnnxModel:
    """An exported ONNX graph run by onnxruntime, called like the torch model.

    Args:
        path: the ``.onnx`` file.

    Returns (call): the first graph output as a float32 tensor.

    Example:
        >>> scores = OnnxModel("out/onnx/model.onnx")(torch.randn(4, 8))  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike) -> None:
        onnxruntime = require("onnxruntime", extra="export")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.path = Path(path)
        self.session = onnxruntime.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f"the ONNX graph takes {len(self.input_names)} input(s) "
                f"({', '.join(self.input_names)}), got {len(inputs)}"
            )
        feed = {
            name: t.detach().cpu().numpy() for name, t in zip(self.input_names, inputs, strict=True)
        }
        return torch.from_numpy(np.asarray(self.session.run(None, feed)[0]))

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, inputs={self.input_names})"


@dataclass(frozen=True)
class OnnxCheck:
    """The result of :func:`export_onnx`: the exporter used and the measured max abs diff."""

    exporter: str
    max_abs_diff: float


def export_onnx(
    model: nn.Module, path: str | os.PathLike, example_input: Inputs, *, atol: float = 1e-4
) -> OnnxCheck:
    """Export ``model`` to ONNX (dynamic batch axis) and check it with onnxruntime.

    The graph comes from ``torch.onnx.export`` with the ``torch.export`` based exporter and
    axis 0 of every input dynamic. A model whose forward holds a data-dependent Python check
    (e.g. ``if ids.max() >= num_embeddings: raise``) cannot be captured that way; it falls
    back to the TorchScript tracer (``dynamo=False``), where such checks become constants.
    Either graph is then run by onnxruntime on ``example_input`` and on its first row alone
    (a second batch size exercises the dynamic axis) and compared with the torch model:
    ``max |onnx(x) − model(x)|`` over both.

    Args:
        model: the float32 module to export (exported in eval mode).
        path: the ``.onnx`` file to write (atomically: temp file + ``os.replace``), one file
            with the weights inside (models < 2 GB).
        example_input: a tensor ``(N, ...)`` with N ≥ 2, or a tuple of tensors with a common
            first axis (e.g. ``(ids, values)`` for a CTR model).
        atol: the largest max-abs difference accepted.

    Returns:
        An :class:`OnnxCheck` (exporter, max absolute difference).

    Raises:
        ValueError: the difference exceeds ``atol`` (nothing is written), or ``example_input``
            has fewer than 2 rows or does not fit ``forward``.
        ModuleNotFoundError: without the ``export`` extra (onnx, onnxruntime, onnxscript).

    Reference: ONNX (onnx.ai); onnxruntime CPU execution provider.

    Example:
        >>> check = export_onnx(nn.Linear(8, 1), "m.onnx", torch.randn(4, 8))  # doctest: +SKIP
        >>> check.max_abs_diff < 1e-6  # doctest: +SKIP
        True
    """
    check_number("atol", atol, low=0)
    require_extra("export")
    inputs = as_tuple("example_input", example_input)
    if len(inputs[0]) < 2:
        raise ValueError(
            "`example_input` must have at least 2 rows (a batch of 1 would fix the batch "
            f"axis), got {len(inputs[0])}"
        )
    model = model.eval()
    with atomic_path(path) as temp:
        exporter = _write_graph(model, inputs, str(temp))
        _strip_debug_metadata(str(temp))
        difference = _max_difference(model, OnnxModel(str(temp)), inputs)
        if difference > atol:
            raise ValueError(
                f"ONNX output differs from the torch model by {difference:.3g} (max abs) on the "
                f"sample, above `atol` {atol:g}"
            )
    return OnnxCheck(exporter, difference)


def _write_graph(model: nn.Module, inputs: tuple[torch.Tensor, ...], path: str) -> str:
    """Write the graph; return the exporter used (``"dynamo"`` or ``"torchscript"``)."""
    names, dynamic = _signature_layout(model, len(inputs))
    common = {"input_names": names, "output_names": ["output"], "verbose": False}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # torch-internal notices, not actionable by a user:
            warnings.filterwarnings("ignore", message=".*axis name: .* will not be used")
            warnings.filterwarnings("ignore", message=".*LeafSpec.* is deprecated")
            torch.onnx.export(
                model, inputs, path, dynamic_shapes=dynamic, external_data=False, **common
            )
        return "dynamo"
    except torch.onnx.OnnxExporterError:
        axes = {name: {0: "batch"} for name in [*names, "output"]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, inputs, path, dynamo=False, dynamic_axes=axes, **common)
        return "torchscript"
    finally:
        exporter_log.setLevel(level)


def _strip_debug_metadata(path: str) -> None:
    """Drop per-node debug data (Python stack traces with local paths, FX node text): it is
    not needed to run the graph and would ship the build machine's file layout."""
    onnx = require("onnx", extra="export")
    graph = onnx.load(path)
    for node in graph.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    onnx.save(graph, path)


def _signature_layout(model: nn.Module, count: int) -> tuple[list[str], tuple]:
    """Input names and a ``dynamic_shapes`` structure (axis 0 dynamic) matching ``forward``.

    Named positional parameters give their names; a ``*inputs`` parameter takes the remaining
    inputs as one tuple (as ``torch.export`` sees it), named ``input_<i>``.
    """
    batch = torch.export.Dim("batch")
    names, dynamic = [], []
    for parameter in inspect.signature(model.forward).parameters.values():
        if len(names) == count:
            break
        if parameter.kind == parameter.VAR_POSITIONAL:
            rest = count - len(names)
            names += [f"input_{i}" for i in range(len(names), count)]
            dynamic.append(tuple({0: batch} for _ in range(rest)))
        elif parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            names.append(parameter.name)
            dynamic.append({0: batch})
    if len(names) != count:
        raise ValueError(f"`example_input` has {count} tensors but forward takes {len(names)}")
    return names, tuple(dynamic)


def _max_difference(model: nn.Module, graph: OnnxModel, inputs: tuple[torch.Tensor, ...]) -> float:
    difference = 0.0
    for sample in (inputs, tuple(t[:1] for t in inputs)):
        with torch.inference_mode():
            expected = model(*sample).float()
        got = graph(*sample)
        difference = max(difference, float((got - expected).abs().max()))
    return difference
