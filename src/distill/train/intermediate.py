"""TinyBERT-style training: layer-to-layer terms next to the prediction-layer terms.

:class:`IntermediateObjective` runs the teacher module itself (``eval()``, under ``no_grad``),
capturing its embedding, hidden and attention layers with :mod:`distill.hooks`, while the
student, wrapped by :meth:`IntermediateObjective.wrap_model`, returns its own captured layers
already mapped by the learnable projections ``W_e``/``W_h``. The projections live in the
wrapper, so they train with the student and are saved in checkpoints, while ``fit`` returns
(and exports) the bare student. Guide and maths: ``docs/intermediate.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from distill import intermediate
from distill._validation import check_choice, check_number, check_positive_int
from distill.hooks import LayerRecorder, layer_pairs, run_frozen
from distill.train.batches import Batch
from distill.train.objective import Objective, Term
from distill.train.terms import main_score

LAYER_KINDS = ("embedding", "hidden", "attention")


@dataclass(frozen=True)
class _Link:
    """One distilled layer pair: its kind, log key, the two layer references and the map key."""

    kind: str
    key: str
    student: str
    teacher: str


class IntermediateStudent(nn.Module):
    """The student with its projections: ``(output, mapped layers)`` in training, else output.

    ``.model`` is the serving student, ``.projections`` the ``W_e``/``W_h`` maps (training only).
    """

    def __init__(self, model: nn.Module, links: Sequence[_Link], projections: nn.ModuleDict):
        super().__init__()
        self.model = model
        self.projections = projections
        self._links = tuple(links)

    def forward(self, *inputs: Any) -> Any:
        if not self.training:
            return self.model(*inputs)
        references = [link.student for link in self._links]
        with LayerRecorder(self.model, references, what="student") as recorder:
            output = self.model(*inputs)
        layers = tuple(self._mapped(link, recorder.get(link.student)) for link in self._links)
        return output, layers

    def _mapped(self, link: _Link, value: torch.Tensor) -> torch.Tensor:
        return self.projections[link.key](value) if link.key in self.projections else value


class IntermediateObjective(Objective):
    """``loss = Σ_m (λ_e·L_embd + λ_h·L_hidn + λ_a·L_attn) + Σ_k w_k·term_k`` (TinyBERT).

    Layer terms (``docs/intermediate.md``): the embedding MSE ``MSE(E_S·W_e, E_T)``, per mapped
    layer pair ``(m, g(m))`` the hidden MSE ``MSE(H_S·W_h, H_T)`` and the attention loss
    (:func:`distill.intermediate.attention_distillation_loss`), each summed over the pairs
    and logged as ``loss/embedding``, ``loss/hidden``, ``loss/attention``. ``terms`` are the
    prediction-layer terms (e.g. ``KDTerm(alpha=1.0)``, ``LabelsTerm()``); they receive the
    logits of the same teacher forward. With ``intermediate_steps = S > 0`` the two TinyBERT
    stages run in turn: steps ``1 … S`` train the layer terms only (phase
    ``"intermediate"``), later steps the prediction terms only (phase ``"prediction"``).

    Layers are named per model by a mapping ``{"embedding": name, "hidden": [names per
    layer], "attention": [names per layer]}`` (references as in :mod:`distill.hooks`); a model
    with ``layer_names(attention=...)`` (:class:`distill.models.TransformerClassifier`)
    provides its own. ``sample`` is run once through both models when the student is wrapped,
    so every name, shape and width is checked, and every projection made, before training.

    Args:
        teacher: the teacher ``nn.Module`` (moved to the training device on first use).
        sample: a small batch of student inputs ``(B, D)``; ``teacher_sample`` the teacher's
            (default: the same tensor).
        terms: prediction-layer terms (may be empty when ``intermediate_steps == 0``).
        layer_map: ``"uniform"`` (``g(m) = m·N/M``) or ``[[m, n], ...]`` (1-based).
        hidden, attention, embedding: the weights λ_h, λ_a, λ_e (0 leaves a term out).
        attention_kind: ``"mse"`` on scores or ``"kl"`` on probabilities.
        intermediate_steps: length S of the first stage (0: all terms together).
        student_layers, teacher_layers: layer names (default: the model's ``layer_names``).

    Raises:
        ValueError / TypeError: bad weights or map; unknown layer names (did-you-mean);
            attention shapes that differ; a stage 2 with no prediction terms; no term at all.

    Reference: Jiao et al. 2019, "TinyBERT" (Eq. 7–11, two-stage learning); Romero et al.
    2015, "FitNets".

    Example:
        >>> objective = IntermediateObjective(teacher, sample=x[:4], terms=[KDTerm(alpha=1.0)])
        >>> fit(student, train, objective=objective, options=options)  # doctest: +SKIP
    """

    def __init__(
        self,
        teacher: nn.Module,
        *,
        sample: torch.Tensor,
        teacher_sample: torch.Tensor | None = None,
        terms: Sequence[Term] = (),
        layer_map: str | Sequence[Sequence[int]] = "uniform",
        hidden: float = 1.0,
        attention: float = 1.0,
        embedding: float = 0.0,
        attention_kind: intermediate.AttentionKind = "mse",
        intermediate_steps: int = 0,
        student_layers: Mapping[str, Any] | None = None,
        teacher_layers: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(teacher, nn.Module):
            raise TypeError(f"`teacher` must be an nn.Module, got {type(teacher).__name__}")
        check_choice("attention_kind", attention_kind, ("mse", "kl"))
        self.weights = {
            kind: check_number(kind, value, low=0.0)
            for kind, value in zip(LAYER_KINDS, (embedding, hidden, attention), strict=True)
        }
        self.intermediate_steps = check_positive_int(
            "intermediate_steps", intermediate_steps, minimum=0
        )
        if not terms and intermediate_steps > 0:
            raise ValueError("`intermediate_steps` > 0 needs prediction-layer `terms` for stage 2")
        if not any(self.weights.values()) and not terms:
            raise ValueError("give a positive layer weight or at least one prediction term")
        self.terms = list(terms)
        if terms:
            super().__init__(terms)
        self.teacher, self.attention_kind = teacher, attention_kind
        self.sample = sample
        self.teacher_sample = sample if teacher_sample is None else teacher_sample
        self.layer_map = layer_map
        self.names = (
            student_layers,
            _layer_names(teacher, teacher_layers, attention_kind, "teacher"),
        )
        self.links: list[_Link] = []
        self.projections = nn.ModuleDict()

    # schedule -----------------------------------------------------------------------------
    @property
    def uses_teacher(self) -> bool:
        """The teacher runs inside the objective; ``fit`` needs no teacher source."""
        return False

    def needs_teacher(self, step: int) -> bool:
        return False

    def phase(self, step: int) -> str | None:
        """``"intermediate"`` / ``"prediction"`` with two stages, else None."""
        if self.intermediate_steps == 0:
            return None
        return "intermediate" if step <= self.intermediate_steps else "prediction"

    # model ---------------------------------------------------------------------------------
    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Check the layers on ``sample``, make the projections, wrap the student."""
        model = super().wrap_model(model)
        student_names = _layer_names(model, self.names[0], self.attention_kind, "student")
        self.links = _links(student_names, self.names[1], self.layer_map, self.weights)
        self.projections = _projections(model, self.teacher, self.links, self)
        return IntermediateStudent(model, self.links, self.projections)

    # loss ----------------------------------------------------------------------------------
    def __call__(
        self, outputs: Any, batch: Batch, teacher_logits: torch.Tensor | None, *, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and each part: ``loss/<layer kind>`` and ``loss/<term>``."""
        model_outputs, student_layers = outputs
        teacher_output, teacher_layers = self._teacher_forward(batch)
        phase = self.phase(step)
        # A part a stage leaves out still enters with weight 0, so that every parameter gets
        # a gradient at every step (DistributedDataParallel requires it).
        total, parts = 0.0 * sum(layer.sum() for layer in student_layers), {}
        if phase != "prediction":
            for kind, value in self._layer_losses(student_layers, teacher_layers).items():
                parts[f"loss/{kind}"] = value
                total = total + self.weights[kind] * value
        if self.terms and phase != "intermediate":
            logits = teacher_output.float()
            term_total, term_parts = super().__call__(model_outputs, batch, logits, step=step)
            return total + term_total, parts | term_parts
        return total + 0.0 * main_score(model_outputs).sum(), parts

    def _teacher_forward(self, batch: Batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = batch.features if batch.teacher_features is None else batch.teacher_features
        inputs = features if batch.feature_values is None else (features, batch.feature_values)
        _move(self.teacher, features.device)
        references = [link.teacher for link in self.links]
        with LayerRecorder(self.teacher, references, detach=True, what="teacher") as recorder:
            output = run_frozen(self.teacher, inputs)
        return output, [recorder.get(reference).float() for reference in references]

    def _layer_losses(self, student, teacher) -> dict[str, torch.Tensor]:
        losses: dict[str, torch.Tensor] = {}
        for link, s, t in zip(self.links, student, teacher, strict=True):
            if link.kind == "attention":
                value = intermediate.attention_distillation_loss(s, t, kind=self.attention_kind)
            else:
                value = intermediate.hidden_distillation_loss(s, t)
            losses[link.kind] = losses.get(link.kind, 0.0) + value
        return losses

    def __repr__(self) -> str:
        inner = ", ".join(repr(term) for term in self.terms)
        return (
            f"IntermediateObjective(layer_map={self.layer_map!r}, weights={self.weights}, "
            f"attention_kind={self.attention_kind!r}, "
            f"intermediate_steps={self.intermediate_steps}, terms=[{inner}])"
        )


def _move(module: nn.Module, device: torch.device) -> None:
    parameter = next(module.parameters(), None)
    if parameter is not None and parameter.device != device:
        module.to(device)


def _layer_names(model: nn.Module, given, attention_kind: str, what: str) -> dict[str, Any]:
    if given is not None:
        unknown = sorted(set(given) - set(LAYER_KINDS))
        if unknown:
            raise ValueError(f"`{what}_layers` keys must be among {LAYER_KINDS}, got {unknown}")
        return dict(given)
    names = getattr(model, "layer_names", None)
    if not callable(names):
        raise TypeError(
            f"the {what} ({type(model).__name__}) has no layer_names(); pass `{what}_layers` "
            "as {'hidden': [...], 'attention': [...], 'embedding': ...}"
        )
    return names(attention="scores" if attention_kind == "mse" else "probs")


def _links(student: dict, teacher: dict, layer_map, weights: dict[str, float]) -> list[_Link]:
    links = []
    if weights["embedding"] > 0:
        for what, names in (("student", student), ("teacher", teacher)):
            if names.get("embedding") is None:
                raise ValueError(f"an embedding weight > 0 needs the {what}'s 'embedding' layer")
        links.append(_Link("embedding", "embedding", student["embedding"], teacher["embedding"]))
    for kind in ("hidden", "attention"):
        if weights[kind] == 0:
            continue
        s_names, t_names = list(student.get(kind) or []), list(teacher.get(kind) or [])
        if not s_names or not t_names:
            raise ValueError(f"the {kind} weight > 0 needs {kind} layer names for both models")
        for m, n in layer_pairs(layer_map, len(s_names), len(t_names)):
            links.append(_Link(kind, f"{kind}_{m}", s_names[m - 1], t_names[n - 1]))
    return links


def _projections(model, teacher, links, objective) -> nn.ModuleDict:
    """Run ``sample`` through both models; a ``W`` per hidden/embedding pair of other widths."""
    student_refs = [link.student for link in links]
    teacher_refs = [link.teacher for link in links]
    with LayerRecorder(model, student_refs, detach=True, what="student") as s_rec:
        run_frozen(model, objective.sample)
    with LayerRecorder(teacher, teacher_refs, detach=True, what="teacher") as t_rec:
        run_frozen(teacher, objective.teacher_sample)
    projections = nn.ModuleDict()
    for link in links:
        s, t = s_rec.get(link.student), t_rec.get(link.teacher)
        if link.kind == "attention":
            intermediate.attention_distillation_loss(s, t, kind=objective.attention_kind)
        elif s.shape[:-1] != t.shape[:-1]:
            raise ValueError(
                f"student layer {link.student!r} {tuple(s.shape)} and teacher layer "
                f"{link.teacher!r} {tuple(t.shape)} differ before the last (width) dimension"
            )
        elif s.shape[-1] != t.shape[-1]:
            projections[link.key] = intermediate.projection(s.shape[-1], t.shape[-1])
    return projections
