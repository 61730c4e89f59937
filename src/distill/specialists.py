"""Specialists on confusable classes (Hinton, Vinyals & Dean 2015, §5).

A generalist classifier confuses some classes with each other. This module

1. finds clusters of confusable classes: k-means on the columns of the covariance matrix of the
   generalist's soft targets (:func:`confusable_clusters`);
2. builds a specialist per cluster, initialised from the generalist, whose head has the
   cluster's classes plus one "dustbin" class for all others (:func:`specialist_from`,
   :func:`specialist_labels`), trained on data enriched with its classes
   (:func:`enriched_rows`);
3. combines generalist and active specialists at inference into the full distribution
   ``q = softmax(z)`` that minimises ``KL(p^g ‖ q) + Σ_m KL(p^m ‖ q^m)`` by a few gradient
   steps on z (:func:`combine_specialists`).

The combined distribution can then be distilled back into one student. Maths and checks:
``docs/methods.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from distill._extras import require
from distill._validation import check_float_tensor, check_positive_int


def confusable_clusters(
    soft_targets: torch.Tensor, n_clusters: int, *, seed: int = 0
) -> list[list[int]]:
    """Clusters of classes that the generalist predicts together (scikit-learn k-means).

    Each class k is the point ``Cov(p)[:, k]``: the column of the covariance matrix of the
    generalist's soft targets ``p`` over the rows. Classes whose probabilities rise and fall
    together land in one cluster.

    Args:
        soft_targets: ``(N, K)`` generalist probabilities (e.g. on held-out rows).
        n_clusters: number of clusters, ``1 <= n_clusters <= K``.
        seed: k-means random state.

    Returns:
        ``n_clusters`` sorted lists of class indices, ordered by their smallest class; together
        they hold every class once.

    Raises:
        TypeError / ValueError: not a float ``(N, K)`` tensor with N >= 2, bad ``n_clusters``.
        ModuleNotFoundError: scikit-learn is missing (``pip install 'distill[data]'``).

    Reference: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network",
    §5.3.

    Example:
        >>> p = torch.tensor([[0.5, 0.5, 0.0], [0.1, 0.1, 0.8], [0.45, 0.45, 0.1]])
        >>> confusable_clusters(p, 2)
        [[0, 1], [2]]
    """
    cluster = require("sklearn.cluster", extra="data")
    check_float_tensor("soft_targets", soft_targets)
    if soft_targets.ndim != 2 or soft_targets.shape[0] < 2:
        shape = tuple(soft_targets.shape)
        raise ValueError(f"`soft_targets` must have shape (N, K) with N >= 2, got {shape}")
    classes = soft_targets.shape[1]
    check_positive_int("n_clusters", n_clusters)
    if n_clusters > classes:
        raise ValueError(
            f"`n_clusters` must be <= the number of classes {classes}, got {n_clusters}"
        )
    covariance = torch.cov(soft_targets.double().T).numpy()
    labels = cluster.KMeans(n_clusters, n_init=10, random_state=seed).fit(covariance.T).labels_
    clusters = [sorted(int(k) for k in range(classes) if labels[k] == c) for c in set(labels)]
    return sorted(clusters)


def _check_classes(classes: Sequence[int], num_classes: int) -> list[int]:
    chosen = [int(k) for k in classes]
    if not chosen or len(set(chosen)) != len(chosen) or len(chosen) >= num_classes:
        raise ValueError(
            f"`classes` must be distinct, non-empty and fewer than {num_classes}, got {chosen}"
        )
    bad = [k for k in chosen if not 0 <= k < num_classes]
    if bad:
        raise ValueError(f"`classes` must be in [0, {num_classes}), got {bad[0]}")
    return chosen


def specialist_labels(
    labels: torch.Tensor, classes: Sequence[int], num_classes: int, *, ignore_index: int = -100
) -> torch.Tensor:
    """Class labels in a specialist's numbering: ``classes[i] → i``, any other class → dustbin.

    The dustbin is ``len(classes)``; ``ignore_index`` stays as it is.

    Example:
        >>> specialist_labels(torch.tensor([3, 7, 1, -100]), [7, 3], 10)
        tensor([   1,    0,    2, -100])
    """
    chosen = _check_classes(classes, num_classes)
    table = torch.full((num_classes,), len(chosen), dtype=torch.int64)
    table[torch.tensor(chosen)] = torch.arange(len(chosen))
    ignored = labels == ignore_index
    mapped = table[labels.clamp(0, num_classes - 1)]
    return torch.where(ignored, labels, mapped)


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """The parent, attribute name and module of ``model``'s last ``nn.Linear``."""
    found = [
        (name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear)
    ]
    if not found:
        raise ValueError(f"`generalist` ({type(model).__name__}) has no nn.Linear logit layer")
    name, layer = found[-1]
    parent_name, _, attribute = name.rpartition(".")
    return model.get_submodule(parent_name), attribute, layer


