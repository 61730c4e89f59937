"""Issue 8 item 3: ranking distillation — which pairwise loss, signal and pair set wins.

Data: ``synthetic_recommender`` with normal and with skewed (log-normal) teacher noise, and any
LETOR fold given by ``--letor DIR`` (``train.txt``, ``vali.txt``, ``test.txt``). The teacher
MLP sees every feature; the student MLP only ``meta["student_features"]`` (LETOR:
``--letor-student-features``). Students, all trained by ``distill.train.fit``:

- ``labels``: RankNet on the labels only (``LabelsTerm("pairwise_logistic")``), the baseline;
- ``pointwise``: ``PointwiseTerm`` (squared, logit);
- ``<penalty>/<signal>/<pairs>``: ``PairwiseTerm`` with penalty squared, absolute, huber or
  smoothed QR (pinball over τ = 0.1 … 0.9 with a softplus φ) on the logit, prob and pair_prob
  signals, over all pairs or unequal-label pairs;
- ``qr9-affine`` / ``qr9-linear``: ``QuantileHeadsTerm`` with τ = 0.1 … 0.9 (patent FIG. 4 /
  FIG. 5; the linear heads do not train the main score, so that variant adds the pairwise
  absolute term on it);
- ``two-step``: step 1 fits a median copy of the student with ``PointwiseTerm("absolute")``;
  step 2 trains the student with ``PairwiseTerm("huber")`` towards that frozen median (¶0124).

Reported: test NDCG@10, MRR, AUC and NDCG gap recovered = (variant − labels) / (teacher −
labels), mean ± std over seeds, and each variant's paired NDCG gain over ``labels``.

Run: ``python -m benchmarks.ranking_quality [--quick] [--seeds 5] [--letor DIR]``.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import (
    fmt,
    markdown_table,
    mean_std,
    parse_args,
    percent,
    publish,
    train_model,
    write_results,
)
from distill.data import Dataset, load_builtin, read_letor, split
from distill.metrics import auc, mrr, ndcg
from distill.models import MLP
from distill.teachers import ModuleTeacher
from distill.train import (
    LabelsTerm,
    Objective,
    PairwiseTerm,
    PointwiseTerm,
    QuantileHeadsTerm,
    gap_recovered,
    predict,
)

NAME = "ranking_quality"
TITLE = "Ranking distillation quality"
SIGNALS = ("logit", "prob", "pair_prob")
QR9 = [round(0.1 * k, 1) for k in range(1, 10)]
PAIR_SETS = ("all", "unequal")
SCALE = {"logit": 1.0, "prob": 0.1, "pair_prob": 0.1}  # Huber/SmeLU width per signal


def penalty_specs(signal: str) -> dict[str, Any]:
    """The pairwise penalties, their smooth zones scaled to the signal's range."""
    beta = SCALE[signal]
    return {
        "squared": "squared",
        "absolute": "absolute",
        "huber": {"name": "huber", "beta": beta},
        "smoothed-qr9": {
            "name": "smoothed_pinball",
            "tau": QR9,
            "smoother": "softplus",
            "beta": beta,
        },
    }


def variants(quick: bool) -> dict[str, dict[str, Any]]:
    """Variant name → ``{"terms": [...]}`` or ``{"two_step": {...}}``."""
    found: dict[str, dict[str, Any]] = {
        "labels": {"terms": [LabelsTerm("pairwise_logistic")]},
        "pointwise": {"terms": [PointwiseTerm(penalty="squared", signal="logit")]},
    }
    for signal in SIGNALS:
        for pairs in PAIR_SETS:
            for name, spec in penalty_specs(signal).items():
                term = PairwiseTerm(penalty=spec, signal=signal, pairs=pairs)
                found[f"{name}/{signal}/{pairs}"] = {"terms": [term]}
    for pairs in PAIR_SETS:
        found[f"qr9-affine/logit/{pairs}"] = {
            "terms": [QuantileHeadsTerm(taus=QR9, mode="affine", pairs=pairs)]
        }
        found[f"qr9-linear/logit/{pairs}"] = {
            "terms": [
                QuantileHeadsTerm(taus=QR9, mode="linear", pairs=pairs),
                PairwiseTerm(penalty="absolute", signal="logit", pairs=pairs),
            ]
        }
        found[f"two-step/logit/{pairs}"] = {"two_step": {"pairs": pairs}}
    if quick:
        return {name: found[name] for name in QUICK_VARIANTS}
    return found


QUICK_VARIANTS = ("labels", "pointwise", "smoothed-qr9/logit/all", "qr9-linear/logit/unequal")
QUICK_VARIANTS += ("two-step/logit/all",)


def settings(quick: bool) -> dict[str, Any]:
    """Sizes of the run: full, or a few seconds with ``--quick``."""
    if quick:
        return {
            "groups": 40,
            "teacher_epochs": 1,
            "student_epochs": 1,
            "groups_per_batch": 8,
            "student_widths": (4,),
        }
    return {
        "groups": 400,
        "teacher_epochs": 20,
        "student_epochs": 8,
        "groups_per_batch": 16,
        "student_widths": (4, 12),
    }


