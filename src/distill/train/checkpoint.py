"""Atomic checkpoints with RNG states, loaded safely (``torch.load(weights_only=True)``)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill._io import atomic_path


def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), NumPy and Python RNG states as plain, safely loadable data.

    Example:
        >>> state = rng_state(); first = torch.rand(1)
        >>> set_rng_state(state); bool(torch.rand(1) == first)
        True
    """
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {
                "key": numpy_state["key"].numpy().astype(np.uint32),
                "pos": numpy_state["pos"],
            },
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` with ``torch.save`` atomically: temp file in the same folder, fsync, rename.

    A process killed mid-write leaves the previous checkpoint intact.

    Args:
        path: target file, e.g. ``runs/x/checkpoints/student/last.pt``; folders are created.
        state: plain tensors, numbers, strings, lists and dicts (loadable with
            ``weights_only=True``).

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> p = save_checkpoint(pathlib.Path(tempfile.mkdtemp()) / "last.pt", {"step": 3})
        >>> load_checkpoint(p)["step"]
        3
    """
    path = Path(path)
    with atomic_path(path) as temp:
        torch.save(state, temp)
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: str | None = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`; never runs pickled code.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: when the file is not a safe (weights-only) checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(f"checkpoint {path} is not a weights-only torch file: {error}") from error


def _python_state_to_plain(state: tuple) -> tuple:
    version, internal, gauss = state
    return (version, list(internal), gauss)
