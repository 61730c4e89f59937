"""Fully connected scorers and classifiers: :class:`MLP` and the larger :class:`DeepTower`."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any, Literal

import torch
from torch import nn

from distill._validation import check_choice, check_float_tensor, check_number, check_positive_int
from distill.models._spec import make_spec

Norm = Literal["batch", "layer"]
Activation = Literal["relu", "gelu", "silu", "tanh"]
_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
_NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


class MLP(nn.Module):
    """Multi-layer perceptron: hidden blocks ``Linear → norm → activation → dropout``, then a head.

    ``h = body(x)``, ``y = head(h) = W·h + b``; with ``out_features == 1`` the output is squeezed
    to a score vector ``(N,)``, otherwise it is ``(N, out_features)`` logits.

    Args:
        in_features: input width D.
        hidden: widths of the hidden layers (may be empty: a linear model).
        out_features: 1 for a scorer / binary logit, C for C-class logits.
        dropout: dropout probability after each hidden activation, in [0, 1).
        norm: ``None``, ``"batch"`` or ``"layer"`` normalisation after each hidden Linear.
        activation: ``"relu"``, ``"gelu"``, ``"silu"`` or ``"tanh"``.

    Attributes:
        head: the final ``nn.Linear`` (quantile heads and export use it).
        num_features: width of the last hidden layer h (``in_features`` when ``hidden`` is empty).

    Raises:
        TypeError, ValueError: bad widths or options, e.g. ``"`dropout` must be in [0, 1)"``.

    Reference: the students and teachers of Hinton et al. 2015, "Distilling the Knowledge in a
    Neural Network" (Sec. 3, MNIST MLPs).

    Example:
        >>> model = MLP(20, hidden=(64, 32), out_features=10)
        >>> model(torch.randn(4, 20)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (64,),
        out_features: int = 1,
        *,
        dropout: float = 0.0,
        norm: Norm | None = None,
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.hidden = _check_widths(hidden)
        self.out_features = check_positive_int("out_features", out_features)
        self.dropout = check_number("dropout", dropout, low=0.0, high=1.0, high_open=True)
        if norm is not None:
            check_choice("norm", norm, tuple(_NORMS))
        self.norm = norm
        self.activation = check_choice("activation", activation, tuple(_ACTIVATIONS))
        widths = (self.in_features, *self.hidden)
        self.body = nn.Sequential(*(self._block(a, b) for a, b in pairwise(widths)))
        self.num_features = widths[-1]
        self.head = nn.Linear(self.num_features, self.out_features)

    def _block(self, width_in: int, width_out: int) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Linear(width_in, width_out)]
        if self.norm is not None:
            layers.append(_NORMS[self.norm](width_out))
        layers.append(_ACTIVATIONS[self.activation]())
        if self.dropout > 0:
            layers.append(nn.Dropout(self.dropout))
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer h, shape ``(N, num_features)``."""
        check_float_tensor("x", x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"`x` must have shape (N, {self.in_features}), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N,)`` when ``out_features == 1``, else logits ``(N, out_features)``."""
        out = self.head(self.forward_features(x))
        return out.squeeze(-1) if self.out_features == 1 else out

    def _spec_kwargs(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "hidden": self.hidden,
            "out_features": self.out_features,
            "dropout": self.dropout,
            "norm": self.norm,
            "activation": self.activation,
        }

    def spec(self) -> dict[str, Any]:
        """``{"name": "MLP", "kwargs": {...}}``; :func:`distill.models.build` rebuilds it."""
        return make_spec("MLP", **self._spec_kwargs())


class DeepTower(MLP):
    """A larger MLP for teachers: by default 3 wide hidden layers with LayerNorm and dropout.

    Same formula, arguments, attributes and errors as :class:`MLP`, with teacher-sized defaults
    ``hidden=(256, 256, 128)``, ``dropout=0.1``, ``norm="layer"``.

    Reference: the large teacher networks of Hinton et al. 2015 (Sec. 3) and the "deep" teacher
    tower of the joint CTR model (Zhou et al. 2018, "Rocket Launching").

    Example:
        >>> teacher = DeepTower(20, out_features=10)
        >>> teacher(torch.randn(4, 20)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (256, 256, 128),
        out_features: int = 1,
        *,
        dropout: float = 0.1,
        norm: Norm | None = "layer",
        activation: Activation = "relu",
    ) -> None:
        super().__init__(
            in_features,
            hidden,
            out_features,
            dropout=dropout,
            norm=norm,
            activation=activation,
        )

    def spec(self) -> dict[str, Any]:
        """``{"name": "DeepTower", "kwargs": {...}}``."""
        return make_spec("DeepTower", **self._spec_kwargs())


def _check_widths(hidden: Sequence[int]) -> tuple[int, ...]:
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise TypeError(f"`hidden` must be a sequence of integers, got {type(hidden).__name__}")
    return tuple(check_positive_int("hidden", width) for width in hidden)
