"""Training objectives: a weighted sum of named loss terms, each logged on its own.

A term is a small object with ``name``, ``weight``, ``needs_teacher`` and
``__call__(outputs, batch, teacher_logits) -> scalar loss``. The terms call the library's loss
functions (``distill.losses``, ``distill.ranking``); they never re-implement them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from distill._validation import check_number
from distill.train.batches import Batch
from distill.train.terms import TERMS, main_score


class Term(Protocol):
    """What :class:`Objective` needs from a loss term."""

    name: str
    weight: float
    needs_teacher: bool

    def __call__(
        self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor | None
    ) -> torch.Tensor: ...


def make_term(spec: Mapping[str, Any]) -> Term:
    """Build a term from a spec such as ``{"name": "kd", "weight": 0.5, "temperature": 4.0}``.

    Raises:
        ValueError: an unknown term name (the message lists the known ones).

    Example:
        >>> make_term({"name": "labels", "loss": "ce"}).name
        'labels'
    """
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in TERMS:
        known = ", ".join(repr(key) for key in TERMS)
        raise ValueError(f"`name` of an objective term must be one of {known}, got {name!r}")
    return TERMS[name](**spec)


class Objective:
    """``loss = Σ_k weight_k · term_k(outputs, batch, teacher_logits)``.

    Args:
        terms: at least one term, with distinct names (see :data:`distill.train.terms.TERMS`).

    Raises:
        ValueError: no terms, duplicate names or a negative weight.

    Example:
        >>> objective = Objective.from_specs([{"name": "labels", "loss": "ce"}])
        >>> objective.uses_teacher
        False
    """

    def __init__(self, terms: Sequence[Term]) -> None:
        if not terms:
            raise ValueError("`terms` must hold at least one loss term, got none")
        names = [term.name for term in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"`terms` must have distinct names, got {names}")
        for term in terms:
            check_number(f"weight of term {term.name!r}", term.weight, low=0.0)
        self.terms = list(terms)

    @classmethod
    def from_specs(cls, specs: Sequence[Mapping[str, Any]]) -> Objective:
        """An objective from term specs (see :func:`make_term`)."""
        return cls([make_term(spec) for spec in specs])

    @property
    def uses_teacher(self) -> bool:
        """Whether any step needs teacher logits."""
        return any(term.needs_teacher for term in self.terms)

    def needs_teacher(self, step: int) -> bool:
        """Whether step ``step`` (1-based) needs teacher logits for the batch."""
        return self.uses_teacher

    def phase(self, step: int) -> str | None:
        """The schedule phase logged with each step (joint training: static/dynamic)."""
        return None

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """The module to train: terms may add training-only parts (quantile heads)."""
        for term in self.terms:
            wrap = getattr(term, "wrap_model", None)
            if wrap is not None:
                model = wrap(model)
        return model

    def score(self, outputs: Any) -> torch.Tensor:
        """The serving score/logits inside the model's outputs (used for validation)."""
        return main_score(outputs)

    def __call__(
        self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor | None, *, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and the unweighted value of each term, keyed ``"loss/<name>"``."""
        parts = {f"loss/{term.name}": term(outputs, batch, teacher_logits) for term in self.terms}
        if len(self.terms) == 1 and self.terms[0].weight == 1.0:  # 0 + 1·x is x: skip two ops
            return next(iter(parts.values())), parts
        total = sum(term.weight * parts[f"loss/{term.name}"] for term in self.terms)
        return total, parts

    def __repr__(self) -> str:
        inner = ", ".join(repr(term) for term in self.terms)
        return f"Objective([{inner}])"
