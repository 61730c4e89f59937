"""distill: knowledge distillation for classifiers, CTR models and rankers.

Public API re-exports only. Each block belongs to one module family; keep ``__all__`` in step.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

# --- temperature, losses (core losses) ---
from distill.losses import (
    binary_kd_loss,
    kd_loss,
    logit_matching_loss,
    pointwise_distillation_loss,
)
from distill.temperature import (
    ensemble_probs,
    log_softmax_t,
    sigmoid_t,
    smooth_labels,
    softmax_t,
    top_k_probs,
)

__all__ = [*__all__, "ensemble_probs", "log_softmax_t", "sigmoid_t", "smooth_labels", "softmax_t"]
__all__ = [*__all__, "top_k_probs", "kd_loss", "binary_kd_loss", "logit_matching_loss"]
__all__ = [*__all__, "pointwise_distillation_loss"]

# --- ranking (pairwise distillation, quantile heads) ---
from distill.ranking import (
    pair_agreement,
    pairwise_distillation_loss,
    pairwise_logistic_loss,
    quantile_distillation_loss,
    quantile_ranking_loss,
)
from distill.ranking_objective import RankingObjective

__all__ = [*__all__, "pairwise_distillation_loss", "pairwise_logistic_loss", "pair_agreement"]
__all__ = [*__all__, "quantile_ranking_loss", "quantile_distillation_loss", "RankingObjective"]

# --- data, teachers ---
from distill.data import Dataset, load_builtin
from distill.teachers import CachedScores, EnsembleTeacher, ModuleTeacher, load_teacher, score

__all__ = [*__all__, "CachedScores", "Dataset", "EnsembleTeacher", "ModuleTeacher"]
__all__ = [*__all__, "load_builtin", "load_teacher", "score"]

# --- models, metrics ---
from distill.models import MLP, DeepTower, JointModel, WideAndDeep

__all__ += ["MLP", "DeepTower", "JointModel", "WideAndDeep"]

# --- landscape, report (layer 5) ---
# Used as namespaces (``from distill.landscape import ...``, ``from distill.report import ...``),
# not re-exported here: they load scipy.stats and matplotlib, which ``import distill`` should not.

# --- export ---
from distill.export import compress, compression_table, export_model  # noqa: E402

__all__ = [*__all__, "compress", "compression_table", "export_model"]

# --- train ---
from distill.train import FitResult, JointObjective, Objective, TrainOptions, fit  # noqa: E402

__all__ = [*__all__, "FitResult", "JointObjective", "Objective", "TrainOptions", "fit"]

# --- config, runs ---
from distill.config import ConfigError, RunConfig, load_config  # noqa: E402
from distill.train.runs import run_experiment  # noqa: E402

__all__ = [*__all__, "ConfigError", "RunConfig", "load_config", "run_experiment"]
