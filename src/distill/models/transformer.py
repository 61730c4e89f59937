"""A small transformer encoder classifier whose embeddings, hidden states and attention are
named submodules, so :mod:`distill.hooks` can capture them (TinyBERT-style distillation).

Layer names of a :class:`TransformerClassifier` with L blocks:

- ``"embedding"``: token embeddings + positions, ``(B, T, d)``;
- ``"blocks.{i}"``: the hidden state after block i, ``(B, T, d)``;
- ``"blocks.{i}.attention.scores"``: unnormalised scores ``Q·Kᵀ/√d_k``, ``(B, h, T, T)``;
- ``"blocks.{i}.attention.probs"``: their softmax, ``(B, h, T, T)``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from distill._validation import check_choice, check_float_tensor, check_number, check_positive_int
from distill.models._spec import make_spec


class SelfAttention(nn.Module):
    """Multi-head self-attention with its scores and probabilities exposed as submodules.

    ``scores = Q·Kᵀ/√d_k`` passes through the identity module ``scores`` and
    ``softmax(scores)`` through ``probs``: forward hooks on them see ``(B, h, T, T)``.

    Example:
        >>> SelfAttention(16, 4)(torch.zeros(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(
                f"`d_model` ({d_model}) must be divisible by `num_heads` ({num_heads})"
            )
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.scores = nn.Identity()
        self.probs = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        qkv = self.qkv(x).view(batch, tokens, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (B, h, T, d_k)
        scores = self.scores(query @ key.transpose(-2, -1) / math.sqrt(self.head_dim))
        probs = self.probs(scores.softmax(dim=-1))
        context = (probs @ value).transpose(1, 2).reshape(batch, tokens, width)
        return self.out(context)


class EncoderBlock(nn.Module):
    """Post-norm transformer block (as BERT): ``h = LN(x + Attn(x))``, ``y = LN(h + FF(h))``."""

    def __init__(self, d_model: int, num_heads: int, ff_width: int, dropout: float) -> None:
        super().__init__()
        self.attention = SelfAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_width), nn.GELU(), nn.Linear(ff_width, d_model)
        )
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.norm1(x + self.dropout(self.attention(x)))
        return self.norm2(hidden + self.dropout(self.ff(hidden)))


class TokenEmbedding(nn.Module):
    """``E = x·W + b + P``: a linear token embedding plus learned positions, ``(B, T, d)``."""

    def __init__(self, token_width: int, seq_len: int, d_model: int) -> None:
        super().__init__()
        self.seq_len, self.token_width = seq_len, token_width
        self.linear = nn.Linear(token_width, d_model)
        self.position = nn.Parameter(torch.randn(seq_len, d_model) * 0.02)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = features.reshape(features.shape[0], self.seq_len, self.token_width)
        return self.linear(tokens) + self.position


class TransformerClassifier(nn.Module):
    """A transformer encoder over a flat feature row read as ``seq_len`` tokens; mean-pooled.

    ``features (B, seq_len·w)`` → tokens ``(B, seq_len, w)`` → :class:`TokenEmbedding` →
    ``num_layers`` × :class:`EncoderBlock` → mean over tokens → ``head`` logits ``(B, C)``
    (or a score ``(B,)`` when ``out_features == 1``). The digits data set (8×8 images) read as
    8 row tokens of 8 pixels is the built-in sequence task.

    Args:
        in_features: width of a feature row, divisible by ``seq_len``.
        out_features: classes C (1: a score).
        seq_len: tokens per row.
        d_model: hidden width d.
        num_layers: encoder blocks L.
        num_heads: attention heads h (divides ``d_model``).
        ff_width: feed-forward width (default ``4·d_model``).
        dropout: dropout probability in [0, 1).

    Attributes:
        head: the final ``nn.Linear``; ``num_features``: its input width d. The layers to
            capture are named by :meth:`layer_names`.

    Raises:
        TypeError, ValueError: bad sizes, e.g. ``in_features`` not divisible by ``seq_len``.

    Reference: Vaswani et al. 2017; Devlin et al. 2019 (BERT's post-norm block).

    Example:
        >>> model = TransformerClassifier(64, 10, d_model=32, num_layers=2, num_heads=4)
        >>> model(torch.rand(3, 64)).shape
        torch.Size([3, 10])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int = 1,
        *,
        seq_len: int = 8,
        d_model: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_width: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("out_features", out_features),
            ("seq_len", seq_len),
            ("d_model", d_model),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
        ):
            check_positive_int(name, value)
        if in_features % seq_len:
            raise ValueError(
                f"`in_features` ({in_features}) must be divisible by `seq_len` ({seq_len})"
            )
        check_number("dropout", dropout, low=0.0, high=1.0, high_open=True)
        ff_width = 4 * d_model if ff_width is None else check_positive_int("ff_width", ff_width)
        self._kwargs: dict[str, Any] = dict(
            in_features=in_features,
            out_features=out_features,
            seq_len=seq_len,
            d_model=d_model,
            num_layers=num_layers,
            num_heads=num_heads,
            ff_width=ff_width,
            dropout=dropout,
        )
        self.in_features, self.out_features, self.num_features = in_features, out_features, d_model
        self.embedding = TokenEmbedding(in_features // seq_len, seq_len, d_model)
        self.blocks = nn.ModuleList(
            EncoderBlock(d_model, num_heads, ff_width, dropout) for _ in range(num_layers)
        )
        self.head = nn.Linear(d_model, out_features)

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """The pooled representation ``(B, d)`` before the head."""
        check_float_tensor("features", features)
        hidden = self.embedding(features)
        for block in self.blocks:
            hidden = block(hidden)
        return hidden.mean(dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.forward_features(features))
        return logits.squeeze(-1) if self.out_features == 1 else logits

    def layer_names(self, attention: Literal["scores", "probs"] = "scores") -> dict[str, Any]:
        """Names to capture: ``{"embedding": str, "hidden": [...], "attention": [...]}``,
        one hidden and one attention name per block in order; ``attention`` picks the
        unnormalised scores or the probabilities."""
        check_choice("attention", attention, ("scores", "probs"))
        blocks = [f"blocks.{i}" for i in range(len(self.blocks))]
        return {
            "embedding": "embedding",
            "hidden": blocks,
            "attention": [f"{name}.attention.{attention}" for name in blocks],
        }

    def spec(self) -> dict[str, Any]:
        """How to rebuild this model (see :func:`distill.models.build`)."""
        return make_spec("TransformerClassifier", **self._kwargs)
