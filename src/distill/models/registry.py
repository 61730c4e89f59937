"""Build models from specs, save/load them as safetensors + ``model.json``, and measure them."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from distill._io import write_atomic
from distill.models._spec import module_spec
from distill.models.compose import JointModel, StackedModel
from distill.models.ctr import (
    DeepCTRTower,
    FieldEmbedding,
    WideAndDeep,
    WideAndDeepTower,
)
from distill.models.ctr_joint import GatedExpertTower
from distill.models.language import NextTokenLM
from distill.models.mlp import MLP, DeepTower
from distill.models.transformer import TransformerClassifier

BUILTIN_MODELS: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (
        MLP,
        DeepTower,
        FieldEmbedding,
        WideAndDeepTower,
        DeepCTRTower,
        GatedExpertTower,
        WideAndDeep,
        StackedModel,
        JointModel,
        TransformerClassifier,
        NextTokenLM,
    )
}
SPEC_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "distill-model/1"
_LAYOUT = f"a model directory holds {SPEC_FILE} and {WEIGHTS_FILE}"


def build(spec: dict[str, Any], *, trust: bool = False) -> nn.Module:
    """Build a model from its spec ``{"name": ..., "kwargs": {...}}``.

    ``name`` is a built-in model (:data:`BUILTIN_MODELS`) or an import path
    ``"pkg.module:Class"`` of an ``nn.Module`` subclass; it is called as ``Class(**kwargs)``.
    Importing a module runs its code, so an import path is refused unless ``trust=True``
    (CLI: ``--trust``); built-in names and classes of ``distill`` itself (``"distill.…:Class"``,
    e.g. compressed exports) never need it. A kwarg that is itself a spec (a dict
    with exactly the keys ``name`` and ``kwargs``) is built first, so composite models
    (:class:`JointModel`) nest.

    Args:
        spec: the spec dict, e.g. ``model.spec()`` or the ``"spec"`` of a ``model.json``.
        trust: allow import paths (you trust the spec's source to name modules to import).

    Returns:
        A new module with freshly initialised weights (training mode).

    Raises:
        TypeError: spec is not a dict of the right form, or the class is not an ``nn.Module``.
        ValueError: unknown name, an import path without ``trust``, unimportable path, or the
            constructor rejects the kwargs.

    Example:
        >>> build({"name": "MLP", "kwargs": {"in_features": 4, "hidden": [8]}}).num_features
        8
    """
    name, kwargs = _check_spec(spec)
    cls = _resolve(name, trust)
    kwargs = {
        key: build(value, trust=trust) if _is_spec(value) else value
        for key, value in kwargs.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"cannot build {name!r} from kwargs {sorted(kwargs)}: {err}") from err


def save(model: nn.Module, directory: str | os.PathLike, *, spec: dict | None = None) -> Path:
    """Save a model as ``directory/model.safetensors`` + ``directory/model.json``.

    Each file is written atomically (temp file in the same directory, then ``os.replace``);
    ``model.json`` is written last. No pickle is involved.

    Args:
        model: the module; its ``spec()`` is stored unless ``spec`` is given.
        directory: created if missing.
        spec: the spec to store for a module without ``spec()`` (e.g. an import path spec).

    Returns:
        The directory as a ``Path``.

    Raises:
        TypeError: the model has no spec, or the spec is not JSON-serialisable.

    Example:
        >>> path = save(MLP(4), tmp_dir)  # doctest: +SKIP
    """
    spec = module_spec("model", model) if spec is None else spec
    _check_spec(spec)
    try:
        text = json.dumps({"format": FORMAT, "spec": spec, "weights": WEIGHTS_FILE}, indent=2)
    except TypeError as err:
        raise TypeError(f"`spec` must be JSON-serialisable: {err}") from err
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    write_atomic(directory / WEIGHTS_FILE, safetensors.torch.save(tensors))
    write_atomic(directory / SPEC_FILE, (text + "\n").encode())
    return directory


def load(directory: str | os.PathLike, *, trust: bool = False) -> nn.Module:
    """Load a model saved by :func:`save`: rebuild it from the spec, then load the weights.

    The model takes the floating dtype of the stored weights (e.g. fp16 exports stay fp16) and
    is returned in eval mode on the CPU. No pickle is read, and nothing is imported: a spec
    naming ``"pkg.module:Class"`` is refused unless ``trust=True`` (see :func:`build`).

    Args:
        directory: a directory holding ``model.json`` and ``model.safetensors``.
        trust: allow an import path in ``model.json`` (importing runs that module's code).

    Returns:
        The model, in eval mode.

    Raises:
        FileNotFoundError: the directory or one of its two files is missing.
        ValueError: invalid JSON (file and line given), a bad spec, an import path without
            ``trust``, an unreadable weights file, or weights that do not match the spec (the
            first offending key is named).

    Example:
        >>> model = load("runs/demo/teacher")  # doctest: +SKIP
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"model directory {directory} does not exist")
    spec = _read_spec(directory / SPEC_FILE)
    tensors = _read_weights(directory / WEIGHTS_FILE)
    try:
        model = build(spec, trust=trust)
    except UntrustedImportError as err:
        raise UntrustedImportError(f"{directory / SPEC_FILE}: {err}") from None
    _check_weights(model, tensors, directory / WEIGHTS_FILE, spec["name"])
    dtypes = {t.dtype for t in tensors.values() if t.is_floating_point()}
    if len(dtypes) == 1:
        model.to(dtypes.pop())
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters ``Σ numel(p)`` (each shared parameter counted once).

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad``.

    Returns:
        The count (buffers such as batch-norm statistics are not parameters).

    Example:
        >>> count_parameters(MLP(4, hidden=(8,)))  # 4·8 + 8 + 8·1 + 1
        49
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def size_bytes(model: nn.Module) -> int:
    """In-memory size ``Σ numel · element_size`` over parameters and buffers (shared ones once).

    Args:
        model: any module; its size depends on its dtypes (fp16 halves it).

    Returns:
        Bytes of the tensors (the safetensors file adds a small JSON header).

    Example:
        >>> size_bytes(MLP(4, hidden=(8,)))  # 49 float32 parameters
        196
    """
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class UntrustedImportError(ValueError):
    """A model spec names an import path and ``trust`` was not given."""


def _is_spec(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"name", "kwargs"}


def _check_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, dict) or not {"name", "kwargs"} <= set(spec):
        raise TypeError(f"`spec` must be a dict with keys 'name' and 'kwargs', got {spec!r}")
    name, kwargs = spec["name"], spec["kwargs"]
    if not isinstance(name, str) or not isinstance(kwargs, dict):
        raise TypeError(
            f"`spec` must have a str 'name' and a dict 'kwargs', got "
            f"{type(name).__name__} and {type(kwargs).__name__}"
        )
    return name, kwargs


