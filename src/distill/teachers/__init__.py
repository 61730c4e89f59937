"""Teacher sources: anything with ``predict(features, ids) -> raw logits`` (no grad).

Sources: an in-memory module (:class:`ModuleTeacher`), an ensemble (:class:`EnsembleTeacher`),
stored scores (a column of the data, :class:`ScoreColumnTeacher`; a file keyed by id,
:class:`ScoresFileTeacher`), model files of LightGBM, XGBoost, CatBoost, ONNX and TorchScript
(:func:`load_teacher` picks by ``kind``) and cached scores (:class:`CachedScores`, written by
:func:`score`). See docs/teachers.md.
"""

from distill.teachers._common import TeacherSize
from distill.teachers.cache import (
    CachedScores,
    StaleCacheError,
    fingerprint_dataset,
    predict_dataset,
    score,
)
from distill.teachers.exported import OnnxTeacher, TorchScriptTeacher
from distill.teachers.gbdt import CatBoostTeacher, LightGBMTeacher, XGBoostTeacher
from distill.teachers.loading import TEACHER_KINDS, detect_kind, load_teacher
from distill.teachers.modules import (
    EnsembleTeacher,
    ModuleTeacher,
    Teacher,
    fingerprint_module,
    load_module_teacher,
)
from distill.teachers.scores import ScoreColumnTeacher, ScoresFileTeacher
from distill.teachers.stream_columns import StreamedScoreColumns

__all__ = [
    "TEACHER_KINDS",
    "CachedScores",
    "CatBoostTeacher",
    "EnsembleTeacher",
    "LightGBMTeacher",
    "ModuleTeacher",
    "OnnxTeacher",
    "ScoreColumnTeacher",
    "ScoresFileTeacher",
    "StaleCacheError",
    "StreamedScoreColumns",
    "Teacher",
    "TeacherSize",
    "TorchScriptTeacher",
    "XGBoostTeacher",
    "detect_kind",
    "fingerprint_dataset",
    "fingerprint_module",
    "load_module_teacher",
    "load_teacher",
    "predict_dataset",
    "score",
]
