"""Issue 8 item 3: ranking distillation — which pairwise loss, signal and pair set wins.

The setting is the one where distillation can help (BENCHMARKS.md, "Ranking demo"): the demo's
ranking recipe (``distill.cli.demo.ranking_config``: 1000 groups × 20 items, the student MLP(16)
sees 8 of 16 features, teacher MLP(128, 64) on every training click, 500 student steps) with
only ``--label-fraction`` (default 5 %) of the training groups' clicks labelled. Data:
``synthetic_recommender`` with normal and with skewed (log-normal) noise, data seed = run seed,
and any LETOR fold given by ``--letor DIR`` (``train.txt``, ``vali.txt``, ``test.txt``).
Every student is a variant of one run config (``distill.experiment.run_experiment``):

- ``labels``: RankNet on the labelled clicks only, the baseline;
- ``pointwise``: squared error to the teacher's logits;
- ``<penalty>/<signal>/<pairs>``: ``pairwise`` with penalty squared, absolute, huber or
  smoothed QR-9 (pinball averaged over τ = 0.1 … 0.9 with the softplus φ) on the logit, prob
  and pair_prob signals;
- ``qr9-affine`` / ``qr9-linear``: nine quantile heads (US 2023/0252281 FIG. 4 / FIG. 5); the linear
  heads do not train the main score, so that variant adds the pairwise absolute term on it;
- ``two-step/logit/all``: a median copy of the student (L1 to the teacher), then pairwise
  Huber to that frozen median (US 2023/0252281 ¶0124).

Pairs ``all``: the variant fits the teacher's scores of every training row (transfer set, no
labels term). Pairs ``unequal`` need labels, so those variants train on the labelled rows only.
``ceiling``: the same student fit to the generator's true clean logits of every training row.

Reported: test NDCG@10, MRR, AUC; paired NDCG@10 Δ to ``labels`` (seeds with Δ > 0); gap
recovered Δ / (teacher − labels) and "of reachable" Δ / Δ(ceiling), from the means.

Run: ``python -m benchmarks.ranking_quality [--quick] [--seeds 5] [--letor DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks import _common
from benchmarks._common import fmt, markdown_table, mean_std, percent
from benchmarks.ranking_demo import delta_text, run_all, summarise
from distill.cli.demo import QR9, ranking_config

NAME = "ranking_quality"
TITLE = "Ranking distillation quality"
SIGNALS = ("logit", "prob", "pair_prob")
PAIR_SETS = ("all", "unequal")
SCALE = {"logit": 1.0, "prob": 0.1, "pair_prob": 0.1}  # Huber/softplus width per signal
PENALTIES = ("squared", "absolute", "huber", "smoothed-qr9")
QUICK_VARIANTS = ("labels", "pointwise", "smoothed-qr9/logit/all", "qr9-linear/logit/unequal")
QUICK_VARIANTS += ("two-step/logit/all",)


def penalty_spec(name: str, signal: str) -> Any:
    """A pairwise penalty, its smooth zone scaled to the signal's range."""
    beta = SCALE[signal]
    if name == "huber":
        return {"name": "huber", "beta": beta}
    if name == "smoothed-qr9":
        return {"name": "smoothed_pinball", "tau": QR9, "smoother": "softplus", "beta": beta}
    return name


def variants(quick: bool) -> dict[str, tuple[str, dict[str, Any]]]:
    """Variant name → (training rows, config objective table)."""
    rows = {"all": "all", "unequal": "labeled"}
    found = {
        "labels": ("labeled", {"labels": {}}),
        "pointwise": ("all", {"pointwise": {"penalty": "squared"}}),
    }
    for signal in SIGNALS:
        for pairs in PAIR_SETS:
            for name in PENALTIES:
                term = {"penalty": penalty_spec(name, signal), "signal": signal, "pairs": pairs}
                found[f"{name}/{signal}/{pairs}"] = (rows[pairs], {"pairwise": term})
    for pairs in PAIR_SETS:
        heads = {"taus": QR9, "pairs": pairs}
        found[f"qr9-affine/logit/{pairs}"] = (
            rows[pairs],
            {"quantile_heads": {**heads, "mode": "affine"}},
        )
        found[f"qr9-linear/logit/{pairs}"] = (
            rows[pairs],
            {
                "quantile_heads": {**heads, "mode": "linear"},
                "pairwise": {"penalty": "absolute", "pairs": pairs},
            },
        )
    step = {"penalty": "huber", "target": "pairwise"}
    found["two-step/logit/all"] = ("all", {"two_step_median": step})
    if quick:
        return {name: found[name] for name in QUICK_VARIANTS}
    return found


def config_name(name: str) -> str:
    """The run-config variant name of a display name (``/`` is not allowed there)."""
    return name.replace("/", ".")


