"""The run-config schema: pydantic sections with ``extra="forbid"`` (see ``distill.config``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from distill.config.fields import (
    DEFAULT_METRIC,
    Flag,
    NonNegative,
    NonNegativeInt,
    Number,
    Positive,
    PositiveInt,
    Track,
    UnitClosed,
    UnitOpen,
    _in_interval,
    _path_component,
    _Section,
)
from distill.config.objective import Variant


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
    multi-seed run keeps it fixed while the training seed varies. ``scores_dir`` (streamed
    data): a local folder for the teacher's score shards (``<scores_dir>/<split>/``) instead of
    ``_scores/`` beside each split's shards, for read-only or remote shards.
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
    streaming: bool = False
    shuffle_buffer: PositiveInt = 100_000
    scores_dir: str | None = None

    @model_validator(mode="after")
    def _streamed(self) -> DataSection:
        """Streamed shards (docs/streaming.md): Parquet tables given per split, all labeled."""
        if not self.streaming:
            if self.scores_dir is not None:
                raise ValueError(
                    "`scores_dir` is for streamed data (score shards); set streaming = true"
                )
            return self
        if self.source != "table":
            raise ValueError(f"`streaming` needs source = 'table' (Parquet), got {self.source!r}")
        missing = [key for key in ("train", "valid", "test") if not getattr(self, key)]
        if self.path or missing:
            raise ValueError(
                "`streaming` reads `train`, `valid` and `test` shard sets (a folder, glob or "
                f"file each; streamed data is not split), missing {missing or ['train']}"
            )
        if self.label_fraction < 1.0:
            raise ValueError(f"`streaming` needs label_fraction = 1, got {self.label_fraction}")
        return self

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
    sparse_embeddings: bool = False
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
        if self.data.streaming:
            self._check_streamed()
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

    def _check_streamed(self) -> None:
        """What a streamed run supports: ctr/ranking, no joint model (docs/streaming.md)."""
        if self.run.track not in ("ctr", "ranking"):
            raise ValueError(
                f"data.streaming runs the ctr and ranking tracks, not {self.run.track!r}"
            )
        if self.joint is not None:
            raise ValueError("data.streaming: the [joint] model is not available on streamed data")

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