@torch.no_grad()
def specialist_from(generalist: nn.Module, classes: Sequence[int]) -> nn.Module:
    """A copy of the generalist whose logit layer covers ``classes`` plus a dustbin class.

    The rows of ``classes`` are copied from the generalist's last ``nn.Linear``; the dustbin
    row is the mean of the other rows, its bias the mean of their biases plus
    ``log(K − len(classes))`` (the log-sum-exp of equal logits), so the specialist starts
    close to the generalist's distribution folded onto its classes.

    Args:
        generalist: a classifier whose last ``nn.Linear`` gives the K logits.
        classes: the specialist's classes (distinct, fewer than K).

    Returns:
        A new module (the generalist is untouched) with ``len(classes) + 1`` outputs.

    Raises:
        ValueError: no ``nn.Linear`` layer, or bad ``classes``.

    Reference: Hinton et al. (2015), §5.2 (specialists initialised from the generalist).
    """
    model = copy.deepcopy(generalist)
    parent, attribute, layer = _last_linear(model)
    chosen = _check_classes(classes, layer.out_features)
    others = [k for k in range(layer.out_features) if k not in chosen]
    head = nn.Linear(layer.in_features, len(chosen) + 1, bias=layer.bias is not None)
    head = head.to(layer.weight)
    head.weight[:-1] = layer.weight[chosen]
    head.weight[-1] = layer.weight[others].mean(0)
    if layer.bias is not None:
        head.bias[:-1] = layer.bias[chosen]
        head.bias[-1] = layer.bias[others].mean() + torch.log(torch.tensor(float(len(others))))
    if layer is model:  # the classifier is one linear layer
        return head
    setattr(parent, attribute, head)
    if getattr(model, "out_features", None) == layer.out_features:
        model.out_features = head.out_features  # e.g. distill.models.MLP records its width
    return model


@torch.no_grad()
def shift_dustbin(specialist: nn.Module, shift: float) -> nn.Module:
    """Add ``shift`` to the dustbin logit's bias (the last output), in place; returns the model.

    With the correction of :func:`enriched_rows` this undoes the oversampling of the special
    classes (Hinton et al. 2015, §5.2).
    """
    _, _, layer = _last_linear(specialist)
    if layer.bias is None:
        raise ValueError("the specialist's logit layer has no bias to shift")
    layer.bias[-1] += float(shift)
    return specialist


def enriched_rows(
    labels: torch.Tensor, classes: Sequence[int], *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, float]:
    """Row indices of a specialist's training set: its classes' rows plus as many others.

    Half the rows come from the special classes, half are drawn without replacement from the
    remainder (all of it when it is smaller). Returns the indices and the dustbin logit
    correction ``log(others available / others drawn)`` for the oversampling (Hinton et al.
    2015, §5.2).

    Example:
        >>> rows, shift = enriched_rows(torch.tensor([0, 1, 2, 2, 2, 2]), [0])
        >>> len(rows), round(shift, 4)
        (2, 1.6094)
    """
    special = torch.isin(labels, torch.tensor([int(k) for k in classes], device=labels.device))
    inside, outside = special.nonzero()[:, 0], (~special).nonzero()[:, 0]
    drawn = min(len(inside), len(outside))
    pick = torch.randperm(len(outside), generator=generator)[:drawn].to(outside.device)
    correction = float(torch.log(torch.tensor(len(outside) / max(drawn, 1))))
    return torch.cat([inside, outside[pick]]), correction


