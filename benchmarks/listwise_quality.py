"""Listwise (ListNet) and rank-signal distillation next to the pairwise losses.

The setting of ``benchmarks.ranking_quality`` (the demo's ranking recipe on
``synthetic_recommender``, normal and skewed noise, 5 % of the training groups' clicks
labelled, data seed = run seed). Students, every one but ``labels`` fitting the teacher's
scores of every training row (transfer set, no labels term):

- ``labels``: RankNet on the labelled clicks only;
- ``pairwise L2``: pairwise squared error on logit differences (patent Eq. 3), the reference;
- ``pairwise L1``: pairwise absolute error (Eq. 8);
- ``listwise T``: ListNet cross-entropy of the group softmaxes at T = 1 and T = 4;
- ``rank T=1``: pairwise squared error on rank differences (teacher ranks vs the student's soft
  ranks at T = 1).

Reported: test NDCG@10 mean ± std, paired NDCG@10 difference to ``pairwise L2`` and to
``labels`` (seeds with a difference > 0).

Run: ``python -m benchmarks.listwise_quality [--quick] [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._common import diff_text, fmt, markdown_table, mean_std
from benchmarks.ranking_demo import run_setting
from distill.cli.demo import ranking_config

NAME = "listwise_quality"
TITLE = "Listwise and rank-signal distillation vs pairwise"
REFERENCE = "pairwise_l2"
VARIANTS = {
    "labels": ("labeled", {"labels": {}}),
    "pairwise_l2": ("all", {"pairwise": {"penalty": "squared"}}),
    "pairwise_l1": ("all", {"pairwise": {"penalty": "absolute"}}),
    "listwise_T1": ("all", {"listwise": {"temperature": 1.0}}),
    "listwise_T4": ("all", {"listwise": {"temperature": 4.0}}),
    "rank_T1": ("all", {"pairwise": {"penalty": "squared", "signal": "rank"}}),
}


def track_configs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The demo's ranking config per noise, with this benchmark's variants and label share."""
    found = {}
    for noise in ("normal", "skewed"):
        raw = ranking_config(args.quick)
        raw["run"]["name"] = f"listwise_{noise}"
        raw["data"]["options"]["noise"] = noise
        raw["data"]["label_fraction"] = 0.5 if args.quick else args.label_fraction
        raw["variants"] = [
            {"name": name, "transfer": rows, "objective": terms}
            for name, (rows, terms) in VARIANTS.items()
        ]
        found[f"synthetic-{noise}"] = raw
    return found


def paired(per_seed: list[dict], name: str, reference: str) -> dict[str, Any]:
    """Per-seed NDCG@10 of ``name`` minus ``reference``: mean ± std and seeds above 0."""
    return _common.paired([{n: s[n]["ndcg@10"] for n in s} for s in per_seed], name, reference)


def summarise(per_seed: list[dict]) -> dict[str, Any]:
    """NDCG@10 per row, paired differences to pairwise L2 and to labels."""
    return {
        name: {
            "ndcg@10": mean_std(s[name]["ndcg@10"] for s in per_seed),
            "vs_pairwise_l2": paired(per_seed, name, REFERENCE),
            "vs_labels": paired(per_seed, name, "labels"),
        }
        for name in ("teacher", *VARIANTS)
    }


def table(part: dict[str, Any], seeds: int) -> str:
    rows = [
        [
            name,
            fmt(row["ndcg@10"], 1.0, 4),
            "0"
            if name == REFERENCE
            else diff_text(row["vs_pairwise_l2"], seeds, scale=1.0, digits=4),
            "0" if name == "labels" else diff_text(row["vs_labels"], seeds, scale=1.0, digits=4),
        ]
        for name, row in part.items()
    ]
    header = ["student", "NDCG@10", "Δ vs pairwise L2 (paired, > 0)", "Δ vs labels (paired, > 0)"]
    return markdown_table(header, rows)


def report(summary: dict[str, Any], args: argparse.Namespace) -> str:
    blocks = "\n\n".join(
        f"### {track}\n\n{table(part, args.seeds)}" for track, part in summary.items()
    )
    return f"""Mean ± std over {args.seeds} seeds (data draw, split, label subset, weights); the
recipe of "Ranking distillation quality" (`synthetic_recommender`, 1000 groups × 20 items,
student MLP(16) on 8 of 16 features, 500 steps × 16 groups, teacher MLP(128, 64), best
validation NDCG@10 checkpoint), {args.label_fraction:.0%} of the training groups' clicks
labelled. `labels` = RankNet on those; every other student fits the teacher's scores of every
training row without a labels term: `pairwise_l2` / `pairwise_l1` = pairwise squared /
absolute error of logit differences, `listwise_T` = ListNet cross-entropy of the teacher's and
student's softmax over each group at temperature T, `rank_T1` = pairwise squared error of rank
differences (teacher ranks vs student soft ranks at T = 1). Δ = paired NDCG@10 difference of
the same seed (seeds with Δ > 0); ", none" marks a mean difference smaller than its std (no
difference). {args.wall_s / 60:.0f} min on one thread.

{blocks}
"""


def extra_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label-fraction", type=float, default=0.05, help="labelled share")


def run_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every track's test metrics for one seed (data seed = run seed)."""
    found = {}
    with tempfile.TemporaryDirectory(prefix="listwise_") as folder:
        for track, raw in track_configs(args).items():
            raw["data"]["options"]["seed"] = seed
            found[track] = run_setting(raw, seed, Path(folder))
    return found


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every variant and seed, write the JSON and the BENCHMARKS.md section."""
    return _common.seeded_main(
        NAME,
        TITLE,
        argv,
        run_seed=run_seed,
        summarise=lambda per_seed: {
            track: summarise([s[track] for s in per_seed]) for track in per_seed[0]
        },
        report=report,
        extra=extra_options,
    )[0]


if __name__ == "__main__":
    main()
