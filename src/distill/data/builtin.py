"""Built-in data sets that need no download: digits, a synthetic recommender, synthetic CTR."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from distill._extras import require
from distill._validation import check_choice, check_number, check_positive_int
from distill.data.dataset import Dataset
from distill.data.synthetic_text import synthetic_text


def load_builtin(name: str, **options: Any) -> Dataset:
    """Load a built-in data set by name with its keyword options.

    Names: ``"digits"``, ``"synthetic_recommender"``, ``"synthetic_ctr"``, ``"synthetic_text"``
    (see each function).

    Raises:
        ValueError: an unknown name (or an option the data set rejects).

    Reference: docs/data.md (built-in data sets, no download).

    Example:
        >>> ds = load_builtin("synthetic_ctr", n_rows=1000, seed=1)
    """
    check_choice("name", name, BUILTINS)
    return BUILTINS[name](**options)


def digits() -> Dataset:
    """scikit-learn's bundled handwritten digits: 1,797 8×8 images, pixels scaled to [0, 1].

    Returns:
        Dataset with float32 features ``(1797, 64)``, int64 labels 0–9,
        ``meta == {"task": "classification", "num_classes": 10}``.

    Reference: Alpaydin & Kaynak (1998), UCI optical digits, as bundled by scikit-learn.

    Example:
        >>> digits().features.shape
        torch.Size([1797, 64])
    """
    bunch = require("sklearn.datasets", extra="data").load_digits()
    return Dataset(
        features=torch.from_numpy(bunch.data / 16.0).float(),
        labels=torch.from_numpy(bunch.target).long(),
        feature_names=list(bunch.feature_names),
        meta={"task": "classification", "num_classes": 10},
    )


def synthetic_recommender(
    n_groups: int = 500,
    items_per_group: int = 20,
    n_features: int = 16,
    student_features: int = 4,
    noise: Literal["normal", "skewed"] = "normal",
    *,
    noise_scale: float = 1.0,
    seed: int = 0,
) -> Dataset:
    """Groups of items whose click probability is non-linear in all features
    (US 2023/0252281 ¶0033).

    ``clean_logit = tanh(x W) a − 1`` with a random hidden layer W (D × 32) whose rows (one per
    feature) have equal norm, so every feature matters;
    ``p = σ(clean_logit + ε)`` where the per-item noise ε has variance ``noise_scale²`` and
    mean 0: normal, or (``"skewed"``) a standardised log-normal whose median lies below its
    mean, so median and mean distillation targets differ. Clicks are ``Bernoulli(p)``. The
    teacher may use every feature; the student only the first ``student_features``
    (``meta["student_features"]``, a 1-based range for :meth:`Dataset.select_features`).

    Args:
        n_groups, items_per_group: N = n_groups · items_per_group rows, group ids 0 … n_groups−1.
        n_features: D, standard-normal features.
        student_features: how many leading features the student sees (1 … D).
        noise: distribution of the logit noise; noise_scale: its standard deviation.
        seed: the generator seed (same seed, same data).

    Returns:
        Dataset with float32 clicks, ``extras["true_prob"]`` and ``extras["clean_logit"]``.

    Raises:
        ValueError: non-positive sizes, ``student_features`` > ``n_features``, unknown noise.

    Example:
        >>> ds = synthetic_recommender(100, 10, 8, 2, noise="skewed", seed=0)
        >>> ds.select_features(ds.meta["student_features"]).features.shape
        torch.Size([1000, 2])
    """
    check_positive_int("n_groups", n_groups)
    check_positive_int("items_per_group", items_per_group)
    check_positive_int("n_features", n_features)
    check_positive_int("student_features", student_features)
    if student_features > n_features:
        raise ValueError(
            f"`student_features` must be <= n_features ({n_features}), got {student_features}"
        )
    check_choice("noise", noise, ("normal", "skewed"))
    check_number("noise_scale", noise_scale, low=0.0)
    generator = torch.Generator().manual_seed(seed)
    n_rows = n_groups * items_per_group
    x = torch.randn(n_rows, n_features, generator=generator)
    hidden = torch.randn(n_features, 32, generator=generator)
    hidden *= math.sqrt(128.0 / n_features) / hidden.norm(dim=1, keepdim=True)  # equal weight
    weights = torch.randn(32, generator=generator) * (2.0 / math.sqrt(32))
    clean_logit = torch.tanh(x @ hidden) @ weights - 1.0
    true_prob = torch.sigmoid(clean_logit + noise_scale * _noise(noise, n_rows, generator))
    return Dataset(
        features=x,
        labels=torch.bernoulli(true_prob, generator=generator),
        groups=torch.arange(n_groups).repeat_interleave(items_per_group),
        extras={"true_prob": true_prob, "clean_logit": clean_logit},
        meta={
            "task": "ranking",
            "student_features": f"1-{student_features}",
            "noise": noise,
        },
    )


def _noise(kind: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """Unit-variance, zero-mean noise; "skewed" is log-normal(0, 1), median < mean."""
    z = torch.randn(n, generator=generator)
    if kind == "normal":
        return z
    mean, std = math.exp(0.5), math.sqrt((math.e - 1.0) * math.e)
    return (torch.exp(z) - mean) / std


def synthetic_ctr(
    n_rows: int = 20_000,
    fields: int = 8,
    cardinality: int | Sequence[int] = 100,
    seed: int = 0,
    *,
    click_rate: float = 0.05,
    zipf_exponent: float = 1.1,
) -> Dataset:
    """Categorical CTR data: Zipf-like value frequencies, a rare click, field interactions.

    Each field's values are drawn with probability ∝ rank^−zipf_exponent. The true logit is
    ``b + Σ_f w_f[v_f] + c · Σ_{f<g} relu(⟨e_f[v_f], e_g[v_g]⟩)``: a wide (linear) part of
    standard deviation ≈ 1 plus non-linear pairwise interactions of value embeddings (scaled by
    c to standard deviation 1.5), so a deep teacher beats a wide model. The bias b is solved
    so that the mean click probability equals ``click_rate``.

    Args:
        n_rows: N.
        fields: number of categorical fields F.
        cardinality: values per field (one int for all, or one per field).
        seed: the generator seed.
        click_rate: target share of positives in (0, 1).
        zipf_exponent: skew of the value frequencies (> 0).

    Returns:
        Dataset with int64 global ids ``(N, F)`` (field f's value v → 1 + offset_f + v),
        ``num_embeddings``, float32 clicks, ``extras["true_prob"]`` and
        ``extras["true_logit"]``; ``meta["task"]`` is ``"binary"``.

    Raises:
        ValueError: non-positive sizes, ``click_rate`` outside (0, 1), a cardinality list of
            the wrong length.

    Reference: the joint-optimisation CTR model's seed (skewed positives); Rendle (2010),
    factorization machines (pairwise field interactions).

    Example:
        >>> ds = synthetic_ctr(5000, fields=4, cardinality=[10, 20, 30, 40], click_rate=0.05)
        >>> ds.num_embeddings
        101
    """
    check_positive_int("n_rows", n_rows)
    check_positive_int("fields", fields)
    check_number("click_rate", click_rate, low=0.0, high=1.0, low_open=True, high_open=True)
    check_number("zipf_exponent", zipf_exponent, low=0.0, low_open=True)
    sizes = [cardinality] * fields if isinstance(cardinality, int) else list(cardinality)
    if len(sizes) != fields:
        raise ValueError(f"`cardinality` has {len(sizes)} entries for {fields} fields")
    for size in sizes:
        check_positive_int("cardinality", size)
    generator = torch.Generator().manual_seed(seed)
    values = torch.stack([_zipf(size, n_rows, zipf_exponent, generator) for size in sizes], 1)
    raw_logit = _ctr_logit(values, sizes, generator)
    true_logit = raw_logit + _bias_for_rate(raw_logit, click_rate)
    true_prob = torch.sigmoid(true_logit)
    offsets = torch.tensor([1, *sizes[:-1]]).cumsum(0)
    return Dataset(
        features=values + offsets,
        labels=torch.bernoulli(true_prob, generator=generator),
        feature_names=[f"field{f}" for f in range(1, fields + 1)],
        num_embeddings=1 + sum(sizes),
        extras={"true_prob": true_prob, "true_logit": true_logit},
        meta={"task": "binary", "click_rate": click_rate, "cardinality": sizes},
    )


def _zipf(size: int, n: int, exponent: float, generator: torch.Generator) -> torch.Tensor:
    weights = torch.arange(1, size + 1, dtype=torch.float64) ** -exponent
    ranks = torch.multinomial(weights, n, replacement=True, generator=generator)
    return torch.randperm(size, generator=generator)[ranks]


def _ctr_logit(values: torch.Tensor, sizes: list[int], generator: torch.Generator) -> torch.Tensor:
    """Wide part (sd ≈ 1) plus relu of pairwise embedding dot products (sd ≈ 1.5)."""
    n_fields = len(sizes)
    wide = torch.zeros(len(values))
    embeddings = []
    for field, size in enumerate(sizes):
        wide += torch.randn(size, generator=generator)[values[:, field]] / math.sqrt(n_fields)
        embeddings.append(torch.randn(size, 4, generator=generator)[values[:, field]] / 2.0)
    stacked = torch.stack(embeddings, dim=1)
    gram = stacked @ stacked.transpose(1, 2)
    upper = torch.triu(torch.ones(n_fields, n_fields, dtype=torch.bool), diagonal=1)
    interactions = torch.relu(gram[:, upper]).sum(dim=1)
    return wide + 1.5 * interactions / interactions.std().clamp_min(1e-12)


def _bias_for_rate(logit: torch.Tensor, rate: float) -> float:
    low, high = -50.0, 50.0
    for _ in range(60):
        middle = (low + high) / 2
        if float(torch.sigmoid(logit + middle).mean()) > rate:
            high = middle
        else:
            low = middle
    return (low + high) / 2


BUILTINS: dict[str, Callable[..., Dataset]] = {
    "digits": digits,
    "synthetic_recommender": synthetic_recommender,
    "synthetic_ctr": synthetic_ctr,
    "synthetic_text": synthetic_text,
}
