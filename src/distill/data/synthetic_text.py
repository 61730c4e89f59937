"""A seeded synthetic "language" for next-token prediction: no download, a known generator."""

from __future__ import annotations

import torch

from distill._validation import check_number, check_positive_int
from distill.data.dataset import Dataset

BOUNDARY = 0
"""Token id 0: the stream start (left padding of the first contexts); also an ordinary word."""


def synthetic_text(
    n_rows: int = 30_000,
    vocab_size: int = 256,
    context: int = 4,
    seed: int = 0,
    *,
    zipf_exponent: float = 1.5,
    order2_weight: float = 0.5,
    stream_length: int = 64,
) -> Dataset:
    """Next-token prediction on text from a seeded second-order Markov chain with Zipf rows.

    Each token ``a`` has two successor distributions over the V tokens, ``P₁[a]`` and
    ``P₂[a]``, each a Zipf law ``p(k-th) ∝ k^−s`` over its own random permutation of the
    vocabulary. The next token after ``… a b`` is drawn from
    ``(1 − λ)·P₁[b] + λ·P₂[a]`` (λ = ``order2_weight``), so a model that reads more than the
    last token predicts better (a bigger teacher has something to teach). Streams of
    ``stream_length`` tokens start from ``context`` boundary tokens (id 0); every position
    gives one row: the previous ``context`` token ids → the next token.

    Args:
        n_rows: N rows (the last stream is cut to fit).
        vocab_size: V tokens, ids ``0 … V − 1``; also the number of classes.
        context: F previous tokens per row (the feature columns).
        seed: the generator seed (same seed, same data).
        zipf_exponent: s > 0, the skew of every successor distribution.
        order2_weight: λ in [0, 1], the weight of the token two back.
        stream_length: tokens generated per stream (rows per stream).

    Returns:
        Dataset with int64 token ids ``(N, F)`` (column ``t-1`` is the last token),
        ``num_embeddings = V``, int64 labels (the next token),
        ``meta == {"task": "classification", "num_classes": V, ...}``.

    Raises:
        ValueError / TypeError: non-positive sizes, ``vocab_size`` < 2, ``zipf_exponent`` ≤ 0,
            ``order2_weight`` outside [0, 1].

    Reference: docs/compression.md#the-keyboard-example (the data of the compression chain);
    Bengio et al. 2003 (next-word prediction from a window of previous words).

    Example:
        >>> data = synthetic_text(1000, vocab_size=50, context=3, seed=1)
        >>> data.features.shape, data.meta["num_classes"]
        (torch.Size([1000, 3]), 50)
    """
    check_positive_int("n_rows", n_rows)
    check_positive_int("vocab_size", vocab_size, minimum=2)
    check_positive_int("context", context)
    check_positive_int("stream_length", stream_length)
    check_number("zipf_exponent", zipf_exponent, low=0.0, low_open=True)
    check_number("order2_weight", order2_weight, low=0.0, high=1.0)
    generator = torch.Generator().manual_seed(seed)
    first, second = (_zipf_rows(vocab_size, zipf_exponent, generator) for _ in range(2))
    n_streams = -(-n_rows // stream_length)
    tokens = torch.full((n_streams, context + stream_length), BOUNDARY, dtype=torch.long)
    for t in range(context, context + stream_length):
        older = tokens[:, t - 2] if t >= 2 else torch.full((n_streams,), BOUNDARY)
        mixed = (1 - order2_weight) * first[tokens[:, t - 1]] + order2_weight * second[older]
        tokens[:, t] = _draw(mixed, generator)
    windows = tokens.unfold(1, context + 1, 1).reshape(-1, context + 1)[:n_rows]
    return Dataset(
        features=windows[:, :context].contiguous(),
        labels=windows[:, context].contiguous(),
        feature_names=[f"t-{context - i}" for i in range(context)],
        num_embeddings=vocab_size,
        meta={
            "task": "classification",
            "num_classes": vocab_size,
            "zipf_exponent": zipf_exponent,
            "order2_weight": order2_weight,
        },
    )


def _draw(probabilities: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row of a row-stochastic matrix by the inverse CDF (faster than
    ``torch.multinomial`` for many rows)."""
    cumulative = probabilities.cumsum(1)
    uniform = torch.rand(len(probabilities), 1, generator=generator) * cumulative[:, -1:]
    index = torch.searchsorted(cumulative, uniform).squeeze(1)
    return index.clamp_max(probabilities.shape[1] - 1)


def _zipf_rows(size: int, exponent: float, generator: torch.Generator) -> torch.Tensor:
    """``(V, V)`` row-stochastic: row a puts ``k^−s / H`` on the k-th token of its permutation."""
    weights = torch.arange(1, size + 1, dtype=torch.float64) ** -exponent
    weights = (weights / weights.sum()).float()
    order = torch.argsort(torch.rand(size, size, generator=generator), dim=1)
    return torch.zeros(size, size).scatter_(1, order, weights.expand(size, size))
