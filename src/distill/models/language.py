"""A small next-token language model whose input embedding and output layer share the vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from distill._validation import check_positive_int
from distill.models._spec import make_spec


class NextTokenLM(nn.Module):
    """A window language model: embed the previous F tokens, an MLP, logits over V tokens.

    ``x = [E[t₁]; …; E[t_F]]`` (``F·d``) → ``Linear → tanh`` blocks → ``h = project(·)`` (``d``)
    → ``logits = W h + b`` (``V``). The input embedding ``E`` (``embedding``, ``V × d``) and
    the output layer ``W`` (``head``, ``V × d``) have the same shape, as in the on-device
    keyboard model of Yu et al. 2018, so they can be factorised with one shared ``V × r``
    basis (:func:`distill.export.share_embeddings`, docs/compression.md).

    Args:
        num_embeddings: vocabulary size V (config runs fill it from the data).
        num_fields: context length F, the number of previous tokens (filled from the data).
        out_features: classes; must equal ``num_embeddings`` (filled from the data).
        embedding_dim: d, the width of ``E``, of ``h`` and of ``W``'s rows.
        hidden: widths of the tanh layers between the window and ``project``.

    Shapes: int64 token ids ``(B, F)`` → logits ``(B, V)``.

    Raises:
        TypeError / ValueError: non-positive sizes; ``out_features != num_embeddings``.

    Reference: Bengio et al. 2003 (a neural probabilistic language model over a window);
    Yu et al. 2018, "On-Device Neural Language Model Based Word Prediction" (COLING demos).

    Example:
        >>> model = NextTokenLM(100, 3, 100, embedding_dim=8, hidden=(16,))
        >>> model(torch.randint(0, 100, (2, 3))).shape
        torch.Size([2, 100])
    """

    def __init__(
        self,
        num_embeddings: int,
        num_fields: int,
        out_features: int,
        *,
        embedding_dim: int = 32,
        hidden: Sequence[int] = (64,),
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_embeddings", num_embeddings),
            ("num_fields", num_fields),
            ("out_features", out_features),
            ("embedding_dim", embedding_dim),
            *(("hidden", width) for width in hidden),
        ):
            check_positive_int(name, value)
        if out_features != num_embeddings:
            raise ValueError(
                f"`out_features` must equal `num_embeddings` ({num_embeddings}): the model "
                f"predicts the next token of its own vocabulary, got {out_features}"
            )
        self._kwargs: dict[str, Any] = dict(
            num_embeddings=num_embeddings,
            num_fields=num_fields,
            out_features=out_features,
            embedding_dim=embedding_dim,
            hidden=tuple(hidden),
        )
        self.num_fields, self.num_features = num_fields, embedding_dim
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        widths = (num_fields * embedding_dim, *hidden)
        self.body = nn.Sequential(
            *(layer for a, b in pairwise(widths) for layer in (nn.Linear(a, b), nn.Tanh()))
        )
        self.project = nn.Linear(widths[-1], embedding_dim)
        self.head = nn.Linear(embedding_dim, out_features)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dtype != torch.int64 or tokens.dim() != 2:
            raise TypeError(
                f"`tokens` must be int64 token ids (B, F), got {tokens.dtype} {tuple(tokens.shape)}"
            )
        window = self.embedding(tokens).flatten(1)
        return self.head(self.project(self.body(window)))

    def spec(self) -> dict[str, Any]:
        """How to rebuild this model (see :func:`distill.models.build`)."""
        return make_spec("NextTokenLM", **self._kwargs)
