"""The config reference (docs/config.md), generated from the pydantic schema so it cannot drift.

``python -m distill.config.reference docs/config.md`` rewrites the file; a test fails when the
file differs from :func:`config_reference`.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from distill._io import write_atomic
from distill.config.schema import RunConfig

_HEADER = """# Config reference

Generated from the schema (`distill.config.schema`) by
`python -m distill.config.reference docs/config.md`; do not edit by hand. A run config is a
TOML file (`distill run CONFIG`; examples in `examples/*.toml`). Every key is checked before
anything trains: an unknown key, a wrong type or a value outside its range is an error naming
its dotted path, the same path `--set` accepts (`--set variants.1.objective.kd.temperature=2`).
Intervals use `[` `]` for closed and `(` `)` for open ends.
"""


def config_reference() -> str:
    """The Markdown reference of every config table and key.

    Returns:
        The text of ``docs/config.md``: one section per table (``[run]``, ``[data]``,
        ``[[variants]]``, ``[variants.objective.kd]``, ...) with each key's type, allowed
        values and default, and the table's own description.

    Example:
        >>> config_reference().splitlines()[0]
        '# Config reference'
    """
    parts = [_HEADER]
    seen: dict[type, str] = {}
    _section(RunConfig, "", parts, seen)
    return "\n".join(parts).rstrip() + "\n"


def _section(model: type[BaseModel], path: str, parts: list[str], seen: dict[type, str]) -> None:
    if path:
        parts.append(f"## `{path}`\n")
    if model in seen:
        parts.append(f"The same keys as `{seen[model]}`.\n")
        return
    seen[model] = path or "(top level)"
    doc = inspect.cleandoc(model.__doc__ or "")
    parts.append(doc + "\n")
    rows = ["| key | type | default |", "|---|---|---|"]
    children = []
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        rows.append(f"| `{name}` | {_type(field.annotation, field.metadata)} | {_default(field)} |")
        if nested is not None:
            children.append((name, nested))
    parts.append("\n".join(rows) + "\n")
    for name, nested in children:
        _section(nested, _child_path(path, name, model), parts, seen)


def _child_path(path: str, name: str, model: type[BaseModel]) -> str:
    annotation = model.model_fields[name].annotation
    inner = f"{path.strip('[]')}.{name}" if path else name
    return f"[[{inner}]]" if get_origin(annotation) is list else f"[{inner}]"


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _type(annotation: Any, metadata: list[Any] = ()) -> str:
    text = _base_type(annotation)
    limits = [_limit(item) for item in metadata]
    return " ".join([text, *(limit for limit in limits if limit)])


def _limit(item: Any) -> str:
    if hasattr(item, "metadata") and not hasattr(item, "ge"):  # a pydantic Field(...)
        return " ".join(filter(None, (_limit(inner) for inner in item.metadata)))
    interval = getattr(getattr(item, "func", None), "interval", None)
    if interval:
        return f"in {interval}"
    for attribute, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
        if getattr(item, attribute, None) is not None:
            return f"{sign} {getattr(item, attribute)}"
    if getattr(item, "min_length", None):
        return f"at least {item.min_length} item(s)"
    if getattr(item, "pattern", None):
        return f"matching `{item.pattern}`"
    return ""


def _base_type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        text = " or ".join(_base_type(a) for a in args if a is not type(None))
        return text + " (optional)" if type(None) in args else text
    if origin is list:
        return f"list of {_base_type(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if origin is not None and hasattr(annotation, "__metadata__"):  # Annotated[...]
        return _type(args[0], list(annotation.__metadata__))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    if annotation is Any:
        return "penalty name or table (docs/formulas.md#penalties)"
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "none")


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined or value is None:
        return "–"
    if isinstance(value, BaseModel):
        return "(table)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


if __name__ == "__main__":  # pragma: no cover - the docs build step
    target = sys.argv[1] if len(sys.argv) > 1 else "docs/config.md"
    print(write_atomic(target, config_reference()))
