"""The run-config schema: pydantic sections with ``extra="forbid"`` (see ``distill.config``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from distill._validation import _interval, check_number

Track = Literal["classification", "ranking", "ctr"]
DEFAULT_METRIC = {"classification": "accuracy", "ranking": "ndcg@10", "ctr": "auc"}


def _in_interval(low=None, high=None, *, low_open=False, high_open=False):
    """An AfterValidator that words range errors like ``distill._validation``."""

    def check(value: float) -> float:
        try:
            return check_number(
                "value", value, low=low, high=high, low_open=low_open, high_open=high_open
            )
        except (TypeError, ValueError) as error:
            raise ValueError(str(error).removeprefix("`value` ")) from None

    check.interval = _interval(low, high, low_open, high_open)  # shown in docs/config.md
    return AfterValidator(check)


def _check_penalty(spec: Any) -> Any:
    """Validate a penalty spec with ``distill.penalties.get`` (a name or a mapping)."""
    from distill import penalties

    if not isinstance(spec, (str, dict)):
        raise ValueError(f"must be a penalty name or table, got {spec!r}")
    penalties.get(spec)
    return spec


def _check_transform(spec: Any) -> Any:
    """Validate a teacher-transform spec with ``distill.teacher_transforms.get``."""
    from distill import teacher_transforms

    if not isinstance(spec, (str, dict)):
        raise ValueError(f"must be a teacher-transform name or table, got {spec!r}")
    teacher_transforms.get(spec)
    return spec


def _path_component(name: str) -> str:
    """A name used as one folder of the run (``runs/<name>``, ``students/<variant>``)."""
    if name in (".", ".."):
        raise ValueError(f"must be a single folder name, not '.' or '..', got {name!r}")
    return name


Number = Annotated[float, Field(strict=True)]  # an int or a float; `true` is not 1
Flag = Annotated[bool, Field(strict=True)]  # `true` or `false`, not 1 or "yes"
Positive = Annotated[Number, _in_interval(0, math.inf, low_open=True, high_open=True)]
NonNegative = Annotated[Number, _in_interval(0, math.inf, high_open=True)]
UnitClosed = Annotated[Number, _in_interval(0, 1)]
UnitOpen = Annotated[Number, _in_interval(0, 1, low_open=True, high_open=True)]
PositiveInt = Annotated[int, Field(ge=1, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
PenaltySpec = Annotated[Any, AfterValidator(_check_penalty)]
TransformSpec = Annotated[Any, AfterValidator(_check_transform)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class RunSection(_Section):
    """Name, track, seed(s) and output folder of the run (results go to ``out_dir/name``).

    ``seeds``: train the teacher and every variant once per seed (weights, batch order) on
    one fixed data split, and compare the variants over seeds (``docs/seeds.md``); unset, the
    run trains once with ``seed``.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$"), AfterValidator(_path_component)]
    track: Track
    seed: NonNegativeInt = 0
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)] | None = None
    out_dir: str = "runs"
    metric: Literal["accuracy", "auc", "ndcg@10", "loss"] | None = None
    baseline: str | None = None

    @property
    def directory(self) -> Path:
        return Path(self.out_dir) / self.name

    @model_validator(mode="after")
    def _unique_seeds(self) -> RunSection:
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"`seeds` must be distinct, got {self.seeds}")
        return self


class DataSection(_Section):
    """Where the data comes from, how it is split and what the student sees.

    ``source``: ``builtin`` (``name`` + ``options``), ``letor`` (SVMlight with ``qid:`` or a
    LightGBM ``<file>.query``; ``path`` may be a folder with train/vali/test.txt such as MSLR
    ``Fold1/``), ``libsvm``, ``criteo`` (TSV/CSV) or ``table`` (CSV/TSV/Parquet; ``columns``
    maps ``label`` and optionally ``group``, ``id``, the numeric ``features`` list and the
    ``categorical`` list, hashed into ``options.hash_buckets`` ids). Files: one ``path`` split
    by ``split`` (train/valid/test fractions, groups whole, clicks stratified), or ``train``
    with optional ``valid`` and ``test`` files; a missing one is split off ``train`` with the
    ``split`` fractions of the parts it makes. ``label_fraction``: share of training rows whose
    hard labels students see. See docs/data.md.
    ``split_seed``: seed of the split and of the labeled rows (default: ``run.seed``); a
    multi-seed run keeps it fixed while the training seed varies.
    """

    source: Literal["builtin", "letor", "libsvm", "criteo", "table"] = "builtin"
    name: str | None = None
    path: str | None = None
    train: str | None = None
    valid: str | None = None
    test: str | None = None
    options: dict[str, Any] = {}
    columns: dict[Literal["features", "label", "group", "id", "categorical"], str | list[str]] = {}
    split: list[UnitOpen] = [0.7, 0.15, 0.15]
    label_fraction: Annotated[Number, _in_interval(0, 1, low_open=True)] = 1.0
    split_seed: NonNegativeInt | None = None
    student_features: str | list[str | int] | None = None

    @model_validator(mode="after")
    def _source_fields(self) -> DataSection:
        given = [key for key in ("path", "train", "valid", "test") if getattr(self, key)]
        if self.source == "builtin":
            if not self.name:
                raise ValueError("`name` is required when source = 'builtin'")
            if given:
                raise ValueError(f"`{given[0]}` is not read when source = 'builtin'")
        elif not self.path and not self.train:
            raise ValueError(
                f"`path` is required when source = {self.source!r} (one file, split by `split`), "
                "or give `train` with optional `valid` and `test` files"
            )
        elif self.path and len(given) > 1:
            raise ValueError(
                f"`{given[1]}` cannot go with `path`: give one file (`path`) or one per split "
                "(`train` with optional `valid`, `test`)"
            )
        cut = 3 - bool(self.valid) - bool(self.test)  # parts cut from the one (train) file
        if len(self.split) != 3 and not (cut == 2 and len(self.split) == 2):
            raise ValueError(
                "`split` must be 3 fractions (train, valid, test), or 2 (train and the missing "
                f"one) when one of `valid`/`test` is a file, got {self.split}"
            )
        if not math.isclose(sum(self.split), 1.0, abs_tol=1e-6):
            raise ValueError(f"`split` must sum to 1, got {self.split}")
        for key in ("features", "categorical"):
            if isinstance(self.columns.get(key), str):
                raise ValueError(f"`columns.{key}` must be a list of column names")
        return self


