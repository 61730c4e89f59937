"""Tang et al. (2020) on digits: which part of the teacher's soft targets helps the student.

Per seed: a 60/20/20 split of ``digits``; a teacher MLP(256, 256) trained on every training
row; student MLP(32)s trained on the labelled 10 % of the training rows only (the setting of
"Soft targets with little data", where KD helps), with the KD term at T = 4, α = 1 (soft
targets only) and these teacher distributions (``distill.teacher_transforms``):

- ``kd``: the teacher's ``softmax_T``;
- ``reweight`` (``ρ^pt``): the teacher's true-class probability, the rest uniform;
- ``similarity`` (``ρ^sim``): the same true-class probability for every row, the rest by the
  cosine similarity of the teacher's logit-layer class vectors (softmax at 0.2);
- ``label_smoothing``: the same true-class probability for every row, the rest uniform;
- ``labels``: cross-entropy on the labels;
- ``top_k``: KD-topk, the teacher's k largest probabilities renormalised, k = 1 … 5, 10.

The fixed true-class probability of ``similarity`` and ``label_smoothing`` is this seed's
mean teacher ``p_y`` at T over the labelled rows, so the three transforms give the same mean
weight to the true class and differ only in what Tang et al. attribute to them. Also
reported: the gradient-rescaling factor ``w_i = (p_y − q_y)/(1 − q_y)`` at T = 1 (teacher p,
the labels-only student q) of every test row, binned by the teacher's confidence ``p_y``.

Run: ``python -m benchmarks.tang_transforms [--quick] [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from typing import Any

import torch
from scipy.stats import spearmanr

from benchmarks import _common
from benchmarks._common import diff_text, fmt, markdown_table, mean_std, paired
from benchmarks.soft_targets import test_accuracy, train_classifier
from distill import teacher_transforms
from distill.data import load_builtin, split
from distill.teachers import ModuleTeacher
from distill.train import KDTerm, LabelsTerm, Objective, predict

NAME = "tang_transforms"
TITLE = "Tang et al. 2020: what the teacher's soft targets contribute (digits)"
TEMPERATURE = 4.0
SIMILARITY_TEMPERATURE = 0.2
TOP_K = (1, 2, 3, 4, 5, 10)
MAIN = ("kd", "reweight", "similarity", "label_smoothing", "labels")
BINS = (0.0, 0.5, 0.8, 0.95, 0.99, 1.0)


def transforms(mean_true: float) -> dict[str, Any]:
    """Variant name → teacher-transform spec (``None``: plain KD)."""
    epsilon = (1 - mean_true) * 10 / 9  # 1 − ε + ε/K = mean_true, K = 10
    found: dict[str, Any] = {
        "kd": None,
        "reweight": "reweight",
        "similarity": {
            "name": "similarity",
            "temperature": SIMILARITY_TEMPERATURE,
            "true_prob": mean_true,
        },
        "label_smoothing": {"name": "label_smoothing", "epsilon": epsilon},
    }
    found |= {f"top_{k}": {"name": "top_k", "k": k} for k in TOP_K if k < 10}
    return found


def rescaling_rows(teacher, student, data) -> list[tuple[float, float]]:
    """``(p_y, w_i)`` at T = 1 for every row: teacher confidence and the rescaling factor."""
    p = torch.softmax(predict(teacher, data), 1)
    q = torch.softmax(predict(student, data), 1)
    w = teacher_transforms.gradient_rescaling(p, q, data.labels)
    true = p.gather(1, data.labels[:, None])[:, 0]
    return list(zip(true.tolist(), w.tolist(), strict=True))


def digits_ten_percent(seed: int, quick: bool) -> dict[str, Any]:
    """This seed's digits split, its labelled 10 %, the student steps and the teacher.

    The teacher is the MLP(256, 256) (dropout 0.2) of "Soft targets with little data",
    trained on every training row.
    """
    train, valid, test = split(load_builtin("digits"), (0.6, 0.2, 0.2), seed=seed)
    labelled, _ = split(train, (0.1, 0.9), seed=seed)
    steps = (20, 10) if quick else (600, 1500)
    labels = Objective([LabelsTerm("ce")])
    teacher = train_classifier(
        train, valid, hidden=(256, 256), steps=steps[0], seed=seed, objective=labels, dropout=0.2
    )
    return {
        "train": train, "labelled": labelled, "valid": valid, "test": test,
        "steps": steps[1], "labels": labels, "teacher": teacher.eval(),
    }  # fmt: skip


def run_seed(seed: int, quick: bool) -> dict[str, Any]:
    """Teacher, the labels student and every transform student of one seed."""
    setting = digits_ten_percent(seed, quick)
    labelled, valid, test, teacher = (setting[k] for k in ("labelled", "valid", "test", "teacher"))
    steps, labels = setting["steps"], setting["labels"]
    vectors = teacher_transforms.logit_layer_vectors(teacher)

    def student(objective: Objective) -> torch.nn.Module:
        return train_classifier(
            labelled,
            valid,
            hidden=(32,),
            steps=steps,
            seed=seed,
            objective=objective,
            teacher=ModuleTeacher(teacher),
        )

    probs = torch.softmax(predict(teacher, labelled) / TEMPERATURE, 1)
    mean_true = float(probs.gather(1, labelled.labels[:, None]).mean())
    out: dict[str, Any] = {"teacher": test_accuracy(teacher, test), "mean_true": mean_true}
    base = student(labels)
    out["labels"] = test_accuracy(base, test)
    for name, spec in transforms(mean_true).items():
        term = KDTerm(temperature=TEMPERATURE, alpha=1.0, teacher_transform=spec)
        term.class_vectors = vectors
        out[name] = test_accuracy(student(Objective([term])), test)
    out["top_10"] = out["kd"]
    out["rescaling"] = rescaling_rows(teacher, base, test)
    return out


def binned(per_seed: list[dict]) -> list[dict[str, Any]]:
    """Mean ``w_i`` per teacher-confidence bin over all seeds' test rows."""
    rows = [row for s in per_seed for row in s["rescaling"]]
    found = []
    for low, high in itertools.pairwise(BINS):
        inside = [w for p, w in rows if low <= p < high or (high == 1.0 and p == 1.0)]
        found.append({"bin": [low, high], "n": len(inside), "w": mean_std(inside)})
    return found


