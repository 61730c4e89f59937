"""The objective tables of a run config: one section per loss term, and a variant."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from distill.config.fields import (
    Flag,
    NonNegative,
    NonNegativeInt,
    PenaltySpec,
    Positive,
    PositiveInt,
    TransformSpec,
    UnitClosed,
    UnitOpen,
    _path_component,
    _Section,
)


class LabelsTerm(_Section):
    """Hard-label loss: ``ce``, ``bce`` or ``pairwise_logistic`` (``auto``: by track)."""

    weight: NonNegative = 1.0
    loss: Literal["auto", "ce", "bce", "pairwise_logistic"] = "auto"


class KDTerm(_Section):
    """Hinton KD (docs/formulas.md#classification-kd); ``alpha`` weights the soft term against the
    labels.

    ``teacher_transform``: a synthetic teacher (Tang et al. 2020, docs/methods.md) such as
    ``"reweight"``, ``{name = "similarity", true_prob = 0.9}``, ``{name = "label_smoothing",
    epsilon = 0.1}`` or ``{name = "top_k", k = 3}``; it needs the true class of every row.
    """

    weight: NonNegative = 1.0
    temperature: Positive = 4.0
    alpha: UnitClosed = 0.9
    teacher_transform: TransformSpec | None = None


class BinaryKDTerm(_Section):
    """Binary/CTR KD E(x|T) (docs/formulas.md#binary-kd); ``soft_weight`` is W.

    ``W·H(σ(v/T), σ(z)) + (1 − W)·H(y, σ(z))``; ``weight`` is the term's weight in the sum.

    ``temper_student``: divide the student's logit by T in the soft term as well, so at T > 1
    the student is not pushed to overconfident click rates (see ``distill.binary_kd_loss``).
    """

    weight: NonNegative = 1.0
    temperature: Positive = 1.0
    soft_weight: UnitClosed = 0.5
    temper_student: bool = False


class LogitMatchingTerm(_Section):
    """Logit matching mean((z − v)²) (Ba & Caruana 2014), optionally centred per example."""

    weight: NonNegative = 1.0
    center: Flag = False


class PointwiseTerm(_Section):
    """ρ(teacher − student) per example (US 2023/0252281 ¶0052, ¶0103)."""

    weight: NonNegative = 1.0
    penalty: PenaltySpec = "squared"
    signal: Literal["logit", "prob"] = "logit"


class PairwiseTerm(_Section):
    """ρ(Δ_teacher − Δ_student) over pairs inside groups (docs/formulas.md#pairs).

    ``max_pairs_per_group``: sample at most that many pairs per group afresh every step
    (uniformly, without replacement); unset uses all pairs. ``signal = "rank"``: teacher ranks
    against the student's soft ranks at ``temperature`` (docs/methods.md). ``weight`` is not
    portable across penalties: pinball with τ = 0.5 is half of ``absolute``.
    """

    weight: NonNegative = 1.0
    penalty: PenaltySpec = "squared"
    signal: Literal["logit", "prob", "pair_prob", "squared", "rank"] = "logit"
    pairs: Literal["all", "unequal"] = "all"
    normalize: Literal["pair", "group"] = "pair"
    max_pairs_per_group: PositiveInt | None = None
    temperature: Positive = 1.0


class ListwiseTerm(_Section):
    """ListNet cross-entropy of the teacher's and student's softmax over each group at T."""

    weight: NonNegative = 1.0
    temperature: Positive = 1.0


class QuantileHeadsTerm(_Section):
    """K quantile heads trained with pinball(τ_k) (docs/formulas.md#quantile-heads,
    US 2023/0252281 FIG. 4/5).

    ``target``: the teacher's pair differences (``pairwise``) or its scores (``pointwise``).
    ``max_pairs_per_group`` (pairwise target only) samples at most that many pairs per group
    afresh every step; unset uses all pairs (likewise in ``pairwise``).
    """

    weight: NonNegative = 1.0
    taus: Annotated[list[UnitOpen], Field(min_length=1)] = [0.1, 0.5, 0.9]
    mode: Literal["affine", "linear"] = "affine"
    target: Literal["pairwise", "pointwise"] = "pairwise"
    signal: Literal["logit", "prob", "pair_prob"] = "logit"
    pairs: Literal["all", "unequal"] = "all"
    max_pairs_per_group: PositiveInt | None = None

    @model_validator(mode="after")
    def _bound_needs_pairs(self) -> QuantileHeadsTerm:
        if self.max_pairs_per_group is not None and self.target == "pointwise":
            raise ValueError("`max_pairs_per_group` applies only to target = 'pairwise'")
        return self


class TwoStepMedianTerm(_Section):
    """Two-step median distillation (US 2023/0252281 ¶0124, docs/formulas.md#quantile-heads).

    Step 1: a copy of the student learns the teacher's median with L1 for ``median_steps``
    steps (default: as long as the student). Step 2: the student follows that fixed median
    with the smooth ``penalty`` (huber, log_cosh, smelu, ...), on the scores (``pointwise``) or
    on pair differences (``pairwise``). Combines only with a ``labels`` term.
    """

    weight: NonNegative = 1.0
    penalty: PenaltySpec = "huber"
    target: Literal["pointwise", "pairwise"] = "pointwise"
    median_steps: PositiveInt | None = None


LayerPair = Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]


class IntermediateLayers(_Section):
    """Layer names of one model for ``[variants.objective.intermediate]`` (``distill.hooks``)."""

    embedding: str | None = None
    hidden: list[str] = []
    attention: list[str] = []


class IntermediateTerm(_Section):
    """TinyBERT-style layer terms (``docs/intermediate.md``); needs ``teacher_mode = "online"``.

    ``hidden``/``attention``/``embedding`` are the weights of the layer losses (0 leaves one
    out); ``layer_map`` is ``"uniform"`` or ``[[student_layer, teacher_layer], ...]``;
    ``intermediate_steps`` > 0 trains the layer terms alone for that many steps, then the
    other terms of the objective alone (TinyBERT's two stages). Layer names default to the
    models' ``layer_names()``.
    """

    layer_map: Literal["uniform"] | list[LayerPair] = "uniform"
    hidden: NonNegative = 1.0
    attention: NonNegative = 1.0
    embedding: NonNegative = 0.0
    attention_kind: Literal["mse", "kl"] = "mse"
    intermediate_steps: NonNegativeInt = 0
    student_layers: IntermediateLayers | None = None
    teacher_layers: IntermediateLayers | None = None


class Objective(_Section):
    """The weighted terms one student is trained with (at least one)."""

    labels: LabelsTerm | None = None
    kd: KDTerm | None = None
    binary_kd: BinaryKDTerm | None = None
    logit_matching: LogitMatchingTerm | None = None
    pointwise: PointwiseTerm | None = None
    pairwise: PairwiseTerm | None = None
    listwise: ListwiseTerm | None = None
    quantile_heads: QuantileHeadsTerm | None = None
    two_step_median: TwoStepMedianTerm | None = None
    intermediate: IntermediateTerm | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Objective:
        if not self.terms():
            raise ValueError("needs at least one term (labels, kd, binary_kd, pointwise, ...)")
        if self.two_step_median is not None and set(self.terms()) - {"labels", "two_step_median"}:
            raise ValueError("`two_step_median` combines only with a `labels` term")
        return self

    def terms(self) -> dict[str, BaseModel]:
        """The terms that are set, by name."""
        return {
            name: getattr(self, name) for name in type(self).model_fields if getattr(self, name)
        }

    @property
    def reads_labels(self) -> bool:
        """Whether a term reads hard labels (labels, kd, binary_kd, pairs = "unequal")."""
        terms = self.terms()
        if {"labels", "kd", "binary_kd"} & set(terms):
            return True
        return any(getattr(term, "pairs", None) == "unequal" for term in terms.values())

    @property
    def uses_teacher(self) -> bool:
        return any(name != "labels" for name in self.terms())


class Variant(_Section):
    """One student to train: a name and its objective.

    ``transfer``: ``labeled`` trains on the labeled training rows only; ``all`` also uses the
    unlabeled remainder (``data.label_fraction < 1``) as a transfer set for the teacher terms
    (class labels of unlabeled rows are ignored; with other labels the objective must not
    read labels).
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.=-]+$"), AfterValidator(_path_component)]
    objective: Objective
    transfer: Literal["labeled", "all"] = "labeled"
