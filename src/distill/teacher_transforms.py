"""Teacher transforms: synthetic teacher distributions that isolate one mechanism of KD.

Tang et al. (2020), "Understanding and Improving Knowledge Distillation", split what a
teacher's soft targets give the student into (1) example re-weighting by the teacher's
confidence on the true class, (2) a prior on class similarity, (3) label smoothing. Each
transform below keeps one of them:

- :func:`reweighting_targets` (``ρ^pt``): the teacher's true-class probability, the rest
  spread uniformly (re-weighting only);
- :func:`similarity_targets` (``ρ^sim``): a class-similarity prior from the cosine of the
  teacher's logit-layer class vectors, the same for every example of a class (no re-weighting);
- label smoothing (:func:`distill.temperature.smooth_labels`) and KD-topk
  (:func:`distill.temperature.top_k_probs`).

:func:`gradient_rescaling` is the per-example factor by which KD rescales the hard-label
gradient on the true-class logit. :func:`get` turns a config spec into a
:class:`TeacherTransform`. Maths and checks: ``docs/methods.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from distill._validation import (
    check_choice,
    check_float_tensor,
    check_number,
    check_positive_int,
)
from distill.temperature import _check_class_indices, smooth_labels, top_k_probs


def _check_probs_and_target(probs: Any, target: Any) -> int:
    """``(N, K)`` probabilities and ``(N,)`` class indices in ``[0, K)``; returns K."""
    check_float_tensor("teacher_probs", probs)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(
            f"`teacher_probs` must have shape (N, K), K >= 2, got {tuple(probs.shape)}"
        )
    _check_class_indices("target", target, probs.shape[1])
    if target.shape != probs.shape[:1]:
        raise ValueError(
            f"`target` shape {tuple(target.shape)} does not match `teacher_probs` rows "
            f"({probs.shape[0]},)"
        )
    return probs.shape[1]


def reweighting_targets(teacher_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``ρ^pt``: ``q_y = p_y`` and ``q_k = (1 − p_y)/(K − 1)`` for every ``k ≠ y``.

    Keeps only the teacher's confidence on the true class (which re-weights the examples);
    the wrong classes share the rest uniformly, so no class-similarity information remains.

    Args:
        teacher_probs: ``(N, K)`` teacher probabilities (e.g. ``softmax_t(v, T)``).
        target: ``(N,)`` true class indices in ``[0, K)``.

    Returns:
        ``(N, K)`` probabilities, rows summing to 1.

    Raises:
        TypeError: non-float ``teacher_probs`` or non-integer ``target``.
        ValueError: shapes that do not match, ``K < 2``, a class index outside ``[0, K)``.

    Reference: Tang, Shivanna, Zhao, Lin, Singh, Chi & Jain (2020), "Understanding and
    Improving Knowledge Distillation", §4 (``ρ^pt``).

    Example:
        >>> reweighting_targets(torch.tensor([[0.7, 0.2, 0.1]]), torch.tensor([0]))
        tensor([[0.7000, 0.1500, 0.1500]])
    """
    classes = _check_probs_and_target(teacher_probs, target)
    true = teacher_probs.gather(1, target[:, None])
    rest = ((1 - true) / (classes - 1)).expand_as(teacher_probs)
    return rest.scatter(1, target[:, None], true)


def class_similarity(class_vectors: torch.Tensor) -> torch.Tensor:
    """Cosine similarity ``cos(w_j, w_k)`` of the rows of a ``(K, d)`` logit-layer weight.

    Args:
        class_vectors: ``(K, d)`` float, one row per class (``nn.Linear.weight`` of the
            teacher's last layer).

    Returns:
        ``(K, K)`` similarities in ``[−1, 1]`` with a unit diagonal (zero rows give 0).

    Raises:
        TypeError / ValueError: not a float 2-D tensor.

    Example:
        >>> class_similarity(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
        tensor([[1.0000, 0.7071],
                [0.7071, 1.0000]])
    """
    check_float_tensor("class_vectors", class_vectors)
    if class_vectors.ndim != 2:
        shape = tuple(class_vectors.shape)
        raise ValueError(f"`class_vectors` must have shape (K, d), got {shape}")
    unit = F.normalize(class_vectors, dim=1)
    return unit @ unit.T


