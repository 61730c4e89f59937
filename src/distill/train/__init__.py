"""Training engine: ``fit`` (one loop), objectives, checkpoints, DDP helpers, joint training."""

from distill.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from distill.train.distributed import (
    DistributedContext,
    all_gather_tensors,
    all_reduce_mean,
    setup_distributed,
)
from distill.train.evaluation import evaluate, predict
from distill.train.intermediate import IntermediateObjective, IntermediateStudent
from distill.train.joint import JointObjective
from distill.train.logging import MetricsLog, read_metrics
from distill.train.loop import FitResult, NonFiniteLossError, fit
from distill.train.objective import Objective, make_term
from distill.train.options import TrainOptions
from distill.train.schedule import warmup_cosine, warmup_cosine_factor
from distill.train.terms import (
    BinaryKDTerm,
    KDTerm,
    LabelsTerm,
    ListwiseTerm,
    LogitMatchingTerm,
    PairwiseTerm,
    PointwiseTerm,
    QuantileHeadsTerm,
)

__all__ = [
    "BinaryKDTerm",
    "DistributedContext",
    "FitResult",
    "IntermediateObjective",
    "IntermediateStudent",
    "JointObjective",
    "KDTerm",
    "LabelsTerm",
    "ListwiseTerm",
    "LogitMatchingTerm",
    "MetricsLog",
    "NonFiniteLossError",
    "Objective",
    "PairwiseTerm",
    "PointwiseTerm",
    "QuantileHeadsTerm",
    "TrainOptions",
    "all_gather_tensors",
    "all_reduce_mean",
    "evaluate",
    "fit",
    "load_checkpoint",
    "make_term",
    "predict",
    "read_metrics",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "setup_distributed",
    "warmup_cosine",
    "warmup_cosine_factor",
]
