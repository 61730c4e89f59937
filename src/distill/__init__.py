"""distill: knowledge distillation for classifiers, CTR models and rankers.

Public API, re-exports only. ``import distill`` needs torch, numpy and safetensors alone: the
names below that need an optional extra (config, data readers, the score cache, runs, export)
are imported on first use, and a missing extra raises an error naming its ``pip install`` line
(docs/index.md, "Install"). Submodules used as namespaces: ``distill.penalties``,
``distill.nn``, ``distill.ranking`` (pairs, heads), ``distill.data``, ``distill.teachers``,
``distill.models``, ``distill.metrics``, ``distill.train``, and (behind extras)
``distill.config``, ``distill.experiment``, ``distill.export``, ``distill.landscape``,
``distill.report``.
"""

from typing import TYPE_CHECKING

from distill._extras import lazy_exports
from distill.data import Dataset, load_builtin
from distill.intermediate import (
    attention_distillation_loss,
    embedding_distillation_loss,
    hidden_distillation_loss,
    hint_loss,
)
from distill.losses import (
    binary_kd_loss,
    kd_loss,
    logit_matching_loss,
    pointwise_distillation_loss,
)
from distill.models import MLP, DeepTower, JointModel, TransformerClassifier, WideAndDeep
from distill.ranking import (
    RankingObjective,
    listwise_distillation_loss,
    pair_agreement,
    pairwise_distillation_loss,
    pairwise_logistic_loss,
    quantile_distillation_loss,
    quantile_ranking_loss,
)
from distill.teachers import EnsembleTeacher, ModuleTeacher, load_teacher
from distill.temperature import (
    ensemble_probs,
    log_softmax_t,
    sigmoid_t,
    smooth_labels,
    softmax_t,
    top_k_probs,
)
from distill.train import (
    FitResult,
    IntermediateObjective,
    JointObjective,
    Objective,
    TrainOptions,
    fit,
)

# The one place the version is written; pyproject.toml reads it (setuptools dynamic version).
__version__ = "0.1.0"

# Names whose modules need an optional extra (or are slow to import): loaded on first use.
__getattr__ = lazy_exports(
    "distill",
    {
        "CachedScores": ("distill.teachers.cache", ("data",)),
        "score": ("distill.teachers.cache", ("data",)),
        "ConfigError": ("distill.config", ("cli",)),
        "RunConfig": ("distill.config", ("cli",)),
        "load_config": ("distill.config", ("cli",)),
        "run_experiment": ("distill.experiment", ("cli", "data")),
        "compress": ("distill.export", ()),
        "compression_table": ("distill.export", ()),
        "export_model": ("distill.export", ()),
    },
)

if TYPE_CHECKING:
    from distill.config import ConfigError, RunConfig, load_config
    from distill.experiment import run_experiment
    from distill.export import compress, compression_table, export_model
    from distill.teachers.cache import CachedScores, score


__all__ = [
    "MLP",
    "CachedScores",
    "ConfigError",
    "Dataset",
    "DeepTower",
    "EnsembleTeacher",
    "FitResult",
    "IntermediateObjective",
    "JointModel",
    "JointObjective",
    "ModuleTeacher",
    "Objective",
    "RankingObjective",
    "RunConfig",
    "TrainOptions",
    "TransformerClassifier",
    "WideAndDeep",
    "__version__",
    "attention_distillation_loss",
    "binary_kd_loss",
    "compress",
    "compression_table",
    "embedding_distillation_loss",
    "ensemble_probs",
    "export_model",
    "fit",
    "hidden_distillation_loss",
    "hint_loss",
    "kd_loss",
    "listwise_distillation_loss",
    "load_builtin",
    "load_config",
    "load_teacher",
    "log_softmax_t",
    "logit_matching_loss",
    "pair_agreement",
    "pairwise_distillation_loss",
    "pairwise_logistic_loss",
    "pointwise_distillation_loss",
    "quantile_distillation_loss",
    "quantile_ranking_loss",
    "run_experiment",
    "score",
    "sigmoid_t",
    "smooth_labels",
    "softmax_t",
    "top_k_probs",
]