class Track:
    """One data set's splits, its student feature spec and its trained teacher."""

    def __init__(self, train, valid, test, student_features, config, seed, label_loss):
        self.train, self.valid, self.config, self.seed = train, valid, config, seed
        self.student_features = student_features
        self.test = test if student_features is None else test.select_features(student_features)
        self.student_width = self.test.features.shape[1]
        torch.manual_seed(seed)
        teacher = MLP(train.features.shape[1], (64, 64), 1)
        self.fit(teacher, Objective([LabelsTerm(label_loss)]), epochs=config["teacher_epochs"])
        self.teacher = ModuleTeacher(teacher)
        self.teacher_metrics = scores_metrics(predict(teacher, test), test)

    def fit(self, model, objective, *, epochs, teacher=None, student=False, train=None):
        """``fit`` on whole groups; ``student``: only the student's feature columns."""
        features = self.student_features if student and train is None else None
        train_model(
            model,
            self.train if train is None else train,
            objective=objective,
            teacher=teacher,
            valid=self.valid if train is None else self._student_view(self.valid),
            epochs=epochs,
            groups_per_batch=self.config["groups_per_batch"],
            lr=3e-3,
            metric="ndcg@10",
            eval_every=20,
            seed=self.seed,
            student_features=features,
        )
        return model

    def _student_view(self, data: Dataset) -> Dataset:
        return (
            data if self.student_features is None else data.select_features(self.student_features)
        )

    def student(self, plan: dict[str, Any]) -> dict[str, float]:
        """Train one variant's student and return its test metrics."""
        epochs = self.config["student_epochs"]
        torch.manual_seed(self.seed + 1)
        model = MLP(self.student_width, (32,), 1)
        if "two_step" in plan:
            median = self.fit(
                copy.deepcopy(model),
                Objective([PointwiseTerm(penalty="absolute", signal="logit")]),
                epochs=epochs,
                teacher=self.teacher,
                student=True,
            )
            term = PairwiseTerm(penalty="huber", signal="logit", pairs=plan["two_step"]["pairs"])
            self.fit(
                model,
                Objective([term]),
                epochs=epochs,
                teacher=ModuleTeacher(median),
                train=self._student_view(self.train),
            )
        else:
            objective = Objective(plan["terms"])
            source = self.teacher if objective.uses_teacher else None
            self.fit(model, objective, epochs=epochs, teacher=source, student=True)
        return scores_metrics(predict(model, self.test), self.test)


def scores_metrics(scores: torch.Tensor, data: Dataset) -> dict[str, float]:
    """NDCG@10, MRR and pooled AUC (labels above 0 count as relevant for MRR/AUC)."""
    relevant = (data.labels > 0).float()
    return {
        "ndcg@10": ndcg(scores, data.labels, data.groups, k=10),
        "mrr": mrr(scores, relevant, data.groups),
        "auc": auc(scores, relevant),
    }


def tracks(args: argparse.Namespace, config: dict[str, Any], seed: int):
    """``(name, Track)`` per data set for one seed (LETOR folds are fixed; seeds vary weights)."""
    for width in config["student_widths"]:
        for noise in ("normal", "skewed"):
            data = load_builtin(
                "synthetic_recommender",
                n_groups=config["groups"],
                noise=noise,
                student_features=width,
                seed=seed,
            )
            parts = split(data, (0.6, 0.2, 0.2), seed=seed)
            features = data.meta["student_features"]
            yield (
                f"synthetic-{noise}, student sees {width}/16",
                Track(*parts, features, config, seed, "bce"),
            )
    if args.letor is not None:
        folder = Path(args.letor)
        train = read_letor(folder / "train.txt")
        width = {"n_features": train.features.shape[1]}
        valid, test = (read_letor(folder / name, **width) for name in ("vali.txt", "test.txt"))
        spec = args.letor_student_features
        yield "letor", Track(train, valid, test, spec, config, seed, "pairwise_logistic")


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per data set: mean ± std of each metric per variant, NDCG gap recovered, paired gain."""
    summary: dict[str, Any] = {}
    for track, seeds in runs.items():
        names = list(seeds[0]["students"])
        part: dict[str, Any] = {
            "teacher": {m: mean_std(s["teacher"][m] for s in seeds) for m in METRICS}
        }
        for name in names:
            part[name] = {m: mean_std(s["students"][name][m] for s in seeds) for m in METRICS}
            part[name]["ndcg_gain"] = mean_std(
                s["students"][name]["ndcg@10"] - s["students"]["labels"]["ndcg@10"] for s in seeds
            )
        base, top = part["labels"]["ndcg@10"]["mean"], part["teacher"]["ndcg@10"]["mean"]
        for name in names:
            part[name]["gap_recovered"] = gap_recovered(part[name]["ndcg@10"]["mean"], base, top)
        ranked = sorted(names, key=lambda n: -part[n]["ndcg@10"]["mean"])
        part["ranking"] = ranked
        summary[track] = part
    return summary


METRICS = ("ndcg@10", "mrr", "auc")


def track_table(part: dict[str, Any]) -> str:
    """One data set's table, best NDCG@10 first."""
    rows = [["teacher", *(fmt(part["teacher"][m], 1.0, 4) for m in METRICS), "", ""]]
    for name in part["ranking"]:
        values = part[name]
        rows.append(
            [
                name,
                *(fmt(values[m], 1.0, 4) for m in METRICS),
                fmt(values["ndcg_gain"], 1.0, 4),
                percent(values["gap_recovered"]),
            ]
        )
    header = ["student", "NDCG@10", "MRR", "AUC", "NDCG − labels (paired)", "gap rec."]
    return markdown_table(header, rows)


