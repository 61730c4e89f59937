"""Run configs: a pydantic schema for TOML files, ``--set`` overrides and a TOML writer.

A config names the run, the data, the teacher, the student and the student *variants* to
compare (each a weighted sum of objective terms). Every key is checked before any training:
a mistyped key, a wrong type or an out-of-range value raises :class:`ConfigError`, whose lines
read ``variants.2.objective.pairwise.penalty.tau: must be in (0, 1), got 1.5``.

This module imports only pydantic, the standard library and layer-1 modules (penalties), so
``distill.train.fit`` never depends on it (``fit`` takes plain options, not a config).

Example:
    >>> cfg = load_config("examples/classification.toml", overrides=["train.epochs=2"])
    >>> cfg.run.track
    'classification'
"""

from distill.config.fields import DEFAULT_METRIC
from distill.config.loading import (
    ConfigError,
    apply_overrides,
    config_to_toml,
    load_config,
    parse_config,
    write_config,
)
from distill.config.objective import (
    BinaryKDTerm,
    KDTerm,
    LabelsTerm,
    ListwiseTerm,
    LogitMatchingTerm,
    Objective,
    PairwiseTerm,
    PointwiseTerm,
    QuantileHeadsTerm,
    TwoStepMedianTerm,
    Variant,
)
from distill.config.schema import (
    DataSection,
    JointSection,
    ModelSpec,
    RunConfig,
    RunSection,
    StudentSection,
    TeacherSection,
    TrainSection,
)

__all__ = [
    "DEFAULT_METRIC",
    "BinaryKDTerm",
    "ConfigError",
    "DataSection",
    "JointSection",
    "KDTerm",
    "LabelsTerm",
    "ListwiseTerm",
    "LogitMatchingTerm",
    "ModelSpec",
    "Objective",
    "PairwiseTerm",
    "PointwiseTerm",
    "QuantileHeadsTerm",
    "RunConfig",
    "RunSection",
    "StudentSection",
    "TeacherSection",
    "TrainSection",
    "TwoStepMedianTerm",
    "Variant",
    "apply_overrides",
    "config_to_toml",
    "load_config",
    "parse_config",
    "write_config",
]