def summarise(per_seed: list[dict]) -> dict[str, Any]:
    names = ["teacher", *MAIN, *(f"top_{k}" for k in TOP_K)]
    rows = [row for s in per_seed for row in s["rescaling"]]
    rho = spearmanr([p for p, _ in rows], [w for _, w in rows]).statistic
    return {
        "accuracy": {name: mean_std(s[name] for s in per_seed) for name in names},
        "vs_kd": {name: paired(per_seed, name, "kd") for name in names[2:]},
        "vs_labels": {name: paired(per_seed, name, "labels") for name in names[1:]},
        "order": {
            "kd − reweight": paired(per_seed, "kd", "reweight"),
            "reweight − similarity": paired(per_seed, "reweight", "similarity"),
            "similarity − label_smoothing": paired(per_seed, "similarity", "label_smoothing"),
            "label_smoothing − labels": paired(per_seed, "label_smoothing", "labels"),
        },
        "mean_true": mean_std(s["mean_true"] for s in per_seed),
        "rescaling_bins": binned(per_seed),
        "rescaling_spearman": float(rho),
    }


def verdict(order: dict[str, dict[str, Any]]) -> str:
    """Which links of "KD > re-weighting ≥ similarity > label smoothing" the data support."""
    needs = {
        "kd − reweight": ">",
        "reweight − similarity": "≥",
        "similarity − label_smoothing": ">",
    }
    lines = []
    for link, sign in needs.items():
        stats = order[link]
        real = abs(stats["mean"]) > stats["std"]
        held = (real and stats["mean"] > 0) if sign == ">" else (stats["mean"] > 0 or not real)
        state = "reproduced" if held else "**not reproduced** (contradicts the claim)"
        seen = "no difference" if not real else ("higher" if stats["mean"] > 0 else "lower")
        lines.append(f"- `{link}` (claimed {sign}): {seen}, {state}")
    return "\n".join(lines)


def topk_verdict(summary: dict[str, Any], seeds: int) -> str:
    """Whether k at 25–50 % of K (k = 3, 4, 5 of 10) beats plain KD, paired."""
    lines = []
    for k in (3, 4, 5):
        stats = summary["vs_kd"][f"top_{k}"]
        real = abs(stats["mean"]) > stats["std"]
        if real and stats["mean"] > 0:
            state = "better than KD: reproduced"
        elif real:
            state = "worse than KD: **contradicts the claim**"
        else:
            state = "no difference to KD: **not reproduced**"
        lines.append(f"- k = {k}: {diff_text(stats, seeds)}, {state}")
    return "\n".join(lines)


