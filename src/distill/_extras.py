"""Optional dependencies: import them on first use, or say which ``pip install`` line adds them.

The core of ``distill`` needs torch, numpy and safetensors only. Features that need more live
behind extras; their modules are imported on first use (:func:`lazy_exports`) or call
:func:`require` / :func:`require_extra` where they first need the library, so ``import
distill`` loads none of them. See docs/index.md, "Install".
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

# Each extra → the top-level modules it installs (``pip install 'distill[<extra>]'``).
EXTRAS: dict[str, tuple[str, ...]] = {
    "cli": ("typer", "rich", "pydantic", "tomli_w"),
    "data": ("pyarrow", "sklearn", "scipy"),
    "report": ("matplotlib", "scipy"),
    "export": ("onnx", "onnxruntime", "onnxscript"),
    "gbdt": ("lightgbm", "xgboost", "catboost"),
}

# Importable name → the distribution pip installs, where they differ.
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "tomli_w": "tomli-w"}


def _missing(modules: tuple[str, ...]) -> list[str]:
    return [m for m in modules if sys.modules.get(m) is None and not importlib.util.find_spec(m)]


def _install_error(missing: list[str], extras: tuple[str, ...]) -> ModuleNotFoundError:
    packages = ", ".join(f"`{_DISTRIBUTIONS.get(m, m)}`" for m in missing)
    return ModuleNotFoundError(
        f"this feature needs {packages}, not installed: pip install 'distill[{','.join(extras)}]'",
        name=missing[0],
    )


def require_extra(*extras: str) -> None:
    """Check that the libraries of ``extras`` are installed (without importing them).

    Raises:
        ModuleNotFoundError: naming the missing packages and ``pip install 'distill[...]'``.

    Example:
        >>> require_extra("data")  # doctest: +SKIP
    """
    missing = _missing(tuple(dict.fromkeys(m for extra in extras for m in EXTRAS[extra])))
    if missing:
        raise _install_error(missing, extras)


def require(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` (e.g. ``"pyarrow.parquet"``), or raise naming the extra that adds it.

    Args:
        module: the dotted module to import.
        extra: the ``distill`` extra that installs it (``"data"``, ``"cli"``, ...).

    Returns:
        The imported module.

    Raises:
        ModuleNotFoundError: its package is not installed; the message names the package and
            ``pip install 'distill[<extra>]'``.

    Example:
        >>> pq = require("pyarrow.parquet", extra="data")  # doctest: +SKIP
    """
    top = module.split(".")[0]
    if _missing((top,)):
        raise _install_error([top], (extra,))
    return importlib.import_module(module)


def lazy_exports(
    package: str, exports: dict[str, tuple[str, tuple[str, ...]]]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``{name: (module, extras)}`` on first use.

    The extras are checked first (:func:`require_extra`), so a missing one is an error naming
    its ``pip install`` line rather than a bare ``No module named ...``.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, extras = exports[name]
        require_extra(*extras)
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