def track_config(args: argparse.Namespace, name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The demo's ranking config with this benchmark's data, label fraction and variants."""
    raw = ranking_config(args.quick)
    raw["run"]["name"] = name
    fraction = 0.5 if args.quick else args.label_fraction  # quick: a few groups only
    raw["data"] = {**raw["data"], **data, "label_fraction": fraction}
    raw["variants"] = [
        {"name": config_name(variant), "transfer": rows, "objective": terms}
        for variant, (rows, terms) in variants(args.quick).items()
    ]
    return raw


def track_configs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Track name → run config: synthetic normal and skewed noise, and the LETOR fold."""
    found = {}
    for noise in ("normal", "skewed"):
        raw = track_config(args, f"synthetic_{noise}", {})
        raw["data"]["options"] = {**raw["data"]["options"], "noise": noise}
        found[f"synthetic-{noise}"] = raw
    if args.letor is not None:
        letor = {"source": "letor", "path": str(args.letor), "name": None, "options": {}}
        letor["student_features"] = args.letor_student_features
        found["letor"] = track_config(args, "letor", letor)
    return found


def display(rows: dict[str, Any]) -> dict[str, Any]:
    """Rows keyed by display names (run-config variant names have ``.`` for ``/``)."""
    return {name.replace(".", "/"): value for name, value in rows.items()}


METRICS = ("ndcg@10", "mrr", "auc")
GAP_KEYS = ("gap_recovered", "of_reachable")


def track_table(part: dict[str, Any], seeds: int) -> str:
    """One data set's table: teacher, ceiling, then the students best NDCG@10 first."""
    rows = []
    for name in ("teacher", "truth", "ceiling", *part["ranking"]):
        if name not in part:
            continue
        row = part[name]
        delta = {"labels": "0", "truth": ""}.get(name)
        delta = delta_text(row, seeds) if delta is None else delta
        gaps = ["", ""] if name == "truth" else [percent(row[k]) for k in GAP_KEYS]
        shown = {"ceiling": "reachable ceiling", "truth": "true clean logits (16 features)"}
        shown = shown.get(name, name)
        rows.append([shown, *(fmt(row[m], 1.0, 4) for m in METRICS), delta, *gaps])
    header = ["student", "NDCG@10", "MRR", "AUC", "NDCG Δ vs labels (paired, > 0)"]
    return markdown_table([*header, "gap rec.", "of reach."], rows)


def penalty_variants(names: Sequence[str], position: int, option: str, pairs: str) -> list[str]:
    """The ``<penalty>/<signal>/<pairs>`` variants whose penalty (0) or signal (1) is ``option``."""
    parts = [name.split("/") for name in names if name.split("/")[0] in PENALTIES]
    return ["/".join(p) for p in parts if p[position] == option and p[2] == pairs]


def paired(per_seed: list[dict], first: Sequence[str], second: Sequence[str]) -> dict[str, Any]:
    """Per seed, mean NDCG@10 of ``first`` minus mean of ``second``: mean ± std, seeds > 0."""
    diffs = [
        statistics.fmean(s[n]["ndcg@10"] for n in first)
        - statistics.fmean(s[n]["ndcg@10"] for n in second)
        for s in per_seed
    ]
    return {"delta": mean_std(diffs), "positive": sum(d > 0 for d in diffs)}


GROUP_CONTRASTS = (  # (0 penalty | 1 signal, first, second), over the pairs-all variants
    (1, "logit", "prob"),
    (1, "logit", "pair_prob"),
    (0, "absolute", "squared"),
    (0, "huber", "squared"),
    (0, "smoothed-qr9", "squared"),
)


def contrasts(per_seed: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Paired comparisons between groups of variants (display names), per seed."""
    names = list(per_seed[0])
    unequal = [n for option in PENALTIES for n in penalty_variants(names, 0, option, "unequal")]
    plans = {
        "pairs all − unequal (same penalty, signal)": (
            [n.replace("unequal", "all") for n in unequal],
            unequal,
        )
    }
    for position, first, second in GROUP_CONTRASTS:
        plans[f"{first} − {second} (pairs all)"] = (
            penalty_variants(names, position, first, "all"),
            penalty_variants(names, position, second, "all"),
        )
    for name in (
        "pointwise",
        *(f"{n}/logit/all" for n in ("qr9-affine", "qr9-linear", "two-step")),
    ):
        plans[f"{name} − squared/logit/all"] = ([name], ["squared/logit/all"])
    return {
        text: paired(per_seed, first, second)
        for text, (first, second) in plans.items()
        if first and second and set(first + second) <= set(names)
    }


def contrast_table(found: dict[str, dict[str, Any]], seeds: int) -> str:
    """Paired contrasts: mean ± std of the per-seed difference, seeds > 0."""
    if not found:
        return ""
    rows = [[text, delta_text(row, seeds)] for text, row in found.items()]
    return markdown_table(["contrast", "NDCG@10 difference (paired, seeds > 0)"], rows)


def findings(part: dict[str, Any], seeds: int) -> str:
    """Plain-text winners: best overall, the ceiling, how many variants win every seed."""
    best = part["best"]
    lines = [
        f"best: `{best}`, NDCG@10 Δ {delta_text(part[best], seeds)} over labels, gap recovered "
        f"{percent(part[best]['gap_recovered'])}, {percent(part[best]['of_reachable'])} of "
        "reachable",
    ]
    if "ceiling" in part:
        lines.append(f"reachable ceiling Δ {delta_text(part['ceiling'], seeds)}")
    wins = [n for n in part["ranking"] if part[n]["positive"] == seeds and n != "labels"]
    lines.append(f"Δ > 0 in every seed: {len(wins)} of {len(part['ranking']) - 1} variants")
    for pairs, rows in (("all", "every training row"), ("unequal", "the labelled rows")):
        shares = [part[n]["of_reachable"] for n in part["ranking"] if n.endswith(f"/{pairs}")]
        if None not in shares and shares:
            lines.append(
                f"pairs `{pairs}` ({rows}): {percent(min(shares))} … {percent(max(shares))} of "
                "reachable"
            )
    return "\n".join(f"- {line}" for line in lines)


def report(summary: dict[str, Any], args: argparse.Namespace) -> str:
    """The BENCHMARKS.md section body: one table and findings per data set."""
    blocks = "\n\n".join(
        f"### {track}\n\n{track_table(part, args.seeds)}\n\n{findings(part, args.seeds)}\n\n"
        f"{contrast_table(part['contrasts'], args.seeds)}"
        for track, part in summary.items()
    )
    letor = (
        f"LETOR fold: `{args.letor}`."
        if args.letor
        else "No LETOR fold was given (none is available offline here); pass `--letor DIR`."
    )
    base = ranking_config(args.quick)
    return f"""Mean ± std over {args.seeds} seeds (data draw, split, label subset and weights
seeded). The recipe of `distill demo`'s ranking track (`distill.cli.demo.ranking_config`, see
"Ranking demo: when distillation helps"): `synthetic_recommender`
({base["data"]["options"]["n_groups"]} groups × 20 items, 16 features, normal or skewed noise),
split 0.6/0.2/0.2; teacher MLP(128, 64) on every training click
({base["teacher"]["train"]["max_steps"]} steps); student MLP(16) on features 1-8,
{base["train"]["max_steps"]} steps × 16 groups, AdamW 3e-3, best validation NDCG@10
checkpoint. Only {args.label_fraction:.0%} of the training groups' clicks are labelled.
`labels` = RankNet on those. Pairs `all` and `pointwise`, `qr9-*/all`, `two-step`: the
teacher's scores of **every** training row (transfer set), no labels term. Pairs `unequal`
need labels, so those variants train on the **labelled rows only** (the transfer set cannot be
used; the config rejects it). `two-step` (the config's `two_step_median`) has no `pairs`
option, so only `all` is run. `reachable ceiling` = the same student fit with squared error to
the generator's true clean logits of every training row. Huber β / softplus β: 1 on logits, 0.1
on prob and pair_prob; `smoothed-qr9` = pinball averaged over τ = 0.1 … 0.9 with the softplus φ.
MRR and AUC count label > 0 as relevant; AUC is pooled over all test rows. Δ = paired NDCG@10
difference to `labels` of the same seed (seeds with Δ > 0); gap rec. = Δ / (teacher − labels),
of reach. = Δ / Δ(ceiling), from the means. All variants of all seeds were run (no 'prob'
variant cut): {args.wall_s / 60:.0f} min on one thread. {letor}

{blocks}
"""


def extra_options(parser: argparse.ArgumentParser) -> None:
    """``--label-fraction``, ``--letor DIR`` and ``--letor-student-features SPEC``."""
    parser.add_argument("--label-fraction", type=float, default=0.05, help="labelled share")
    parser.add_argument("--letor", type=Path, help="LETOR fold with train/vali/test.txt")
    parser.add_argument(
        "--letor-student-features", default=None, help="student columns, e.g. '1-40'"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run everything, write the JSON and the BENCHMARKS.md section; return the summary."""
    args = _common.parse_args(NAME, argv, extra=extra_options)
    torch.set_num_threads(1)
    configs, started = track_configs(args), time.perf_counter()
    runs = run_all(configs, args.seeds, data_seed=True)
    args.wall_s = round(time.perf_counter() - started)
    runs = {track: [display(rows) for rows in per_seed] for track, per_seed in runs.items()}
    summary = {track: summarise(per_seed) for track, per_seed in runs.items()}
    for track, part in summary.items():
        part["contrasts"] = contrasts(runs[track])
    payload = {"configs": configs, "wall_s": args.wall_s, "summary": summary, "per_seed": runs}
    _common.write_results(NAME, args, payload)
    _common.publish(TITLE, report(summary, args), args)
    return summary


if __name__ == "__main__":
    main()