def similarity_targets(
    class_vectors: torch.Tensor,
    target: torch.Tensor,
    *,
    temperature: float = 1.0,
    true_prob: float | None = None,
) -> torch.Tensor:
    """``ρ^sim``: ``q_k ∝ exp(cos(w_y, w_k)/T)``, the same for every example of class y.

    With ``true_prob`` set, ``q_y = true_prob`` for every example and the other classes share
    ``1 − true_prob`` in proportion to ``exp(cos(w_y, w_k)/T)``: only the class-similarity
    prior remains (no example re-weighting, no dependence on the input).

    Args:
        class_vectors: ``(K, d)`` teacher logit-layer class vectors.
        target: ``(N,)`` true class indices in ``[0, K)``.
        temperature: ``T > 0`` of the similarity softmax.
        true_prob: fixed ``q_y`` in ``(0, 1)``, or ``None`` for the plain softmax.

    Returns:
        ``(N, K)`` probabilities of ``class_vectors``'s dtype, rows summing to 1.

    Raises:
        TypeError / ValueError: bad shapes, class indices, ``temperature`` or ``true_prob``.

    Reference: Tang et al. (2020), §4 (``ρ^sim``).

    Example:
        >>> w = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
        >>> similarity_targets(w, torch.tensor([0]), true_prob=0.5)
        tensor([[0.5000, 0.4232, 0.0768]])
    """
    similarity = class_similarity(class_vectors)
    _check_class_indices("target", target, similarity.shape[0])
    temperature = check_number("temperature", temperature, low=0.0, low_open=True)
    logits = similarity[target] / temperature
    if true_prob is None:
        return torch.softmax(logits, dim=1)
    true_prob = check_number(
        "true_prob", true_prob, low=0.0, high=1.0, low_open=True, high_open=True
    )
    others = logits.scatter(1, target[:, None], -torch.inf)
    return (torch.softmax(others, dim=1) * (1 - true_prob)).scatter(1, target[:, None], true_prob)


