"""Which student to ship: the best variant that beats the baseline beyond the seed noise.

Rule (``docs/seeds.md``): among the variants whose paired 95 % interval against the baseline
lies above 0, take the one with the best mean; any variant whose paired interval against that
one contains 0 is *indistinguishable* from it, and the smallest of those that also beat the
baseline is shipped. Without a clear winner the baseline is shipped. One seed gives no
intervals, so the best mean is named with that caveat.

Example:
    >>> recommend(results)["ship"]  # doctest: +SKIP
    'pairwise_l2'
"""

from __future__ import annotations

from typing import Any

from distill.experiment.compare import headline_metric, paired_difference


def recommend(results: dict[str, Any]) -> dict[str, Any] | None:
    """The recommendation of a results mapping (single-seed or combined over seeds).

    Returns:
        ``{"ship", "metric", "seeds", "clear", "indistinguishable", "no_clear_difference",
        "sentence"}`` (``clear``: the shipped variant beats the baseline beyond the noise),
        or None when the run has no variants.
    """
    rows = results["variants"]
    if not rows:
        return None
    metric = headline_metric(results)
    baseline = next((row for row in rows if row["name"] == results["baseline"]), rows[0])
    if "per_seed" not in baseline:
        return _single_seed(rows, baseline, metric)
    winners = [row for row in rows if row.get("paired") and _above(row["paired"])]
    unclear = [row["name"] for row in rows if row.get("paired") and not row["paired"]["clear"]]
    if not winners:
        return _decision(baseline, metric, results, False, [], unclear)
    best = max(winners, key=lambda row: row["metrics"][metric])
    tied = [row for row in rows if row is not best and _tied(row, best, metric)]
    ship = min([best, *(row for row in tied if row in winners)], key=lambda row: row["size_bytes"])
    tied = [row["name"] for row in [best, *tied] if row is not ship]
    return _decision(ship, metric, results, True, tied, unclear)


def _above(paired: dict[str, Any]) -> bool:
    return paired["clear"] and paired["delta"] > 0


def _tied(row: dict[str, Any], best: dict[str, Any], metric: str) -> bool:
    paired = paired_difference(row["per_seed"][metric], best["per_seed"][metric])
    return paired["ci"] is not None and not paired["clear"]


def _decision(ship, metric, results, clear, tied, unclear) -> dict[str, Any]:
    seeds = len(results["seeds"])
    mean, std = ship["metrics"][metric], ship["std"][metric]
    paired = ship.get("paired")
    if clear:
        low, high = paired["ci"]
        sentence = (
            f"Ship {ship['name']}: {metric} {mean:.4f} ± {std:.4f} over {seeds} seeds, "
            f"{paired['delta']:+.4f} [95 % CI {low:+.4f}, {high:+.4f}] over the baseline "
            f"{results['baseline']} (better on {paired['wins']}/{paired['n']} seeds)."
        )
    else:
        sentence = (
            f"Ship the baseline {ship['name']} ({metric} {mean:.4f} ± {std:.4f}): no distilled "
            f"variant beats it beyond the noise of {seeds} seeds."
        )
    if tied:
        sentence += f" Indistinguishable from it: {', '.join(tied)}."
    return {
        "ship": ship["name"],
        "metric": metric,
        "seeds": seeds,
        "clear": clear,
        "indistinguishable": tied,
        "no_clear_difference": unclear,
        "sentence": sentence,
    }


def _single_seed(rows, baseline, metric: str) -> dict[str, Any]:
    best = max(rows, key=lambda row: row["metrics"][metric])
    delta = best["metrics"][metric] - baseline["metrics"][metric]
    sentence = (
        f"Best on this one seed: {best['name']} ({metric} {best['metrics'][metric]:.4f}, "
        f"{delta:+.4f} over {baseline['name']}); one seed has no interval, so rerun with "
        "--seeds 5 before shipping on a difference this size."
    )
    return {
        "ship": best["name"],
        "metric": metric,
        "seeds": 1,
        "clear": False,
        "indistinguishable": [],
        "no_clear_difference": [],
        "sentence": sentence,
    }