def report(summary: dict[str, Any], args: argparse.Namespace) -> str:
    acc, seeds = summary["accuracy"], args.seeds
    main_rows = [["teacher (all training rows)", fmt(acc["teacher"], 100, 1), "", ""]]
    for name in MAIN:
        vs_kd = "0" if name == "kd" else diff_text(summary["vs_kd"][name], seeds)
        vs_labels = "0" if name == "labels" else diff_text(summary["vs_labels"][name], seeds)
        main_rows.append([name, fmt(acc[name], 100, 1), vs_kd, vs_labels])
    header = ["student (10 % labelled)", "test accuracy %", "Δ vs KD (paired)", "Δ vs labels"]
    topk = [
        [
            f"k = {k} ({k / 10:.0%} of K)" + (" = KD" if k == 10 else ""),
            fmt(acc[f"top_{k}"], 100, 1),
            "0" if k == 10 else diff_text(summary["vs_kd"][f"top_{k}"], seeds),
            diff_text(summary["vs_labels"][f"top_{k}"], seeds),
        ]
        for k in TOP_K
    ]
    order = [[link, diff_text(stats, seeds)] for link, stats in summary["order"].items()]
    bins = [
        [
            f"[{b['bin'][0]:.2f}, {b['bin'][1]:.2f}{']' if b['bin'][1] == 1 else ')'}",
            b["n"],
            fmt(b["w"], 1.0, 3),
        ]
        for b in summary["rescaling_bins"]
    ]
    return f"""Mean ± std over {seeds} seeds (split, teacher, students); paired differences in
accuracy points (seeds > 0), ", none" = the mean difference is inside one std. Teacher
MLP(256, 256), dropout 0.2, on every training row; students MLP(32), 1500 steps, best
validation checkpoint, trained on the labelled 10 % of the training rows only, KD term at T = 4
with α = 1 and the teacher distribution replaced by the transform. `similarity` and
`label_smoothing` fix the true-class probability of every row to the seed's mean teacher `p_y`
at T = 4 ({fmt(summary["mean_true"], 1.0, 3)}), so they differ from `reweight` only in
per-example re-weighting and from each other only in the class-similarity prior (cosine of the
teacher's logit-layer class vectors, softmax at {SIMILARITY_TEMPERATURE}).

{markdown_table(header, main_rows)}

Tang et al.'s order "KD > re-weighting ≥ similarity > label smoothing", link by link (paired):

{markdown_table(["link", "difference (points, seeds > 0)"], order)}

{verdict(summary["order"])}

KD-topk (the teacher's k largest probabilities renormalised, same T and α; K = 10 classes;
the claim: k at 25–50 % of K helps):

{markdown_table(["k", "test accuracy %", "Δ vs KD (k = 10)", "Δ vs labels"], topk)}

{topk_verdict(summary, seeds)}

Gradient rescaling `w_i = (p_y − q_y)/(1 − q_y)` at T = 1 (teacher p; q = the labels-only
student) on every test row of every seed, by teacher confidence `p_y`; Spearman correlation of
`w_i` with `p_y`: {summary["rescaling_spearman"]:.2f}. `results/{NAME}.png` plots the rows.

{markdown_table(["teacher p_y", "rows", "mean w_i ± std"], bins)}
"""


def plot(per_seed: list[dict], args: argparse.Namespace) -> None:
    """Scatter of ``w_i`` against the teacher's ``p_y`` (results folder; skipped with --quick)."""
    if args.quick:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from distill._io import atomic_path

    rows = [row for s in per_seed for row in s["rescaling"]]
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.scatter([p for p, _ in rows], [w for _, w in rows], s=4, alpha=0.4)
    axis.set_xlabel("teacher confidence p_y (T = 1)")
    axis.set_ylabel("rescaling w_i = (p_y − q_y)/(1 − q_y)")
    axis.set_title("KD gradient rescaling per test row (digits)")
    figure.tight_layout()
    with atomic_path(args.results_dir / f"{NAME}.png") as path:
        figure.savefig(path, format="png", dpi=120)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every seed, write the JSON, the BENCHMARKS.md section and the plot."""
    summary, per_seed, args = _common.seeded_main(
        NAME,
        TITLE,
        argv,
        run_seed=lambda seed, args: run_seed(seed, args.quick),
        summarise=summarise,
        report=report,
        stored=lambda rows: [{k: v for k, v in s.items() if k != "rescaling"} for s in rows],
    )
    plot(per_seed, args)
    return summary


if __name__ == "__main__":
    main()