def gradient_rescaling(
    teacher_probs: torch.Tensor, student_probs: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Per-example factor ``w_i = (p_y − q_y)/(1 − q_y)`` by which KD rescales the label gradient.

    At T = 1 the gradient of ``CE(p, softmax(z))`` on the true-class logit is ``q_y − p_y`` and
    that of the hard-label CE is ``q_y − 1``; their ratio is ``w_i``. It grows with the
    teacher's confidence ``p_y``: KD re-weights examples by how sure the teacher is.

    Args:
        teacher_probs: ``(N, K)`` teacher probabilities ``p``.
        student_probs: ``(N, K)`` student probabilities ``q`` (``q_y < 1``).
        target: ``(N,)`` true classes.

    Returns:
        ``(N,)`` factors (``p_y ≤ 1`` gives ``w_i ≤ 1``).

    Raises:
        TypeError / ValueError: shapes, dtypes or class indices that do not fit.

    Reference: Tang et al. (2020), §3.2 (gradient rescaling).

    Example:
        >>> gradient_rescaling(torch.tensor([[0.9, 0.1]]), torch.tensor([[0.5, 0.5]]),
        ...                    torch.tensor([0]))
        tensor([0.8000])
    """
    _check_probs_and_target(teacher_probs, target)
    _check_probs_and_target(student_probs, target)
    if student_probs.shape != teacher_probs.shape:
        raise ValueError(
            f"`student_probs` shape {tuple(student_probs.shape)} does not match "
            f"`teacher_probs` shape {tuple(teacher_probs.shape)}"
        )
    p_true = teacher_probs.gather(1, target[:, None])[:, 0]
    q_true = student_probs.gather(1, target[:, None])[:, 0]
    return (p_true - q_true) / (1 - q_true)


_PARAMETERS: dict[str, dict[str, Any]] = {  # name -> parameters with their defaults
    "reweight": {},
    "similarity": {"temperature": 1.0, "true_prob": None},
    "label_smoothing": {"epsilon": 0.1},
    "top_k": {"k": None},
}
NAMES = tuple(_PARAMETERS)


@dataclass(frozen=True)
class TeacherTransform:
    """A validated teacher transform: ``(teacher_probs, target) -> new teacher_probs``.

    ``similarity`` also needs the teacher's ``class_vectors`` (``(K, d)``), given at call time.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(
        self,
        teacher_probs: torch.Tensor,
        target: torch.Tensor,
        class_vectors: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.name == "reweight":
            return reweighting_targets(teacher_probs, target)
        if self.name == "top_k":
            return top_k_probs(teacher_probs, self.params["k"])
        classes = _check_probs_and_target(teacher_probs, target)
        if self.name == "label_smoothing":
            return smooth_labels(target, classes, self.params["epsilon"], dtype=teacher_probs.dtype)
        if class_vectors is None:
            raise ValueError("teacher transform 'similarity' needs the teacher's `class_vectors`")
        if class_vectors.shape[0] != classes:
            raise ValueError(
                f"`class_vectors` has {class_vectors.shape[0]} rows but the teacher has "
                f"{classes} classes"
            )
        vectors = class_vectors.to(teacher_probs)
        return similarity_targets(vectors, target, **self.params)


def get(spec: str | Mapping[str, Any] | TeacherTransform) -> TeacherTransform:
    """A :class:`TeacherTransform` from a name or a mapping with a ``"name"`` key.

    Names and parameters: ``reweight``; ``similarity`` (``temperature`` = 1, ``true_prob`` =
    None); ``label_smoothing`` (``epsilon`` = 0.1); ``top_k`` (``k``, required).

    Raises:
        TypeError: a spec of another type.
        ValueError: unknown name or key, a missing ``k``, or a value out of range.

    Example:
        >>> get({"name": "top_k", "k": 2})
        TeacherTransform(name='top_k', params={'k': 2})
    """
    if isinstance(spec, TeacherTransform):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"`teacher_transform` must be a name or a mapping, got {type(spec).__name__}"
        )
    params = dict(spec)
    name = check_choice("teacher_transform", params.pop("name", None), NAMES)
    unknown = sorted(set(params) - set(_PARAMETERS[name]))
    if unknown:
        allowed = sorted(_PARAMETERS[name]) or "none"
        raise ValueError(
            f"teacher transform {name!r} got unknown key(s) {unknown}; allowed: {allowed}"
        )
    values = {**_PARAMETERS[name], **params}
    _check_params(name, values)
    return TeacherTransform(name, values)


def _check_params(name: str, values: dict[str, Any]) -> None:
    if name == "top_k":
        if values["k"] is None:
            raise ValueError("teacher transform 'top_k' needs key 'k'")
        check_positive_int("k", values["k"])
    if name == "label_smoothing":
        check_number("epsilon", values["epsilon"], low=0.0, high=1.0)
    if name == "similarity":
        check_number("temperature", values["temperature"], low=0.0, low_open=True)
        if values["true_prob"] is not None:
            check_number(
                "true_prob", values["true_prob"], low=0.0, high=1.0, low_open=True, high_open=True
            )


def logit_layer_vectors(model: torch.nn.Module) -> torch.Tensor:
    """The class vectors of a classifier: the ``(K, d)`` weight of its last ``nn.Linear``.

    Raises:
        ValueError: the model has no ``nn.Linear`` layer.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 3))
        >>> logit_layer_vectors(net).shape
        torch.Size([3, 8])
    """
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not layers:
        raise ValueError(f"`model` ({type(model).__name__}) has no nn.Linear logit layer")
    return layers[-1].weight.detach()
