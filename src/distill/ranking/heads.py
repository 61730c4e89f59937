"""Quantile heads (US 2023/0252281 FIG. 4 / FIG. 5) and two-step median distillation
(US 2023/0252281 ¶0124).

The student gets K extra outputs, one per quantile τ_k, trained with ``pinball(τ_k)`` by
:func:`distill.ranking.quantile_ranking_loss` (pairwise) or
:func:`distill.ranking.quantile_distillation_loss` (pointwise).
Serving uses only the main score: the heads shape the shared representation during training.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from distill import penalties
from distill._reduce import Reduction, reduce_loss
from distill._validation import check_choice, check_number, check_pair, check_positive_int
from distill.ranking.losses import PenaltySpec

HeadMode = Literal["affine", "linear"]


def _check_taus(taus: Sequence[float]) -> tuple[float, ...]:
    if isinstance(taus, (int, float)) or len(taus) == 0:
        raise ValueError(f"`taus` must be a non-empty sequence of quantiles, got {taus!r}")
    return tuple(check_number("taus", tau, low=0.0, high=1.0) for tau in taus)


class QuantileHeads(nn.Module):
    """K quantile outputs: affine on the score (FIG. 4) or linear on the last hidden layer (FIG. 5).

    ``affine``: ``q_k(x) = a_k · s(x) + b_k``, initialised to ``a = 1``, ``b = 0`` (every head
    starts at the student's score). ``linear``: ``q_k(x) = w_k · h(x) + c_k``, a separate head
    on the student's last hidden layer ``h`` (``nn.Linear`` initialisation;
    :func:`with_quantile_heads` starts them as copies of the model's own head).

    Args:
        taus: K quantiles in ``[0, 1]``, one per head (kept as ``.taus``).
        mode: ``"affine"`` or ``"linear"``.
        in_features: width of ``h`` (``"linear"`` only).

    Shapes:
        forward: ``(N,)`` scores (affine) or ``(N, in_features)`` hidden (linear) → ``(N, K)``.

    Raises:
        ValueError: empty or out-of-range ``taus``; ``in_features`` missing for ``"linear"`` or
            given for ``"affine"``; unknown ``mode``.

    Reference: US 2023/0252281 FIG. 4 (affine heads), FIG. 5 (linear heads);
    docs/formulas.md#quantile-heads.

    Example:
        >>> QuantileHeads([0.25, 0.75])(torch.tensor([1.0, 2.0]))
        tensor([[1., 1.],
                [2., 2.]], grad_fn=<AddBackward0>)
    """

    def __init__(
        self, taus: Sequence[float], *, mode: HeadMode = "affine", in_features: int | None = None
    ) -> None:
        super().__init__()
        self.taus = _check_taus(taus)
        self.mode = check_choice("mode", mode, ("affine", "linear"))
        num_heads = len(self.taus)
        if mode == "linear":
            if in_features is None:
                raise ValueError("`in_features` is required when `mode` is 'linear'")
            self.linear = nn.Linear(check_positive_int("in_features", in_features), num_heads)
        else:
            if in_features is not None:
                raise ValueError(f"`in_features` applies only to mode 'linear', got {in_features}")
            self.scale = nn.Parameter(torch.ones(num_heads))
            self.bias = nn.Parameter(torch.zeros(num_heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "linear":
            return self.linear(x)
        if x.ndim != 1:
            raise ValueError(f"affine heads take scores of shape (N,), got {tuple(x.shape)}")
        return x.unsqueeze(-1) * self.scale + self.bias

    def extra_repr(self) -> str:
        return f"taus={list(self.taus)}, mode={self.mode!r}"


class QuantileHeadModel(nn.Module):
    """A student with quantile heads: ``(score, quantile_scores)`` in training, ``score`` in eval.

    Built by :func:`with_quantile_heads`; ``.model`` is the unchanged serving student (export
    it, not the wrapper), ``.heads`` the :class:`QuantileHeads`, ``.taus`` their quantiles.

    Shapes:
        training: inputs → ``((N,), (N, K))``; eval: the model's own output.

    Reference: US 2023/0252281 FIG. 4 / FIG. 5 (heads only shape training; serving uses the score).

    Example:
        >>> wrapped = with_quantile_heads(nn.Sequential(nn.Linear(2, 1), nn.Flatten(0)), [0.5])
        >>> tuple(wrapped.eval()(torch.zeros(3, 2)).shape)
        (3,)
    """

    def __init__(self, model: nn.Module, heads: QuantileHeads) -> None:
        super().__init__()
        self.model = model
        self.heads = heads

    @property
    def taus(self) -> tuple[float, ...]:
        return self.heads.taus

    def forward(self, *inputs: Any, **options: Any) -> Any:
        if not self.training:
            return self.model(*inputs, **options)
        if self.heads.mode == "affine":
            score = self.model(*inputs, **options)
            return score, self.heads(score)
        hidden = self.model.forward_features(*inputs, **options)
        return self.model.head(hidden).squeeze(-1), self.heads(hidden)


def with_quantile_heads(
    model: nn.Module, taus: Sequence[float], mode: HeadMode = "affine"
) -> QuantileHeadModel:
    """Wrap a scoring student so that training also yields K quantile scores.

    ``forward`` returns ``(score (N,), quantile_scores (N, K))`` in training mode and the
    model's own output in ``eval()`` (serving and export are unchanged by the heads).
    ``"linear"`` needs ``model.forward_features(x)`` (last hidden layer), ``model.num_features``
    and ``model.head`` (``nn.Linear`` with one output, so ``score = head(h)``); its K heads start
    as copies of ``model.head``, so every ``q_k`` starts at the score.

    Args:
        model: the student; forward gives ``(N,)`` scores.
        taus: K quantiles in ``[0, 1]``.
        mode: ``"affine"`` (FIG. 4) or ``"linear"`` (FIG. 5).

    Returns:
        A :class:`QuantileHeadModel` (``.model`` is the serving student, ``.taus`` the quantiles).

    Raises:
        TypeError: ``"linear"`` on a model without ``forward_features``/``num_features``/``head``.
        ValueError: bad ``taus`` or ``mode``; a head with more than one output.

    Reference: US 2023/0252281 FIG. 4 / FIG. 5; docs/formulas.md#quantile-heads.

    Example:
        >>> student = with_quantile_heads(nn.Sequential(nn.Linear(3, 1), nn.Flatten(0)), [0.5])
        >>> [tuple(out.shape) for out in student(torch.zeros(4, 3))]
        [(4,), (4, 1)]
    """
    check_choice("mode", mode, ("affine", "linear"))
    if mode == "affine":
        return QuantileHeadModel(model, QuantileHeads(taus, mode="affine"))
    missing = [
        name for name in ("forward_features", "num_features", "head") if not hasattr(model, name)
    ]
    if missing or not isinstance(model.head, nn.Linear):
        raise TypeError(
            "mode 'linear' needs a model with `forward_features`, `num_features` and an "
            f"nn.Linear `head`; {type(model).__name__} lacks {missing or ['an nn.Linear head']}"
        )
    if model.head.out_features != 1:
        raise ValueError(f"`model.head` must have 1 output, got {model.head.out_features}")
    heads = QuantileHeads(taus, mode="linear", in_features=model.num_features)
    with torch.no_grad():
        heads.linear.weight.copy_(model.head.weight.expand_as(heads.linear.weight))
        heads.linear.bias.fill_(float(model.head.bias[0]) if model.head.bias is not None else 0.0)
    return QuantileHeadModel(model, heads)


class TwoStepMedian(nn.Module):
    """Two-step median distillation: learn the teacher's median with L1, then pull smoothly to it.

    Step 1: ``median_model`` (e.g. a copy of the student, :meth:`from_student`) is trained with
    ``L1 = mean |t − m(x)|`` (:meth:`median_loss`), whose minimiser is the median of the
    teacher's signal given x. :meth:`freeze` then holds it fixed. Step 2: the student is
    trained with a smooth penalty ``ρ(m(x) − s(x))`` (Huber, SmeLU, log-cosh; :meth:`student_loss`),
    a smooth loss whose minimum is at the median. For the pairwise form, pass
    ``two_step.median(x)`` as the teacher scores of
    :func:`distill.ranking.pairwise_distillation_loss`.

    Args:
        median_model: module mapping features to ``(N,)`` scores.
        penalty: the smooth step-2 penalty, anything :func:`distill.penalties.get` accepts.

    Raises:
        RuntimeError: step 1 after :meth:`freeze`, or step 2 before it.

    Reference: US 2023/0252281 ¶0124; docs/formulas.md#quantile-heads.

    Example:
        >>> two_step = TwoStepMedian(nn.Sequential(nn.Linear(2, 1), nn.Flatten(0)))
        >>> x, t = torch.randn(8, 2), torch.randn(8)
        >>> two_step.median_loss(x, t).backward()  # step 1 (optimise median_model), then:
        >>> loss = two_step.freeze().student_loss(torch.zeros(8, requires_grad=True), x)
    """

    def __init__(self, median_model: nn.Module, *, penalty: PenaltySpec = "huber"):
        super().__init__()
        self.median_model = median_model
        self.penalty = penalties.get(penalty)
        self.frozen = False

    @classmethod
    def from_student(cls, student: nn.Module, *, penalty: PenaltySpec = "huber") -> TwoStepMedian:
        """Step 1 on a deep copy of the student (the student itself stays untouched)."""
        return cls(copy.deepcopy(student), penalty=penalty)

    def median_loss(self, features: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
        """Step 1: ``mean |t − m(x)|`` (the teacher is detached)."""
        if self.frozen:
            raise RuntimeError("the median is frozen; `median_loss` belongs to step 1")
        median = self.median_model(features)
        check_pair("teacher_scores", teacher_scores, "median", median)
        return F.l1_loss(median, teacher_scores.detach())

    def freeze(self) -> TwoStepMedian:
        """End step 1: no more gradients into the median model, which is put in eval mode."""
        self.median_model.requires_grad_(False).eval()
        self.frozen = True
        return self

    @torch.no_grad()
    def median(self, features: torch.Tensor) -> torch.Tensor:
        """The fixed median targets ``m(x)`` (after :meth:`freeze`)."""
        if not self.frozen:
            raise RuntimeError("call `freeze()` after step 1 before using the median")
        return self.median_model(features)

    def student_loss(
        self, student_scores: torch.Tensor, features: torch.Tensor, *, reduction: Reduction = "mean"
    ) -> torch.Tensor:
        """Step 2: ``ρ(m(x) − s(x))`` with the smooth penalty, reduced."""
        median = self.median(features)
        check_pair("student_scores", student_scores, "median", median)
        return reduce_loss(self.penalty(median - student_scores), reduction)

    def extra_repr(self) -> str:
        return f"penalty={self.penalty!r}, frozen={self.frozen}"
