"""Reading, overriding, validating and writing run configs (see ``distill.config``)."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from distill._io import write_atomic
from distill.config.schema import RunConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A config that cannot be run; ``lines`` holds one ``path: problem`` line per error."""

    def __init__(self, lines: list[str], source: str | None = None):
        self.lines = lines
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(lines))


def parse_config(raw: dict[str, Any], *, source: str | None = None) -> RunConfig:
    """Validate a raw mapping (e.g. parsed TOML) into a :class:`RunConfig`.

    Args:
        raw: nested dicts/lists as ``tomllib`` returns them.
        source: where ``raw`` came from, prefixed to the error lines (e.g. the file name).

    Returns:
        The validated config, with defaults filled in.

    Raises:
        ConfigError: one ``dotted.path: problem`` line per problem, e.g.
            ``variants.1.objective.pairwise.penalty.tau: must be in [0, 1], got 1.5``.

    Example:
        >>> parse_config({"run": {"name": "x", "track": "vision"}})  # doctest: +SKIP
        ConfigError: run.track: input should be 'classification', 'ranking' or 'ctr', ...
    """
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError([_error_line(e) for e in error.errors()], source) from None


def load_config(path: str | Path, *, overrides: list[str] = ()) -> RunConfig:
    """Read a TOML config, apply ``key.path=value`` overrides, validate it.

    Args:
        path: the TOML file.
        overrides: ``--set`` strings, applied in order (see :func:`apply_overrides`).

    Returns:
        The validated :class:`RunConfig`.

    Raises:
        ConfigError: unreadable file, text that is not UTF-8 (with its line), TOML syntax
            error (with its line and column), bad override or invalid content; the file name
            is the error's ``source``.

    Example:
        >>> cfg = load_config("examples/ranking.toml", overrides=["train.max_steps=10"])
        >>> cfg.train.max_steps
        10
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"cannot read config: {error.strerror}"], str(path)) from None
    except UnicodeDecodeError as error:
        line = _line_of_byte(path, error.start)
        raise ConfigError(
            [
                f"line {line}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                f"{error.start}); TOML files are UTF-8"
            ],
            str(path),
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"invalid TOML: {error}"], str(path)) from None
    return parse_config(apply_overrides(raw, overrides), source=str(path))


def _line_of_byte(path: Path, offset: int) -> int:
    """The 1-based line of byte ``offset`` in the file at ``path``."""
    return path.read_bytes()[:offset].count(b"\n") + 1


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a raw config mapping, in place.

    The value is parsed as a TOML value (``2``, ``0.5``, ``true``, ``[1, 2]``,
    ``{name = "huber", beta = 1.0}``); text that is not TOML is kept as a string. Missing
    tables are created; list items are addressed by index (``variants.0.name=base``).

    Args:
        raw: the mapping to change.
        overrides: ``KEY.PATH=VALUE`` strings.

    Returns:
        ``raw``.

    Raises:
        ConfigError: no ``=``, an index past the end of a list, or a path through a value.

    Example:
        >>> apply_overrides({"train": {}}, ["train.epochs=3"])
        {'train': {'epochs': 3}}
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([f"--set {item!r}: expected KEY.PATH=VALUE"])
        _set_path(raw, key.strip().split("."), _parse_value(text.strip()), item)
    return raw


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_path(raw: Any, keys: list[str], value: Any, item: str) -> None:
    node = raw
    for position, key in enumerate(keys):
        last = position == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError([f"--set {item!r}: no list item {key!r} (has {len(node)})"])
            key = int(key)
        elif not isinstance(node, dict):
            raise ConfigError([f"--set {item!r}: {'.'.join(keys[:position])} is not a table"])
        if last:
            node[key] = value
        else:
            if isinstance(node, dict) and key not in node:
                node[key] = {}
            node = node[key]


def _error_line(error: dict[str, Any]) -> str:
    """One pydantic error as ``dotted.path: message``."""
    loc = [part for part in error["loc"] if not _is_union_tag(part)]
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith("`") and "` " in message:
        name, message = message[1:].split("` ", 1)
        loc += [] if loc and loc[-1] == name else [name]
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown key{_suggestion(error)}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind != "value_error":
        message = f"{message[0].lower()}{message[1:]}, got {error.get('input')!r}"
    return f"{_dotted(loc) or '<config>'}: {message}"


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "list"})


def _suggestion(error: dict[str, Any]) -> str:
    parent = _known_fields(error["loc"][:-1])
    close = difflib.get_close_matches(str(error["loc"][-1]), parent, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known_fields(loc: tuple) -> list[str]:
    model: Any = RunConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _dotted(loc: list) -> str:
    """``variants.1.objective.kd`` — the path ``--set`` accepts for the same key."""
    return ".".join(str(part) for part in loc)


def config_to_toml(cfg: RunConfig) -> str:
    """The resolved config as TOML text; ``load_config`` of it gives ``cfg`` back.

    ``None`` values are left out (TOML has no null; they are the defaults).

    Example:
        >>> parse_config(tomllib.loads(config_to_toml(cfg))) == cfg  # doctest: +SKIP
        True
    """
    return tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True))


def write_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write :func:`config_to_toml` of ``cfg`` to ``path`` atomically (temp file + rename).

    Returns:
        ``path``; its parent folders are created.
    """
    return write_atomic(path, config_to_toml(cfg))