class ModelSpec(_Section):
    """A model of ``distill.models``: its class name and keyword arguments."""

    name: str
    kwargs: dict[str, Any] = {}


class TrainSection(_Section):
    """Optimisation options, converted to ``distill.train.TrainOptions`` (same names).

    ``teacher_mode``: ``offline`` reads the teacher's cached scores (no teacher forward while
    training); ``online`` runs the teacher on every batch.
    """

    epochs: PositiveInt = 10
    max_steps: PositiveInt | None = None
    batch_size: PositiveInt = 128
    groups_per_batch: PositiveInt | None = None
    lr: Positive = 1e-3
    weight_decay: NonNegative = 0.01
    warmup_steps: NonNegativeInt = 0
    min_lr_ratio: UnitClosed = 0.0
    grad_clip: Positive | None = 1.0
    bf16: Flag = False
    eval_every: PositiveInt | None = None
    patience: PositiveInt | None = None
    min_delta: NonNegative = 0.0
    stop_pair_agreement: UnitClosed | None = None
    checkpoint_every: PositiveInt | None = None
    log_every: PositiveInt = 10
    tensorboard: Flag = False
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    eval_batch_size: PositiveInt = 4096
    teacher_mode: Literal["offline", "online"] = "offline"


FEATURE_KINDS = ("lightgbm", "xgboost", "catboost", "onnx", None)
"""Teacher kinds that read a chosen set of feature columns (None: told from the file)."""
TeacherKind = Literal["distill", "scores", "lightgbm", "xgboost", "catboost", "onnx", "torchscript"]


class TeacherSection(_Section):
    """The teacher: a model to train (``model``), or one the user already has.

    ``kind`` (told from the file when left out): ``distill`` (a saved model folder, a
    ``.safetensors`` file or, with ``trust``, a pickle), ``lightgbm``/``xgboost``/``catboost``
    (raw margins), ``onnx``, ``torchscript`` (also ``torch.export`` ``.pt2``), or ``scores``:
    logits stored in the data's table (``column``, or ``columns`` for C classes) or in a file
    keyed by example id (``path`` + ``key`` + ``column``/``columns``). ``features``: the
    columns a GBDT/ONNX teacher reads (default: all, whatever the student sees). ``trust`` (as
    the CLI's ``--trust``) allows a pickled ``path`` and import-path model names
    (``"pkg.module:Class"``) anywhere in the run, since both run code (docs/guarantees.md).
    """

    kind: TeacherKind | None = None
    path: str | None = None
    model: ModelSpec | None = None
    train: TrainSection = TrainSection()
    trust: Flag = False
    column: str | None = None
    columns: Annotated[list[str], Field(min_length=1)] | None = None
    key: str | None = None
    features: str | list[str | int] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> TeacherSection:
        if self.model is not None:
            if self.path is not None or self.kind not in (None, "distill"):
                raise ValueError("a teacher to train (`model`) takes no `path` or `kind`")
        elif self.source_kind == "scores":
            self._check_scores()
        elif self.path is None:
            raise ValueError(
                "give `model` (a teacher to train), `path` (a teacher file) or, with "
                "kind = 'scores', `column`/`columns` (scores in the data's table)"
            )
        if self.source_kind != "scores" and (self.column or self.columns or self.key):
            raise ValueError("`column`, `columns` and `key` apply to kind = 'scores' only")
        if self.features is not None and self.source_kind not in FEATURE_KINDS:
            raise ValueError(
                f"a {self.source_kind} teacher reads what it is given; choosing `features` "
                "applies to kinds lightgbm, xgboost, catboost and onnx"
            )
        return self

    def _check_scores(self) -> None:
        if (self.column is None) == (self.columns is None):
            raise ValueError("kind = 'scores' needs exactly one of `column` or `columns`")
        if (self.path is None) != (self.key is None):
            raise ValueError(
                "a scores file needs both `path` and `key` (the id column); scores in the "
                "data's table need neither"
            )

    @property
    def source_kind(self) -> str | None:
        """``kind``, with ``distill`` for a model to train and ``scores`` when columns are
        named; None: told from the file at load time."""
        if self.model is not None:
            return "distill"
        if self.kind is None and (self.column or self.columns):
            return "scores"
        return self.kind

    @property
    def score_columns(self) -> list[str]:
        """The data-table columns holding the teacher's logits (none for other kinds)."""
        if self.source_kind != "scores" or self.path is not None:
            return []
        return [self.column] if self.column is not None else list(self.columns)


