"""Teacher sources: anything with ``predict(features, ids) -> raw logits`` (no grad).

Sources: an in-memory module (:class:`ModuleTeacher`), a saved model or pickled module
(:func:`load_teacher`), an ensemble (:class:`EnsembleTeacher`) and cached scores
(:class:`CachedScores`, written by :func:`score`).
"""

from distill.teachers.cache import CachedScores, StaleCacheError, fingerprint_dataset, score
from distill.teachers.modules import (
    EnsembleTeacher,
    ModuleTeacher,
    Teacher,
    fingerprint_module,
    load_teacher,
)

__all__ = [
    "CachedScores",
    "EnsembleTeacher",
    "ModuleTeacher",
    "StaleCacheError",
    "Teacher",
    "fingerprint_dataset",
    "fingerprint_module",
    "load_teacher",
    "score",
]
