"""Export formats: compress a trained model and write it as a loadable directory.

Every format except ONNX is a ``distill.models.save`` directory (``model.json`` +
``model.safetensors``, no pickle) that ``distill.models.load`` rebuilds: plain models keep their
own spec; fp16/bf16, int8 and low-rank models are wrapped in :class:`CompressedModel`, whose
spec names the base model plus what was changed, so the loader builds the same structure before
loading the weights. Each export directory also holds ``export.json`` (format, sizes, checks).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from distill import models
from distill._io import write_atomic
from distill._validation import check_choice
from distill.export._files import MARKER, atomic_directory
from distill.export._inputs import Inputs
from distill.export.int8 import (
    Int8Embedding,
    Int8Linear,
    int8_layer_names,
    int8_structure,
    quantize_int8,
)
from distill.export.lowrank import low_rank, low_rank_structure, recover
from distill.export.onnx_export import OnnxModel, export_onnx
from distill.export.shared_factorisation import SharedLayers, shared_structure
from distill.ranking.heads import QuantileHeadModel

Format = Literal["safetensors", "fp16", "bf16", "int8", "low-rank", "onnx"]
FORMATS: tuple[str, ...] = ("safetensors", "fp16", "bf16", "int8", "low-rank", "onnx")
DType = Literal["float32", "float16", "bfloat16"]
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
EXPORT_FILE = MARKER
ONNX_FILE = "model.onnx"
_SPEC_NAME = "distill.export.formats:CompressedModel"


class CompressedModel(nn.Module):
    """A distill model with low-rank factors, int8 layers and/or half-precision weights.

    ``CompressedModel(base, ...)`` takes a freshly built ``base`` and gives it the compressed
    structure (factorised layers, :class:`~distill.export.int8.Int8Linear` /
    :class:`~distill.export.int8.Int8Embedding` layers, the weight dtype); the weights are then
    loaded from a state dict. Half precision decision: weights stay fp16/bf16 after loading
    (that is the point of the format), but the interface stays float32: floating inputs are
    cast to the weight dtype and the output back to float32.

    Args:
        base: the uncompressed model (a distill model with ``spec()``).
        dtype: weight dtype, ``"float32"``, ``"float16"`` or ``"bfloat16"``.
        ranks: ``{Linear layer name: rank}`` of factorised layers (see ``low_rank``).
        int8_layers: names of Linear/Embedding layers stored as int8 (after factorisation).
        shared: the embedding and output layer that share one basis (applied first; see
            :func:`~distill.export.shared_factorisation.share_embeddings`).

    Returns (forward): what ``base`` returns, as float32.

    Raises:
        TypeError: ``base`` has no ``spec()``; ValueError: unknown ``dtype``.

    Reference: docs/index.md#shipping; US 2023/0252281 ¶0010–0012 (constrained memory).

    Example:
        >>> from distill.models import MLP
        >>> CompressedModel(MLP(4, (8,)), dtype="float16").spec()["kwargs"]["dtype"]
        'float16'
    """

    def __init__(
        self,
        base: nn.Module,
        *,
        dtype: DType = "float32",
        ranks: dict[str, int] | None = None,
        int8_layers: Sequence[str] = (),
        shared: SharedLayers | None = None,
    ) -> None:
        super().__init__()
        check_choice("dtype", dtype, _DTYPES)
        if not callable(getattr(base, "spec", None)):
            raise TypeError(
                f"`base` ({type(base).__name__}) has no spec(): exports are rebuilt from a spec, "
                "so use a distill model or give the class a spec() (see distill.models.build)"
            )
        self.base_spec = base.spec()
        self.dtype_name = dtype
        self.ranks = dict(ranks or {})
        self.int8_layers = list(int8_layers)
        self.shared = None if shared is None else dict(shared)
        if self.shared is not None:
            base = shared_structure(base, self.shared)
        structured = int8_structure(low_rank_structure(base, self.ranks), self.int8_layers)
        self.model = structured.to(_DTYPES[dtype]).eval()

    def forward(self, *inputs: Any, **options: Any) -> torch.Tensor:
        floating = (p.dtype for p in self.model.parameters() if p.is_floating_point())
        dtype = next(floating, torch.float32)  # int8-only models take float32 inputs
        cast = [t.to(dtype) if t.is_floating_point() else t for t in inputs]
        return self.model(*cast, **options).float()

    def spec(self) -> dict[str, Any]:
        """``{"name": "distill.export.formats:CompressedModel", "kwargs": {base, ...}}``."""
        kwargs = {"base": self.base_spec, "dtype": self.dtype_name, "ranks": self.ranks}
        kwargs["int8_layers"] = self.int8_layers
        if self.shared is not None:
            kwargs["shared"] = self.shared
        return {"name": _SPEC_NAME, "kwargs": kwargs}


def serving_module(model: nn.Module) -> nn.Module:
    """The part of ``model`` that serving needs: a joint model's student (bottom + student tower;
    the teacher tower is dropped); the student inside a ``with_quantile_heads`` wrapper (the
    heads only shape training: docs/formulas.md#quantile-heads). Other models are returned
    as they are.

    Example:
        >>> from distill.models import ctr_joint_model
        >>> type(serving_module(ctr_joint_model(num_embeddings=10, num_fields=2))).__name__
        'StackedModel'
    """
    if isinstance(model, QuantileHeadModel):
        return serving_module(model.model)
    if isinstance(model, models.JointModel):
        return model.student()
    return model


def compress(
    model: nn.Module,
    format: Format,
    *,
    rank: int | float = 0.9,
    layers: Sequence[str] | None = None,
    recover_inputs: Inputs | None = None,
    recover_steps: int = 0,
    reference: nn.Module | None = None,
    reference_inputs: Inputs | None = None,
    recover_options: dict[str, Any] | None = None,
) -> nn.Module:
    """Return the in-memory serving model of one format (all but ``"onnx"``).

    Args:
        model: the trained model; :func:`serving_module` is applied first.
        format: ``"safetensors"`` (a float32 copy), ``"fp16"``, ``"bf16"``, ``"int8"``
            (Linear and Embedding layers, :func:`~distill.export.int8.quantize_int8`) or
            ``"low-rank"`` (:func:`~distill.export.lowrank.low_rank` at ``rank`` over
            ``layers``).
        rank, layers: the low-rank settings.
        recover_inputs, recover_steps, reference, reference_inputs: low-rank only; when
            ``recover_steps > 0`` the factorised model is distilled from ``reference``
            (default: the uncompressed model) on ``recover_inputs``; the reference sees
            ``reference_inputs`` of the same rows if given (see
            :func:`~distill.export.lowrank.recover`); ``recover_options``: its further
            keywords (``loss``, ``temperature``, ``lr``, ...).

    Returns:
        A module in eval mode (a :class:`CompressedModel` for the compressed formats).

    Raises:
        ValueError: unknown format (``"onnx"`` is a file, see :func:`export_model`), bad rank,
            recovery without inputs.

    Example:
        >>> from distill.models import MLP
        >>> type(compress(MLP(4, (8,)), "int8")).__name__
        'CompressedModel'
    """
    check_choice("format", format, tuple(f for f in FORMATS if f != "onnx"))
    serving = copy.deepcopy(serving_module(model)).float().eval()
    if format == "safetensors":
        return serving
    if format in ("fp16", "bf16"):
        if any(isinstance(m, (Int8Linear, Int8Embedding)) for m in serving.modules()):
            raise ValueError(f"`model` already has int8 layers; {format} applies to float models")
        return wrap_compressed(
            serving, serving, dtype="float16" if format == "fp16" else "bfloat16"
        )
    if format == "int8":
        return wrap_compressed(
            serving, quantize_int8(serving), int8_layers=int8_layer_names(serving)
        )
    factorised, ranks = low_rank(serving, rank, layers=layers)
    if recover_steps:
        if recover_inputs is None:
            raise ValueError("`recover_inputs` must be given when `recover_steps` > 0")
        teacher = serving if reference is None else reference
        recover(
            factorised,
            teacher,
            recover_inputs,
            reference_inputs=reference_inputs,
            steps=recover_steps,
            **(recover_options or {}),
        )
    return wrap_compressed(serving, factorised, ranks=ranks)


def wrap_compressed(serving: nn.Module, compressed: nn.Module, **structure: Any) -> CompressedModel:
    """A :class:`CompressedModel` of ``serving``'s spec with ``structure`` (dtype, ranks,
    int8_layers, shared) holding the weights of ``compressed``, cast to the dtype."""
    wrapper = CompressedModel(copy.deepcopy(serving), **structure)
    dtype = _DTYPES[wrapper.dtype_name]
    state = {key: _cast(value, dtype) for key, value in compressed.state_dict().items()}
    wrapper.model.load_state_dict(state)
    return wrapper.eval()


def _cast(value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return value.to(dtype) if value.is_floating_point() else value


@dataclass(frozen=True)
class ExportResult:
    """One written export: its format, directory, loaded model and the size of its weights.

    ``model`` is the module (or :class:`~distill.export.onnx_export.OnnxModel`) as loaded
    back from ``path``; ``weights_bytes`` is the size of the weights file on disk
    (``model.safetensors`` or ``model.onnx``); ``details`` is what ``export.json`` holds.
    """

    format: str
    path: Path
    model: Any
    weights_bytes: int
    details: dict[str, Any] = field(default_factory=dict)


def export_model(
    model: nn.Module,
    out_dir: str | os.PathLike,
    *,
    format: Format,
    example_input: Inputs | None = None,
    onnx_atol: float = 1e-4,
    force: bool = False,
    **compress_options: Any,
) -> ExportResult:
    """Write one export of ``model`` to ``out_dir`` and load it back.

    Args:
        model: the trained model (its serving part is exported, :func:`serving_module`).
        out_dir: the directory to create; written atomically (a temp directory next to it,
            then ``os.replace``).
        format: one of :data:`FORMATS`.
        example_input: needed for ``"onnx"``: a tensor or tuple of tensors, batch ≥ 2.
        onnx_atol: the largest max-abs difference accepted between ONNX and torch outputs.
        force: replace an existing ``out_dir``; without it an existing one is an error.
        **compress_options: passed to :func:`compress` (``rank``, ``layers``,
            ``recover_inputs``, ``recover_steps``, ``reference``, ``reference_inputs``,
            ``recover_options``).

    Returns:
        An :class:`ExportResult`.

    Raises:
        FileExistsError: ``out_dir`` exists and ``force`` is False.
        ValueError: unknown format, missing example input, bad rank, ONNX check failed.

    Reference: docs/index.md#shipping.

    Example:
        >>> from distill.models import MLP
        >>> export_model(MLP(4, (8,)), "out/int8", format="int8").weights_bytes  # doctest: +SKIP
        452
    """
    check_choice("format", format, FORMATS)
    if format == "onnx" and example_input is None:
        raise ValueError("`example_input` must be given for the 'onnx' format")
    with atomic_directory(out_dir, force=force) as temp:
        details = _write_format(model, temp, format, example_input, onnx_atol, compress_options)
        write_atomic(temp / EXPORT_FILE, json.dumps(details, indent=2) + "\n")
    return read_export(out_dir, trust=True)  # the model's own spec, just written


def _write_format(model, temp: Path, format: str, example_input, atol, options) -> dict:
    details: dict[str, Any] = {"format": format}
    if format == "onnx":
        serving = compress(model, "safetensors")
        check = export_onnx(serving, temp / ONNX_FILE, example_input, atol=atol)
        details.update(exporter=check.exporter, max_abs_diff=check.max_abs_diff, atol=atol)
        details["weights_file"] = ONNX_FILE
        return details
    compressed = compress(model, format, **options)
    models.save(compressed, temp)
    details["weights_file"] = models.registry.WEIGHTS_FILE
    if isinstance(compressed, CompressedModel):
        details.update(dtype=compressed.dtype_name, ranks=compressed.ranks)
        details["int8_layers"] = compressed.int8_layers
    return details


def read_export(path: str | os.PathLike, *, trust: bool = False) -> ExportResult:
    """Load an export directory written by :func:`export_model` (or any model directory).

    ``trust`` allows an import-path model name in its ``model.json`` (see
    :func:`distill.models.load`).

    Returns:
        An :class:`ExportResult`; ``model`` is the module from ``distill.models.load`` or an
        :class:`~distill.export.onnx_export.OnnxModel`.

    Raises:
        FileNotFoundError: no such directory, or neither ``model.onnx`` nor a model directory.

    Example:
        >>> read_export("out/fp16").model  # doctest: +SKIP
    """
    path = Path(path)
    details = json.loads((path / EXPORT_FILE).read_text()) if (path / EXPORT_FILE).is_file() else {}
    if (path / ONNX_FILE).is_file():
        model: Any = OnnxModel(path / ONNX_FILE)
        weights = path / ONNX_FILE
    else:
        model = models.load(path, trust=trust)
        weights = path / models.registry.WEIGHTS_FILE
    fmt = details.get("format", "safetensors")
    return ExportResult(fmt, path, model, weights.stat().st_size, details)
