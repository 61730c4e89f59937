"""Models: MLP scorers/classifiers, CTR towers, joint teacher/student model, and the registry
(``spec()`` → :func:`build`, :func:`save` / :func:`load`, :func:`count_parameters`,
:func:`size_bytes`)."""

from distill.models.compose import JointModel, StackedModel
from distill.models.ctr import (
    DeepCTRTower,
    Embedded,
    FieldEmbedding,
    WideAndDeep,
    WideAndDeepTower,
)
from distill.models.ctr_joint import GatedExpertTower, ctr_joint_model
from distill.models.language import NextTokenLM
from distill.models.mlp import MLP, DeepTower
from distill.models.registry import (
    BUILTIN_MODELS,
    build,
    count_parameters,
    load,
    save,
    size_bytes,
)
from distill.models.transformer import TransformerClassifier

__all__ = [
    "BUILTIN_MODELS",
    "MLP",
    "DeepCTRTower",
    "DeepTower",
    "Embedded",
    "FieldEmbedding",
    "GatedExpertTower",
    "JointModel",
    "NextTokenLM",
    "StackedModel",
    "TransformerClassifier",
    "WideAndDeep",
    "WideAndDeepTower",
    "build",
    "count_parameters",
    "ctr_joint_model",
    "load",
    "save",
    "size_bytes",
]
