"""The self-contained ``report.html`` and the Markdown ``summary.md`` of a run directory."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from distill import __version__
from distill.report.curves import plot_curve_overlay
from distill.report.files import figure_png, write_atomic
from distill.report.tables import Rows, html_table, markdown_table, results_rows

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222;
       padding: 0 1em; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
nav ol { columns: 2; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
caption { text-align: left; font-weight: 600; padding: .3em 0; }
th, td { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
footer { margin-top: 3em; color: #777; font-size: .85em; }
"""


@dataclass
class Section:
    """One titled part of the report.

    Attributes:
        title: heading.
        text: paragraphs (blank-line separated plain text; escaped, not interpreted).
        tables: caption → rows (list of dicts); rendered in both the HTML and summary.md.
        figures: caption → matplotlib Figure; embedded in the HTML as base64 PNG.
    """

    title: str
    text: str = ""
    tables: Mapping[str, Rows] = field(default_factory=dict)
    figures: Mapping[str, Figure] = field(default_factory=dict)


def write_report(
    run_dir: str | Path, *, title: str, sections: Sequence[Section]
) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``summary.md`` into ``run_dir``, atomically.

    The HTML has inline CSS, every figure as a ``data:image/png;base64`` URI, and no external
    link, script or font, so it opens offline and can be mailed as one file.

    Args:
        run_dir: the run folder (created if missing).
        title: page title and top heading.
        sections: :class:`Section` list, in order.
    Returns:
        ``(html_path, summary_path)``.
    Example:
        >>> write_report("runs/demo", title="demo", sections=[Section("Results", tables={
        ...     "classification": [{"model": "kd", "accuracy": 0.93}]})])
    """
    run_dir = Path(run_dir)
    html_path = write_atomic(run_dir / "report.html", render_html(title, sections))
    summary_path = write_atomic(run_dir / "summary.md", render_markdown(title, sections))
    return html_path, summary_path


def render_html(title: str, sections: Sequence[Section]) -> str:
    """The report page as one HTML string (see :func:`write_report`)."""
    anchors = [_anchor(index, section.title) for index, section in enumerate(sections)]
    toc = "".join(
        f'<li><a href="#{anchor}">{html.escape(section.title)}</a></li>'
        for anchor, section in zip(anchors, sections, strict=True)
    )
    body = "\n".join(
        _section_html(anchor, section) for anchor, section in zip(anchors, sections, strict=True)
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<nav><ol>{toc}</ol></nav>\n{body}\n"
        f"<footer>distill {__version__} · {stamp}</footer>\n</body>\n</html>\n"
    )


def _anchor(index: int, title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return f"s{index}-{slug}"


def _section_html(anchor: str, section: Section) -> str:
    parts = [f'<section id="{anchor}">', f"<h2>{html.escape(section.title)}</h2>"]
    parts += [f"<p>{html.escape(p.strip())}</p>" for p in _paragraphs(section.text)]
    parts += [html_table(rows, caption=caption) for caption, rows in section.tables.items()]
    for caption, figure in section.figures.items():
        data = base64.b64encode(figure_png(figure)).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """``summary.md``: the title, each section's text and tables (figures are in the HTML;
    a section of figures only is left out rather than left empty)."""
    lines = [f"# {title}", ""]
    for section in sections:
        if not _paragraphs(section.text) and not section.tables:
            continue
        lines += [f"## {section.title}", ""]
        lines += [line for p in _paragraphs(section.text) for line in (p.strip(), "")]
        for caption, rows in section.tables.items():
            lines += [f"**{caption}**", "", markdown_table(rows)]
    return "\n".join(lines).rstrip() + "\n"


def run_sections(
    results: Mapping[str, Any], metric_rows: Sequence[Mapping[str, Any]] = ()
) -> list[Section]:
    """The standard sections of a run: results table, compression table, and one overlay of
    every model's training loss and validation metric (bands over seeds).

    Args:
        results: the ``results.json`` mapping (run-directory contract).
        metric_rows: the ``metrics.jsonl`` rows (:func:`distill.report.read_metrics`), with a
            ``seed`` key per row for a multi-seed run.
    Returns:
        Sections for :func:`write_report`; add track-specific figures (soft targets,
        reliability, NDCG bars, pair scatter) as further sections.
    """
    track, metric = results.get("track", "?"), results["metric"]
    text = f"Track: {track}. Headline metric: {metric}. Baseline: {results.get('baseline', '–')}."
    tables: dict[str, Rows] = {"Teacher and students": results_rows(results)}
    if results.get("compression"):
        tables["Compression"] = list(results["compression"])
    sections = [Section("Results", text=text, tables=tables)]
    if metric_rows:
        figure, notes = plot_curve_overlay(metric_rows, metric=metric)
        seeds = len(results.get("seeds", [None]))
        caption = (
            "Training loss and validation "
            + metric
            + (f" (mean over {seeds} seeds, band: lowest to highest seed)" if seeds > 1 else "")
        )
        note = f"Not drawn (a single point is no curve): {'; '.join(notes)}." if notes else ""
        sections.append(Section("Training curves", text=note, figures={caption: figure}))
    return sections
