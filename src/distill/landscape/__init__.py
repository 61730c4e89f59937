"""The loss-landscape lab: expected loss ``E_{t~D}[ρ(t − s)]`` against the student's value s.

Teacher distributions (:mod:`.distributions`), curves and minimisers (:mod:`.curves`), and the
figure (:mod:`.plot`). US 2023/0252281 A1, FIGS. 6–15; docs/formulas.md, "Expected-loss
landscape". Needs the ``report`` extra (scipy, matplotlib).
"""

from typing import TYPE_CHECKING

from distill._extras import lazy_exports

DEFAULT_NODES = 10_001
"""Quadrature nodes of a parametric teacher distribution."""

# scipy and matplotlib (the ``report`` extra) load when a name is first used.
__getattr__ = lazy_exports(
    "distill.landscape",
    {
        "LossLandscape": ("distill.landscape.curves", ("report",)),
        "Minimiser": ("distill.landscape.curves", ("report",)),
        "expected_loss": ("distill.landscape.curves", ("report",)),
        "expected_loss_landscape": ("distill.landscape.curves", ("report",)),
        "huber_beta_for_prob_mean": ("distill.landscape.curves", ("report",)),
        "parse_loss": ("distill.landscape.curves", ("report",)),
        "TeacherDistribution": ("distill.landscape.distributions", ("report",)),
        "bimodal": ("distill.landscape.distributions", ("report",)),
        "empirical": ("distill.landscape.distributions", ("report",)),
        "normal": ("distill.landscape.distributions", ("report",)),
        "read_sample": ("distill.landscape.distributions", ("report",)),
        "skew_normal": ("distill.landscape.distributions", ("report",)),
        "skewed_laplace": ("distill.landscape.distributions", ("report",)),
        "plot_landscape": ("distill.landscape.plot", ("report",)),
    },
)

if TYPE_CHECKING:
    from distill.landscape.curves import (
        LossLandscape,
        Minimiser,
        expected_loss,
        expected_loss_landscape,
        huber_beta_for_prob_mean,
        parse_loss,
    )
    from distill.landscape.distributions import (
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
