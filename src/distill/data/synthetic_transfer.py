"""Synthetic transfer rows for when unlabeled data is scarce (mimic learning).

Bucilă, Caruana & Niculescu-Mizil (2006), "Model Compression", generate a large transfer set
from a small one and let the teacher label it. Three generators of new feature rows from a pool
of real rows (all draw from torch's global RNG, which ``distill.train.fit`` seeds and
checkpoints):

- :func:`munge`: MUNGE for tabular rows: each row and its nearest neighbour swap each
  attribute with probability ``swap_prob``, the value drawn around the neighbour's with
  standard deviation ``|a − b| / spread``;
- :func:`mixup`: convex combinations ``λ·x_i + (1 − λ)·x_j``, ``λ ~ Beta(α, α)`` (Zhang et al.
  2018);
- :func:`jitter`: Gaussian noise ``x + N(0, σ²)``, clamped to a range if given.

Maths and checks: ``docs/methods.md``.
"""

from __future__ import annotations

import torch

from distill._validation import check_float_tensor, check_number


def _check_pool(features: torch.Tensor) -> torch.Tensor:
    check_float_tensor("features", features)
    if features.ndim != 2 or features.shape[0] < 2:
        shape = tuple(features.shape)
        raise ValueError(f"`features` must have shape (N, D) with N >= 2, got {shape}")
    return features


def nearest_neighbours(features: torch.Tensor) -> torch.Tensor:
    """Index of each row's nearest other row (Euclidean), ``(N,)``."""
    distances = torch.cdist(features, features)
    distances.fill_diagonal_(torch.inf)
    return distances.argmin(dim=1)


def munge(
    features: torch.Tensor,
    rows: torch.Tensor,
    *,
    swap_prob: float = 0.5,
    spread: float = 1.0,
    neighbours: torch.Tensor | None = None,
) -> torch.Tensor:
    """MUNGE rows: for each chosen row e and its nearest neighbour e', per attribute a, with
    probability ``swap_prob`` replace ``e_a`` by a draw from ``N(e'_a, (|e_a − e'_a|/spread)²)``.

    Args:
        features: ``(N, D)`` pool of real continuous rows.
        rows: ``(B,)`` indices of the rows to perturb (repeats allowed).
        swap_prob: ``p`` in ``[0, 1]``.
        spread: ``s > 0``; larger keeps the swapped values closer to the neighbour's.
        neighbours: precomputed :func:`nearest_neighbours` of ``features`` (else computed).

    Returns:
        ``(B, D)`` new rows.

    Raises:
        TypeError / ValueError: a bad pool, ``swap_prob`` or ``spread``.

    Reference: Bucilă, Caruana & Niculescu-Mizil (2006), "Model Compression", §3 (MUNGE).

    Example:
        >>> pool = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
        >>> munge(pool, torch.tensor([0]), swap_prob=0.0)
        tensor([[0., 0.]])
    """
    _check_pool(features)
    swap_prob = check_number("swap_prob", swap_prob, low=0.0, high=1.0)
    spread = check_number("spread", spread, low=0.0, low_open=True)
    neighbours = nearest_neighbours(features) if neighbours is None else neighbours
    own, other = features[rows], features[neighbours[rows]]
    swap = torch.rand_like(own) < swap_prob
    noise = torch.randn_like(own)
    drawn = other + noise * (own - other).abs() / spread
    return torch.where(swap, drawn, own)


def mixup(features: torch.Tensor, *, alpha: float = 0.4) -> torch.Tensor:
    """Mixup rows ``λ·x_i + (1 − λ)·x_π(i)``, ``λ ~ Beta(α, α)`` per row, π a permutation.

    Args:
        features: ``(B, D)`` rows (B >= 2).
        alpha: ``α > 0`` of the Beta distribution (small: close to the real rows).

    Returns:
        ``(B, D)`` mixed rows.

    Reference: Zhang, Cisse, Dauphin & Lopez-Paz (2018), "mixup: Beyond Empirical Risk
    Minimization".

    Example:
        >>> mixup(torch.ones(3, 2)).shape
        torch.Size([3, 2])
    """
    _check_pool(features)
    alpha = check_number("alpha", alpha, low=0.0, low_open=True)
    beta = torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha))
    lam = beta.sample((features.shape[0], 1)).to(features)
    partner = torch.randperm(features.shape[0], device=features.device)
    return lam * features + (1 - lam) * features[partner]


def jitter(
    features: torch.Tensor,
    *,
    sigma: float = 0.05,
    low: float | None = None,
    high: float | None = None,
) -> torch.Tensor:
    """Rows plus Gaussian noise ``x + N(0, σ²)``, clamped to ``[low, high]`` when given.

    Example:
        >>> jitter(torch.zeros(2, 3), sigma=0.0)
        tensor([[0., 0., 0.],
                [0., 0., 0.]])
    """
    check_float_tensor("features", features)
    sigma = check_number("sigma", sigma, low=0.0)
    noisy = features + sigma * torch.randn_like(features)
    return noisy if low is None and high is None else noisy.clamp(low, high)
