"""The report's first section: which student to ship and why, from plain results rows.

The decision itself (``distill.experiment.decide.recommend``) is made on the headline metric;
this section adds the reasons a reader needs next to it: size against the teacher, latency
with its spread (a speed-up is claimed only outside the noise), calibration, and the
variants that cannot be told apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distill.report.html import Section
from distill.report.tables import format_percent


def verdict(paired: Mapping[str, Any] | None) -> str:
    """ "better"/"worse" when the paired interval excludes 0, else "no clear difference".

    Example: ``verdict({"clear": False, "delta": 0.01})`` → ``"no clear difference"``
    """
    if paired is None:
        return "baseline"
    if not paired["clear"]:
        return "no clear difference"
    return "better" if paired["delta"] > 0 else "worse"


def delta_text(paired: Mapping[str, Any] | None, *, sep: str = " ") -> str:
    """``"+0.0120 [+0.0080, +0.0160]"`` (``sep`` before the interval); "–" for none."""
    if paired is None:
        return "–"
    if paired["ci"] is None:
        return f"{paired['delta']:+.4f}"
    low, high = paired["ci"]
    return f"{paired['delta']:+.4f}{sep}[{low:+.4f}, {high:+.4f}]"


def recommendation_section(
    results: Mapping[str, Any],
    decision: Mapping[str, Any],
    latency: Mapping[str, Mapping[str, Any]] | None = None,
    warnings: list[str] | None = None,
) -> Section:
    """ "Recommendation": the decision, then size, latency and calibration of the shipped model.

    Args:
        results: the ``results.json`` mapping (rows with ``metrics``, ``params``,
            ``size_bytes``; over seeds also ``std``, ``paired``, ``per_seed``).
        decision: ``distill.experiment.decide.recommend(results)``.
        latency: ``{model: {"median_ms", "low_ms", "high_ms", "batch", "threads"}}``.
        warnings: the run's warnings, listed last.

    Returns:
        A Section with the reasons as paragraphs and, over seeds, the comparison table.
    """
    rows = {row["name"]: row for row in results["variants"]}
    ship, teacher = rows[decision["ship"]], results.get("teacher")
    paragraphs = [decision["sentence"], _size(ship, teacher)]
    if latency and ship["name"] in latency:
        paragraphs.append(_latency(ship["name"], latency, teacher))
    paragraphs.append(_calibration(ship, rows.get(results["baseline"])))
    if decision["no_clear_difference"]:
        names = ", ".join(decision["no_clear_difference"])
        paragraphs.append(f"No clear difference from the baseline (interval contains 0): {names}.")
    paragraphs += [f"Warning: {warning}" for warning in warnings or []]
    tables = {}
    if "seeds" in results:
        caption = f"Comparison over {len(results['seeds'])} seeds ({decision['metric']})"
        tables[caption] = comparison_rows(results, decision["metric"])
    text = "\n\n".join(p for p in paragraphs if p)
    return Section("Recommendation", text=text, tables=tables)


def comparison_rows(results: Mapping[str, Any], metric: str) -> list[dict[str, Any]]:
    """Rows of the comparison: mean ± std, paired Δ with its interval, wins, verdict, gap."""
    rows = []
    for row in [results["teacher"], *results["variants"]]:
        paired = row.get("paired")
        mean, std = row["metrics"][metric], row["std"][metric]
        rows.append(
            {
                "model": row["name"],
                f"{metric} (mean ± std)": f"{mean:.4f} ± {std:.4f}",
                "Δ vs baseline [95 % CI]": delta_text(paired),
                "wins": "–" if paired is None else f"{paired['wins']}/{paired['n']}",
                "verdict": "teacher" if row is results["teacher"] else verdict(paired),
                "gap recovered [95 % CI]": format_percent(
                    row.get("gap_recovered"), row.get("gap_recovered_ci")
                ),
            }
        )
    return rows


def _size(ship, teacher) -> str:
    text = f"{ship['name']} has {ship['params']:,} parameters ({ship['size_bytes']:,} bytes)"
    if teacher is None or not teacher.get("size_bytes") or not ship["size_bytes"]:
        return text + "."
    ratio = teacher["size_bytes"] / ship["size_bytes"]
    return text + f", {ratio:.1f}× smaller than the teacher ({teacher['params']:,} parameters)."


def _latency(name: str, latency, teacher) -> str:
    mine = latency[name]
    text = (
        f"Latency {_spread(mine)} ms per batch of {mine['batch']} on {mine['threads']} "
        "thread(s) (median [10th–90th percentile] of interleaved calls)"
    )
    other = latency.get("teacher") if teacher is not None else None
    if other is None:
        return text + "."
    speed = speed_text(mine, other)
    if speed == "no clear difference":
        speed = "no clear speed difference from the teacher (the ranges overlap)"
    else:
        speed += " than the teacher"
    return f"{text}; teacher {_spread(other)} ms: {speed}."


def speed_text(mine: Mapping[str, Any], other: Mapping[str, Any]) -> str:
    """``"2.3× faster"``/``"1.4× slower"`` when the latency ranges (``low_ms``–``high_ms``) do
    not overlap, else ``"no clear difference"``: no speed-up is claimed inside the noise."""
    if mine["high_ms"] < other["low_ms"]:
        return f"{other['median_ms'] / mine['median_ms']:.1f}× faster"
    if mine["low_ms"] > other["high_ms"]:
        return f"{mine['median_ms'] / other['median_ms']:.1f}× slower"
    return "no clear difference"


def _spread(entry) -> str:
    return f"{entry['median_ms']:.3f} [{entry['low_ms']:.3f}–{entry['high_ms']:.3f}]"


def _calibration(ship, baseline) -> str:
    metrics = ship["metrics"]
    if "ece" not in metrics or baseline is None:
        return ""
    base = baseline["metrics"]
    return (
        f"Calibration: ECE {metrics['ece']:.4f} (baseline {base['ece']:.4f}), "
        f"log loss {metrics['nll']:.4f} (baseline {base['nll']:.4f})."
    )