def findings(part: dict[str, Any]) -> str:
    """Plain-text winners: best overall, best signal, all vs unequal pairs."""
    best = part["ranking"][0]
    gain = part[best]["ndcg_gain"]
    lines = [f"best: `{best}`, NDCG@10 +{fmt(gain, 1.0, 4)} over labels (paired, per seed)"]
    for group, options in (("signal", SIGNALS), ("pairs", PAIR_SETS)):
        index = 1 if group == "signal" else 2
        means = {}
        for option in options:
            chosen = [
                part[n]["ndcg@10"]["mean"]
                for n in part["ranking"]
                if n.count("/") == 2 and n.split("/")[index] == option
            ]
            if chosen:
                means[option] = sum(chosen) / len(chosen)
        text = ", ".join(f"{k} {v:.4f}" for k, v in means.items())
        lines.append(f"mean NDCG@10 of the pairwise variants by {group}: {text}")
    return "\n".join(f"- {line}" for line in lines)


def report(summary: dict[str, Any], config: dict[str, Any], n_seeds: int, letor: Any) -> str:
    """The BENCHMARKS.md section body: one table and findings per data set."""
    blocks = []
    for track, part in summary.items():
        blocks.append(f"### {track}\n\n{track_table(part)}\n\n{findings(part)}")
    letor_note = (
        f"LETOR fold: `{letor}`."
        if letor
        else "No LETOR fold was given (none is available offline here); pass `--letor DIR`."
    )
    body = "\n\n".join(blocks)
    widths = ", ".join(map(str, config["student_widths"]))
    return f"""Mean ± std over {n_seeds} seeds (data, split and weights seeded). Synthetic:
{config["groups"]} groups × 20 items, 16 features; the student MLP (k-32-1) sees features 1-k
(k = {widths}), the teacher MLP 16-64-64-1 sees all (BCE on clicks, {config["teacher_epochs"]}
epochs). Students:
{config["student_epochs"]} epochs, {config["groups_per_batch"]} groups per batch, AdamW 3e-3,
best validation NDCG@10 checkpoint. Huber β / SmeLU β: 1 on logits, 0.1 on prob and pair_prob.
`smoothed-qr9` is the pinball averaged over τ = 0.1 … 0.9 with the softplus φ (β as above). With
one shared prediction, a mean of pinballs is linear in τ, so it equals the pinball at the mean τ
(0.5); with the SmeLU φ that is Huber/2 + a constant, which Adam trains exactly like Huber (two
earlier runs, τ = 0.5 and τ = 0.1 … 0.9 with SmeLU, gave numbers identical to `huber`), hence the
softplus φ here.
MRR and AUC count label > 0 as relevant. {letor_note}

{body}
"""


def run_all(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, list[dict]]:
    """Every data set, seed and variant."""
    plans = variants(args.quick)
    runs: dict[str, list[dict]] = {}
    for seed in range(args.seeds):
        for name, track in tracks(args, config, seed):
            students = {variant: track.student(plan) for variant, plan in plans.items()}
            runs.setdefault(name, []).append(
                {"seed": seed, "teacher": track.teacher_metrics, "students": students}
            )
            print(f"seed {seed} {name}: done", flush=True)
    return runs


def extra_options(parser: argparse.ArgumentParser) -> None:
    """``--letor DIR`` and ``--letor-student-features SPEC``."""
    parser.add_argument("--letor", type=Path, help="LETOR fold with train/vali/test.txt")
    parser.add_argument(
        "--letor-student-features", default=None, help="student columns, e.g. '1-40'"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run everything, write the JSON and the BENCHMARKS.md section; return the summary."""
    args = parse_args(NAME, argv, extra=extra_options)
    torch.set_num_threads(1)
    config = settings(args.quick)
    runs = run_all(args, config)
    summary = summarise(runs)
    write_results(NAME, args, {"config": config, "summary": summary, "per_seed": runs})
    publish(TITLE, report(summary, config, args.seeds, args.letor), args)
    return summary


if __name__ == "__main__":
    main()
