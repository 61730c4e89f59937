"""A small TOML writer for plain data (``tomli_w`` is not a dependency).

Writes nested dicts and lists of str, int, float and bool; tables become ``[a.b]`` sections
and lists of tables ``[[a]]`` arrays. ``tomllib.loads(dumps_toml(d)) == d`` for such data.

Example:
    >>> dumps_toml({"run": {"name": "x", "seed": 0}})
    '[run]\nname = "x"\nseed = 0\n'
"""

from __future__ import annotations

import math
from typing import Any


def dumps_toml(data: dict[str, Any]) -> str:
    """Serialise nested dicts/lists of str, int, float and bool as TOML."""
    lines: list[str] = []
    _write_table(lines, (), data, header=None)
    return "\n".join(lines).strip() + "\n"


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and bool(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_table(v) for v in value)


def _write_table(lines: list[str], prefix: tuple, table: dict, header: str | None) -> None:
    if header:
        lines.extend(["", header])
    for key, value in table.items():
        if not _is_table(value) and not _is_table_array(value):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        path = (*prefix, key)
        name = ".".join(_key(part) for part in path)
        if _is_table(value):
            _write_table(lines, path, value, header=f"[{name}]")
        elif _is_table_array(value):
            for item in value:
                _write_table(lines, path, item, header=f"[[{name}]]")


def _key(key: str) -> str:
    bare = key and all(c.isalnum() or c in "_-" for c in key) and key.isascii()
    return key if bare else _string(key)


_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _string(text: str) -> str:
    escaped = "".join(
        _ESCAPES.get(c, c if ord(c) >= 0x20 and ord(c) != 0x7F else f"\\u{ord(c):04x}")
        for c in text
    )
    return f'"{escaped}"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")
