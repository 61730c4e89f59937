"""Model inputs as tuples of tensors with a common first (batch) axis."""

from __future__ import annotations

import torch

Inputs = torch.Tensor | tuple[torch.Tensor, ...]


def as_tuple(name: str, inputs: Inputs) -> tuple[torch.Tensor, ...]:
    """A model's positional inputs as a tuple (a single tensor becomes a 1-tuple).

    Raises:
        TypeError: not a tensor or a non-empty tuple of tensors.
        ValueError: tensors with different first-axis lengths.
    """
    rows = (inputs,) if isinstance(inputs, torch.Tensor) else inputs
    if not isinstance(rows, (tuple, list)) or not rows:
        raise TypeError(
            f"`{name}` must be a tensor or a non-empty tuple of tensors, got "
            f"{type(inputs).__name__}"
        )
    if not all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in rows):
        raise TypeError(f"`{name}` must hold tensors with a batch axis, got {rows!r:.80}")
    lengths = {len(t) for t in rows}
    if len(lengths) != 1:
        raise ValueError(
            f"`{name}` tensors must share the first axis length, got {sorted(lengths)}"
        )
    return tuple(rows)


def batch_of(rows: tuple[torch.Tensor, ...], size: int) -> tuple[torch.Tensor, ...]:
    """``size`` rows taken cyclically from ``rows`` (repeats rows when there are fewer)."""
    index = torch.arange(size) % len(rows[0])
    return tuple(t[index] for t in rows)