def _resolve(name: str, trust: bool) -> type[nn.Module]:
    if ":" not in name:
        if name not in BUILTIN_MODELS:
            known = ", ".join(sorted(BUILTIN_MODELS))
            raise ValueError(
                f"unknown model {name!r}: use one of {known} or an import path 'pkg.module:Class'"
            )
        return BUILTIN_MODELS[name]
    module_name, _, attribute = name.partition(":")
    own = module_name == "distill" or module_name.startswith("distill.")
    if not (trust or own):
        raise UntrustedImportError(
            f"model {name!r} is an import path, and importing a module runs its code: pass "
            "trust=True (CLI: --trust) only if you trust where this spec comes from"
        )
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import model {name!r}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"model {name!r} must be an nn.Module subclass, got {cls!r}")
    return cls


def _read_spec(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a model directory holds {SPEC_FILE} and {WEIGHTS_FILE}"
        )
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from err
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f'{path}: not a distill model file (expected "format": {FORMAT!r})')
    try:
        _check_spec(document.get("spec"))
    except TypeError as err:
        raise ValueError(f"{path}: {err}") from err
    return document["spec"]


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a model directory holds {SPEC_FILE} and {WEIGHTS_FILE}"
        )
    try:
        return safetensors.torch.load_file(path)
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path}: unreadable safetensors file: {err}") from err


def _check_weights(model: nn.Module, tensors: dict, path: Path, name: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ValueError(f"{path}: weights do not match spec {name!r}: missing key {missing[0]!r}")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise ValueError(
            f"{path}: weights do not match spec {name!r}: unexpected key {unexpected[0]!r}"
        )
    for key, value in expected.items():
        if value.shape != tensors[key].shape:
            raise ValueError(
                f"{path}: weights do not match spec {name!r}: key {key!r} has shape "
                f"{tuple(tensors[key].shape)}, the spec needs {tuple(value.shape)}"
            )
