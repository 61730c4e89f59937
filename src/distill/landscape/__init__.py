"""The loss-landscape lab: expected loss ``E_{t~D}[ρ(t − s)]`` against the student's value s.

Teacher distributions (:mod:`.distributions`), curves and minimisers (:mod:`.curves`), and the
figure (:mod:`.plot`). Patent FIGS. 6–15; FORMULAS §7.
"""

from distill.landscape.curves import (
    LossLandscape,
    Minimiser,
    expected_loss,
    expected_loss_landscape,
    huber_beta_for_prob_mean,
    parse_loss,
)
from distill.landscape.distributions import (
    DEFAULT_NODES,
    TeacherDistribution,
    bimodal,
    empirical,
    normal,
    read_sample,
    skew_normal,
    skewed_laplace,
)
from distill.landscape.plot import plot_landscape

__all__ = [
    "DEFAULT_NODES",
    "LossLandscape",
    "Minimiser",
    "TeacherDistribution",
    "bimodal",
    "empirical",
    "expected_loss",
    "expected_loss_landscape",
    "huber_beta_for_prob_mean",
    "normal",
    "parse_loss",
    "plot_landscape",
    "read_sample",
    "skew_normal",
    "skewed_laplace",
]
