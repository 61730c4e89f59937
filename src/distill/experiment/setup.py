"""From a validated run config to what :func:`distill.train.fit` takes: data, models, options.

Used by :mod:`distill.experiment.runner`; converts pydantic sections into plain objects so that
``fit`` never depends on the config schema (it takes plain options, not a config).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from distill import data as data_module
from distill import models
from distill.config import ConfigError, ModelSpec, Objective, RunConfig, Variant
from distill.config import TrainSection as TrainConfig
from distill.data import Dataset
from distill.experiment.inputs import read_splits
from distill.experiment.stream_inputs import stream_splits
from distill.train.intermediate import IntermediateObjective
from distill.train.objective import Objective as FitObjective
from distill.train.objective import make_term
from distill.train.options import TrainOptions
from distill.train.streaming import is_stream

IGNORE_LABEL = -100
"""Class label of unlabeled transfer-set rows (``cross_entropy``/``kd_loss`` ignore it)."""
LABEL_LOSS = {"classification": "ce", "ctr": "bce", "ranking": "pairwise_logistic"}


@dataclass
class RunData:
    """The splits of a run.

    Attributes:
        train: every training row with its label (the teacher trains on it).
        labeled: the rows whose labels students see (``data.label_fraction``).
        transfer: every training row; class labels of the unlabeled rows are
            ``IGNORE_LABEL`` (other labels are kept: only objectives that do not read labels
            may train on them, see :meth:`training_rows`).
        valid, test: validation and test rows.
        student_features: the columns students see (``Dataset.select_features`` spec).
    """

    train: Dataset
    labeled: Dataset
    transfer: Dataset
    valid: Dataset
    test: Dataset
    student_features: str | list[str | int] | None

    def student_view(self, dataset: Dataset) -> Dataset:
        """``dataset`` restricted to the student's columns."""
        spec = self.student_features
        return dataset if spec is None else dataset.select_features(spec)

    def training_rows(self, variant: Variant) -> Dataset:
        """The rows a variant trains on: the labeled ones, or all with ``transfer = "all"``.

        Raises:
            ConfigError: ``transfer = "all"`` over unlabeled rows whose labels are not class
                indices (so cannot be masked) with an objective that reads labels.
        """
        if variant.transfer == "labeled":
            return self.labeled
        partly_labeled = len(self.labeled) < len(self.train)
        if partly_labeled and not _is_classification(self.train) and variant.objective.reads_labels:
            raise ConfigError(
                [
                    f"variants.{variant.name}.transfer: 'all' with data.label_fraction < 1 "
                    "on non-class labels needs an objective that reads no labels "
                    "(no labels/kd/binary_kd term, no pairs = 'unequal')"
                ]
            )
        return self.transfer

    def labels(self, dataset: Any) -> torch.Tensor:
        """The labels of a split (a streamed table's read from its label column only)."""
        return dataset.read_labels() if is_stream(dataset) else dataset.labels

    def feature_sample(self, dataset: Any, rows: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """The first rows' student and full feature columns (a streamed table's first shard)."""
        if is_stream(dataset):
            head = dataset.head(rows)
        else:
            head = dataset.subset(torch.arange(min(rows, len(dataset))))
        return self.student_view(head).features, head.features

    def view_for(self, model: nn.Module, dataset: Dataset) -> Dataset:
        """The columns ``model`` reads: all of them when its ``in_features`` matches (or it
        has none, as id-based models), else the student's."""
        width = getattr(model, "in_features", feature_width(dataset))
        return dataset if width == feature_width(dataset) else self.student_view(dataset)


def load_run_data(cfg: RunConfig) -> RunData:
    """Read the data (see :func:`~distill.experiment.inputs.read_splits`), split what no file
    gives and pick the labeled rows, both seeded by ``cfg.split_seed`` (``data.split_seed``,
    else ``run.seed``), so the runs of a multi-seed comparison share one split.

    A teacher's score columns (``teacher.column(s)``) are read as extras, not features. With
    ``data.streaming`` the splits are StreamingTables (docs/streaming.md), every row labeled.
    """
    section = cfg.data
    if section.streaming:
        extras = cfg.teacher.score_columns
        train, valid, test = stream_splits(section, track=cfg.run.track, extras=extras)
        return RunData(train, train, train, valid, test, section.student_features)
    if cfg.teacher.score_columns:
        extras = {"extras": cfg.teacher.score_columns}
        section = section.model_copy(update={"options": section.options | extras})
    train, valid, test = read_splits(section, track=cfg.run.track, seed=cfg.split_seed)
    labeled, transfer = train, train
    if section.label_fraction < 1.0:
        fraction = section.label_fraction
        labeled, unlabeled = data_module.split(train, (fraction, 1 - fraction), seed=cfg.split_seed)
        if cfg.run.track == "classification":  # only class indices can be masked; never grades
            transfer = _mask_labels(train, unlabeled)
    features = section.student_features or train.meta.get("student_features")
    return RunData(train, labeled, transfer, valid, test, features)


def _is_classification(dataset: Dataset) -> bool:
    """Class-index labels (int64); the run's data gets them only on the classification track."""
    return dataset.labels.dtype == torch.int64


def _mask_labels(train: Dataset, unlabeled: Dataset) -> Dataset:
    labels = train.labels.clone()
    labels[torch.isin(train.ids, unlabeled.ids)] = IGNORE_LABEL
    return dataclasses.replace(train, labels=labels)


def num_classes(dataset: Dataset) -> int:
    """Classes of a classification dataset (``meta["num_classes"]`` or max label + 1)."""
    return int(dataset.meta.get("num_classes", int(dataset.labels.max()) + 1))


def build_model(
    spec: ModelSpec,
    dataset: Dataset,
    track: str,
    *,
    seed: int,
    where: str,
    trust: bool = False,
    device: str | torch.device | None = None,
) -> nn.Module:
    """Build ``spec`` with weights drawn from ``seed``, filling sizes the data decides.

    ``trust`` allows an import-path model name (see :func:`distill.models.build`); ``device``
    ``"meta"`` checks the spec without allocating weights.

    Fills ``in_features`` (dense width), ``num_fields`` / ``num_embeddings`` (sparse ids) and,
    for classification, ``out_features`` (number of classes) when the model takes them and
    they are not given. The global RNG state is left untouched.

    Raises:
        ConfigError: the model rejects its kwargs (the message starts with ``where``, e.g.
            ``student.model``).
    """
    kwargs = dict(spec.kwargs)
    known = _init_parameters(spec.name)
    sizes = {"out_features": num_classes(dataset)} if track == "classification" else {}
    if dataset.is_sparse:
        sizes |= {"num_fields": feature_width(dataset), "num_embeddings": dataset.num_embeddings}
    else:
        sizes["in_features"] = feature_width(dataset)
    kwargs = {name: value for name, value in sizes.items() if name in known} | kwargs
    spec_dict = {"name": spec.name, "kwargs": kwargs}
    try:
        with torch.device(device or "cpu"):
            return build_seeded(seed, models.build, spec_dict, trust=trust)
    except (TypeError, ValueError) as error:
        raise ConfigError([f"{where}: {error}"]) from None
    except (NotImplementedError, RuntimeError):
        if device != "meta":
            raise
    # a constructor that reads tensor values cannot run on the meta device: check it on the CPU
    return build_model(spec, dataset, track, seed=seed, where=where, trust=trust)


def feature_width(dataset: Any) -> int:
    """Feature columns of a Dataset or a StreamingTable (``width``)."""
    return dataset.width if is_stream(dataset) else dataset.features.shape[1]


def build_seeded(seed: int, factory: Any, *args: Any, **kwargs: Any) -> nn.Module:
    """``factory(*args, **kwargs)`` with the torch RNG seeded, restoring the RNG afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(*args, **kwargs)


def _init_parameters(name: str) -> set[str]:
    cls = models.BUILTIN_MODELS.get(name)
    return set() if cls is None else set(inspect.signature(cls).parameters)


def train_options(
    section: TrainConfig, cfg: RunConfig, *, student_features: Any = None
) -> TrainOptions:
    """``TrainOptions`` from a ``[train]`` table, the run's seed, metric and resolved config."""
    values = section.model_dump(exclude={"teacher_mode"})
    return TrainOptions(
        **values,
        seed=cfg.run.seed,
        metric=cfg.metric,
        student_features=student_features,
        config=cfg.model_dump(mode="json", exclude_none=True),
    )


def fit_objective(
    objective: Objective,
    track: str,
    *,
    teacher: Any = None,
    sample: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> FitObjective:
    """The ``fit`` objective of a config ``[variants.objective]`` table.

    ``[variants.objective.intermediate]`` needs the online ``teacher`` source (a module) and
    ``sample``: a few training rows as the student and the teacher see them (run through both
    models before training, to check the layers and size the projections).
    """
    specs = []
    for name, term in objective.terms().items():
        if name == "intermediate":
            continue
        values = term.model_dump()
        if name == "labels" and values["loss"] == "auto":
            values["loss"] = LABEL_LOSS[track]
        if name == "quantile_heads":
            values["pairs"] = None if values.pop("target") == "pointwise" else values["pairs"]
        if name == "two_step_median":  # step 2: a smooth pull to the median "teacher"
            values.pop("median_steps")
            name = values.pop("target")
        specs.append({"name": name, **values})
    terms = [make_term(spec) for spec in specs]
    if objective.intermediate is not None:
        return _intermediate_objective(objective.intermediate, terms, teacher, sample)
    return FitObjective(terms)


def _intermediate_objective(section, terms, teacher: Any, sample) -> IntermediateObjective:
    module = getattr(teacher, "module", None)
    if not isinstance(module, nn.Module) or sample is None:
        raise ConfigError(
            ["variants.objective.intermediate: needs the teacher module (teacher_mode = 'online')"]
        )
    values = section.model_dump(exclude={"student_layers", "teacher_layers"})
    layers = {
        f"{what}_layers": None if names is None else names.model_dump()
        for what, names in (
            ("student", section.student_layers),
            ("teacher", section.teacher_layers),
        )
    }
    student_sample, teacher_sample = sample
    try:
        return IntermediateObjective(
            module,
            sample=student_sample,
            teacher_sample=teacher_sample,
            terms=terms,
            **values,
            **layers,
        )
    except (TypeError, ValueError) as error:
        raise ConfigError([f"variants.objective.intermediate: {error}"]) from None


def build_joint_model(cfg: RunConfig, train: Dataset, *, device: str = "cpu") -> nn.Module:
    """The ``[joint]`` model: shared embedding, teacher tower, and the student tower starting
    from the variants' initial student (``device="meta"`` only checks the tables)."""
    spec = cfg.student.model
    if spec.name != "WideAndDeep" or not train.is_sparse:
        raise ConfigError(
            [
                f"student.model.name: [joint] needs a 'WideAndDeep' student on id features, "
                f"got {spec.name!r}"
            ]
        )
    kwargs = dict(spec.kwargs)
    with torch.device(device):
        joint = build_seeded(
            cfg.run.seed,
            models.ctr_joint_model,
            train.num_embeddings,
            train.features.shape[1],
            embed_dim=kwargs.pop("embed_dim", 8),
            student_hidden=kwargs.pop("hidden", (64, 32)),
            teacher_hidden=cfg.joint.teacher_hidden,
            teacher_experts=cfg.joint.teacher_experts,
            gate_hidden=cfg.joint.gate_hidden if cfg.joint.gate == "learned" else None,
            **kwargs,
        )
    # The joint student starts from the variants' initial student (same seed, same keys), so
    # its paired difference to them measures the method, not the initialisation.
    student = build_model(
        spec, train, cfg.run.track, seed=cfg.run.seed, where="student.model", device=device
    )
    joint.student().load_state_dict(student.state_dict(), assign=device == "meta")
    return joint
