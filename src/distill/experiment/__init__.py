"""Runs from a config: teacher → scores → student variants → results (``distill run``)."""

from distill.experiment.results import gap_recovered
from distill.experiment.runner import (
    evaluate_model,
    run_experiment,
    run_joint,
    run_student,
    run_teacher,
    score_teacher,
)

__all__ = [
    "evaluate_model",
    "gap_recovered",
    "run_experiment",
    "run_joint",
    "run_student",
    "run_teacher",
    "score_teacher",
]
