"""The CLI reference (docs/cli.md), generated from the typer app so it cannot drift.

``python -m distill.cli.reference docs/cli.md`` rewrites the file; a test fails when the file
differs from :func:`cli_reference`.
"""

from __future__ import annotations

import inspect
import sys
from enum import Enum
from typing import Any

import typer

from distill._io import write_atomic

_HEADER = """# CLI reference

Generated from the `distill` command (`distill.cli`) by
`python -m distill.cli.reference docs/cli.md`; do not edit by hand. The command needs the
`cli` extra (`pip install 'distill[cli]'`). Exit codes: 0 ok, 1 the run failed, 2 bad usage or
config. `distill --debug COMMAND ...` shows the traceback of a failure; `distill --version`
prints the version.
"""


def cli_reference() -> str:
    """The Markdown reference of every ``distill`` command: its help, arguments and options.

    Example:
        >>> cli_reference().splitlines()[0]
        '# CLI reference'
    """
    from distill.cli import app

    group = typer.main.get_command(app)
    parts = [_HEADER]
    parts += [_command(name, command) for name, command in group.commands.items()]
    return "\n".join(parts).rstrip() + "\n"


def _command(name: str, command: Any) -> str:
    options = any(not _is_argument(p) and p.name != "help" for p in command.params)
    pieces = [_usage(p) for p in command.params]
    usage = " ".join(["distill", name, *(["[OPTIONS]"] if options else []), *filter(None, pieces)])
    help_text = inspect.cleandoc(command.help or "").replace("<", "&lt;")
    lines = [f"## `distill {name}`", "", help_text, ""]
    lines += ["```", usage, "```", ""]
    rows = [_row(param) for param in command.params if param.name != "help"]
    if rows:
        lines += ["| argument / option | meaning | default |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


def _is_argument(param: Any) -> bool:
    return param.param_type_name == "argument"


def _usage(param: Any) -> str:
    if _is_argument(param):
        text = param.name.upper() + ("..." if param.nargs == -1 else "")
        return text if param.required else f"[{text}]"
    if param.name == "help":
        return ""
    return ""


def _row(param: Any) -> str:
    if _is_argument(param):
        name = param.name.upper()
    else:
        name = ", ".join(param.opts + param.secondary_opts)
    help_text = " ".join((getattr(param, "help", None) or "").split())
    help_text = help_text.replace("|", "\\|").replace("<", "&lt;")
    if isinstance(param.default, Enum):
        help_text += " One of: " + ", ".join(f"`{m.value}`" for m in type(param.default)) + "."
    default = param.default
    if param.required:
        shown = "required"
    elif default is None or default == () or (default is False and param.is_flag):
        shown = "–"
    else:
        shown = f"`{getattr(default, 'value', default)}`"
    return f"| `{name}` | {help_text} | {shown} |"


if __name__ == "__main__":  # pragma: no cover - the docs build step
    target = sys.argv[1] if len(sys.argv) > 1 else "docs/cli.md"
    print(write_atomic(target, cli_reference()))
