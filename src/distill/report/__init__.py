"""Run reports: figures from plain rows/arrays, tables, a self-contained HTML page, summary.md.

Example:
    >>> from distill.report import Section, plot_reliability, run_sections, write_report
    >>> sections = run_sections(results, read_metrics("runs/demo/metrics.jsonl"))
    >>> sections.append(Section("Calibration", figures={"student": plot_reliability(p, y)}))
    >>> write_report("runs/demo", title="demo", sections=sections)
"""

from distill.report.curves import plot_curve_overlay
from distill.report.decision import comparison_rows, recommendation_section
from distill.report.figures import (
    plot_ndcg_bars,
    plot_pair_scatter,
    plot_reliability,
    plot_soft_targets,
    plot_training_curves,
)
from distill.report.files import figure_png, read_metrics, save_figure
from distill.report.html import Section, render_html, render_markdown, run_sections, write_report
from distill.report.tables import html_table, markdown_table, results_rows

__all__ = [
    "Section",
    "comparison_rows",
    "figure_png",
    "html_table",
    "markdown_table",
    "plot_curve_overlay",
    "plot_ndcg_bars",
    "plot_pair_scatter",
    "plot_reliability",
    "plot_soft_targets",
    "plot_training_curves",
    "read_metrics",
    "recommendation_section",
    "render_html",
    "render_markdown",
    "results_rows",
    "run_sections",
    "save_figure",
    "write_report",
]