def active_specialists(
    generalist_logits: torch.Tensor, class_sets: Sequence[Sequence[int]], *, top_n: int = 1
) -> torch.Tensor:
    """``(N, M)`` mask: specialist m is active when its classes meet the generalist's top n."""
    check_positive_int("top_n", top_n)
    top = generalist_logits.topk(min(top_n, generalist_logits.shape[1]), dim=1).indices
    member = torch.zeros(len(class_sets), generalist_logits.shape[1], dtype=torch.bool)
    for m, classes in enumerate(class_sets):
        member[m, list(classes)] = True
    return member[:, top].any(dim=2).T.to(generalist_logits.device)


def _folded_log_probs(log_q: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """``log q^m``: the full ``log q`` folded onto ``classes`` plus the dustbin (the rest)."""
    others = [k for k in range(log_q.shape[1]) if k not in classes]
    dustbin = torch.logsumexp(log_q[:, others], dim=1, keepdim=True)
    return torch.cat([log_q[:, classes], dustbin], dim=1)


def combine_specialists(
    generalist_logits: torch.Tensor,
    specialist_logits: Sequence[torch.Tensor],
    class_sets: Sequence[Sequence[int]],
    *,
    top_n: int = 1,
    steps: int = 100,
) -> torch.Tensor:
    """Logits z of the full distribution ``q = softmax(z)`` that agrees with all the models.

    Minimises ``KL(p^g ‖ q) + Σ_{m active} KL(p^m ‖ q^m)`` per row, where ``q^m`` is q folded
    onto specialist m's classes plus its dustbin (the mass of every other class), by at most
    ``steps`` L-BFGS iterations (strong Wolfe line search) on z from the generalist's logits.
    The rows are independent; a row with no active specialist keeps the generalist's
    distribution.

    Args:
        generalist_logits: ``(N, K)``.
        specialist_logits: one ``(N, len(class_sets[m]) + 1)`` tensor per specialist (dustbin
            last).
        class_sets: the classes of each specialist.
        top_n: a specialist is active on a row when its classes meet the generalist's n most
            probable classes there.
        steps: most L-BFGS iterations.

    Returns:
        ``(N, K)`` logits (detached).

    Raises:
        ValueError / TypeError: shapes that do not match the class sets, bad numbers.

    Reference: Hinton et al. (2015), §5.4 (performing inference with ensembles of specialists).
    """
    check_float_tensor("generalist_logits", generalist_logits)
    steps = check_positive_int("steps", steps)
    if len(specialist_logits) != len(class_sets):
        raise ValueError(
            f"`specialist_logits` has {len(specialist_logits)} entries but `class_sets` has "
            f"{len(class_sets)}"
        )
    sets = [_check_classes(c, generalist_logits.shape[1]) for c in class_sets]
    for m, (logits, classes) in enumerate(zip(specialist_logits, sets, strict=True)):
        expected = (generalist_logits.shape[0], len(classes) + 1)
        if tuple(logits.shape) != expected:
            raise ValueError(
                f"`specialist_logits[{m}]` must have shape {expected}, got {tuple(logits.shape)}"
            )
    active = active_specialists(generalist_logits, sets, top_n=top_n).to(generalist_logits.dtype)
    targets = [torch.softmax(logits.detach(), dim=1) for logits in specialist_logits]
    p_general = torch.softmax(generalist_logits.detach(), dim=1)
    z = generalist_logits.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [z],
        max_iter=steps,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        log_q = torch.log_softmax(z, dim=1)
        loss = -(p_general * log_q).sum()
        for m, classes in enumerate(sets):
            folded = _folded_log_probs(log_q, classes)
            loss = loss - (active[:, m] * (targets[m] * folded).sum(dim=1)).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
    return z.detach()
