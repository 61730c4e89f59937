"""The model spec: a JSON-able ``{"name": ..., "kwargs": ...}`` dict describing how to rebuild."""

from __future__ import annotations

from typing import Any

from torch import nn


def make_spec(name: str, **kwargs: Any) -> dict[str, Any]:
    """A spec dict; tuples become lists so the spec survives a JSON round trip unchanged."""
    return {"name": name, "kwargs": {key: _jsonable(value) for key, value in kwargs.items()}}


def module_spec(name: str, module: nn.Module) -> dict[str, Any]:
    """The spec of a sub-module, or a TypeError naming the argument that has none."""
    spec = getattr(module, "spec", None)
    if not callable(spec):
        raise TypeError(
            f"`{name}` ({type(module).__name__}) has no spec(); use a distill model or give "
            "the class a spec() returning {'name': 'pkg.module:Class', 'kwargs': {...}}"
        )
    return spec()


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