class StudentSection(_Section):
    """The student architecture shared by all variants."""

    model: ModelSpec


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


class JointSection(_Section):
    """Joint model with dynamic distillation (docs/formulas.md#binary-kd).

    One model: a shared embedding bottom, a deep teacher tower (``teacher_hidden``) and the
    student tower of ``[student.model]`` (a ``WideAndDeep``: its ``embed_dim``/``hidden``).
    The student learns ``W·H(σ(teacher/T), s) + (1 − W)·H(y, s)`` (``soft_weight`` is W):
    from the saved teacher's cached scores for ``warmup_steps`` (static), then from the
    concurrent teacher (dynamic). ``gate``: how the two labels mix, ``ŷ = g·ŷ_dynamic + (1 −
    g)·ŷ_static``: ``switch`` (g jumps from 0 to 1), ``linear`` / ``cosine`` (g ramps over
    ``gate_steps``), ``learned`` (a per-example gate tower of ``gate_hidden`` on the shared
    embedding). ``teacher_experts`` > 0: the teacher tower is a gated mixture of that many deep
    towers (docs/methods.md).
    """

    soft_weight: UnitClosed = 0.5
    temperature: Positive = 1.0
    warmup_steps: NonNegativeInt = 0
    teacher_hidden: Annotated[list[PositiveInt], Field(min_length=1)] = [256, 128, 64]
    gate: Literal["switch", "linear", "cosine", "learned"] = "switch"
    gate_steps: NonNegativeInt = 0
    gate_hidden: Annotated[list[PositiveInt], Field(min_length=1)] = [16]
    teacher_experts: NonNegativeInt = 0

    @model_validator(mode="after")
    def _ramp_needs_steps(self) -> JointSection:
        if self.gate in ("linear", "cosine") and self.gate_steps == 0:
            raise ValueError(f"`gate_steps` must be >= 1 for gate = {self.gate!r}")
        return self


class RunConfig(_Section):
    """A whole run: see the example configs in ``examples/``."""

    run: RunSection
    data: DataSection
    teacher: TeacherSection
    student: StudentSection
    train: TrainSection = TrainSection()
    variants: list[Variant] = []
    joint: JointSection | None = None

    @model_validator(mode="after")
    def _variants(self) -> RunConfig:
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique, got {duplicates} twice")
        if self.run.baseline is not None and self.run.baseline not in names:
            raise ValueError(f"`run.baseline` {self.run.baseline!r} is not a variant: {names}")
        if not self.variants and self.joint is None:
            raise ValueError("give at least one [[variants]] table or a [joint] table")
        if self.teacher.score_columns and self.data.source != "table":
            raise ValueError(
                "teacher scores in a data column need data.source = 'table', got "
                f"{self.data.source!r}; give a scores file instead (teacher.path + key)"
            )
        for variant in self.variants:
            kd = variant.objective.kd
            unlabeled = self.data.label_fraction < 1 and variant.transfer == "all"
            if unlabeled and kd is not None and kd.teacher_transform is not None:
                raise ValueError(
                    f"variant {variant.name!r}: kd.teacher_transform needs the class of every "
                    "row; use transfer = 'labeled' with data.label_fraction < 1"
                )
        return self

    @model_validator(mode="after")
    def _intermediate_online(self) -> RunConfig:
        uses = [v.name for v in self.variants if v.objective.intermediate is not None]
        if uses and self.train.teacher_mode != "online":
            raise ValueError(
                f"variants {uses} use [variants.objective.intermediate], which runs the teacher "
                "module: set train.teacher_mode = 'online'"
            )
        return self

    @property
    def metric(self) -> str:
        """The track's headline metric (``run.metric`` or the track default)."""
        return self.run.metric or DEFAULT_METRIC[self.run.track]

    @property
    def split_seed(self) -> int:
        """The seed of the data split: ``data.split_seed``, else ``run.seed``."""
        return self.run.seed if self.data.split_seed is None else self.data.split_seed

    @property
    def baseline(self) -> str | None:
        """The variant every other one is compared to (default: the first one)."""
        return self.run.baseline or (self.variants[0].name if self.variants else None)
