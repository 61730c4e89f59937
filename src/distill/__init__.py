"""distill: knowledge distillation for classifiers, CTR models and rankers.

Public API, re-exports only. Submodules used as namespaces: ``distill.penalties``,
``distill.nn``, ``distill.ranking`` (pairs, heads), ``distill.data``, ``distill.teachers``,
``distill.models``, ``distill.metrics``, ``distill.train``, ``distill.export``, and (not
imported here, as they load scipy.stats and matplotlib) ``distill.landscape``,
``distill.report``.
"""

from distill.config import ConfigError, RunConfig, load_config
from distill.data import Dataset, load_builtin
from distill.experiment import run_experiment
from distill.export import compress, compression_table, export_model
from distill.losses import (
    binary_kd_loss,
    kd_loss,
    logit_matching_loss,
    pointwise_distillation_loss,
)
from distill.models import MLP, DeepTower, JointModel, WideAndDeep
from distill.ranking import (
    RankingObjective,
    pair_agreement,
    pairwise_distillation_loss,
    pairwise_logistic_loss,
    quantile_distillation_loss,
    quantile_ranking_loss,
)
from distill.teachers import CachedScores, EnsembleTeacher, ModuleTeacher, load_teacher, score
from distill.temperature import (
    ensemble_probs,
    log_softmax_t,
    sigmoid_t,
    smooth_labels,
    softmax_t,
    top_k_probs,
)
from distill.train import FitResult, JointObjective, Objective, TrainOptions, fit

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "CachedScores",
    "ConfigError",
    "Dataset",
    "DeepTower",
    "EnsembleTeacher",
    "FitResult",
    "JointModel",
    "JointObjective",
    "ModuleTeacher",
    "Objective",
    "RankingObjective",
    "RunConfig",
    "TrainOptions",
    "WideAndDeep",
    "__version__",
    "binary_kd_loss",
    "compress",
    "compression_table",
    "ensemble_probs",
    "export_model",
    "fit",
    "kd_loss",
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
