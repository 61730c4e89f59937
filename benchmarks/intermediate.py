"""Intermediate-layer distillation (TinyBERT-style terms) on digits read as 8 row tokens.

A teacher transformer (4 blocks × 128 wide, 4 heads) learns the digits from their labels; a
student (2 blocks × 64 wide, 4 heads) then learns on the same training rows with: labels only;
logits KD (``KDTerm``, T = 4, α = 0.9); logits + hidden states (``IntermediateObjective``,
uniform layer map, ``W_h`` projections); logits + hidden + attention, with TinyBERT's MSE on
the unnormalised scores (weight 0.1) or the row-wise KL on the probabilities (weight 1).
Every variant of a seed starts from the same student weights and sees the same batches, so
differences are paired; intervals are 95 % t-intervals of the per-seed differences. With
``transformers`` installed the same variants (KL attention only) run on two tiny randomly
initialised
BERT encoders (``BertModel`` 4 × 128 → 2 × 64, fed the same row tokens through a linear
embedding; Hugging Face exposes attention probabilities only, so the attention term is the KL).

Run: ``python -m benchmarks.intermediate [--quick] [--seeds 5]``.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from scipy import stats
from torch import nn

from benchmarks._common import (
    fmt,
    markdown_table,
    mean_std,
    parse_args,
    publish,
    train_model,
    write_results,
)
from distill.data import load_builtin, split
from distill.metrics import accuracy
from distill.models import TransformerClassifier
from distill.teachers import ModuleTeacher
from distill.train import IntermediateObjective, KDTerm, LabelsTerm, Objective, predict

NAME = "intermediate"
TITLE = "Intermediate layers: TinyBERT-style terms on digits"
BASE = ("labels", "logits KD", "logits + hidden")
KD = {"temperature": 4.0, "alpha": 0.9}
LAYERS = {"hidden": 1.0, "embedding": 0.0}
ATTENTION = {"mse": 0.1, "kl": 1.0}


def settings(quick: bool) -> dict[str, Any]:
    """Sizes of the run: full, or a few seconds with ``--quick``."""
    if quick:
        return {"teacher_epochs": 1, "student_epochs": 1, "rows": 300}
    return {"teacher_epochs": 15, "student_epochs": 6, "rows": None}


def _train_options(epochs: int, seed: int) -> dict[str, Any]:
    return {"epochs": epochs, "batch_size": 64, "lr": 3e-3, "metric": "accuracy", "seed": seed}


def variants(kinds: Sequence[str]) -> list[str]:
    """The rows of a family: the base ones, then one attention row per attention loss."""
    return [*BASE, *(f"logits + hidden + attention ({kind})" for kind in kinds)]


def objective(variant: str, teacher: nn.Module, sample: torch.Tensor) -> Objective:
    """The objective of one variant (the attention loss, ``mse`` or ``kl``, in its name)."""
    if variant == "labels":
        return Objective([LabelsTerm()])
    if variant == "logits KD":
        return Objective([KDTerm(**KD)])
    kind = variant.removesuffix(")").rsplit("(", 1)[-1] if "attention" in variant else "mse"
    attention = ATTENTION[kind] if "attention" in variant else 0.0
    return IntermediateObjective(
        teacher,
        sample=sample,
        terms=[KDTerm(**KD)],
        attention=attention,
        attention_kind=kind,
        **LAYERS,
    )


def run_family(
    name: str, make: Callable[[str, int], nn.Module], kinds: Sequence[str], data, config, seeds
) -> dict[str, Any]:
    """Train the teacher once, then every variant for every seed; test accuracies."""
    train, valid, test = data
    start = time.perf_counter()
    teacher = make("teacher", 0)
    teacher = train_model(
        teacher,
        train,
        objective=Objective([LabelsTerm()]),
        valid=valid,
        **_train_options(config["teacher_epochs"], 0),
    ).model.eval()
    teacher_acc = _test_accuracy(teacher, test)
    per_seed = []
    for seed in range(seeds):
        row = {}
        for variant in variants(kinds):
            student = make("student", 1000 + seed)
            obj = objective(variant, teacher, train.features[:8])
            result = train_model(
                student,
                train,
                objective=obj,
                teacher=ModuleTeacher(teacher),
                **_train_options(config["student_epochs"], seed),
            )
            row[variant] = _test_accuracy(result.model, test)
        per_seed.append(row)
    return {
        "family": name,
        "variants": variants(kinds),
        "teacher_accuracy": teacher_acc,
        "per_seed": per_seed,
        "summary": summarise(per_seed, variants(kinds)),
        "wall_time_s": time.perf_counter() - start,
    }


def _test_accuracy(model: nn.Module, test) -> float:
    return float(accuracy(predict(model.eval(), test), test.labels))


def paired(per_seed: Sequence[dict[str, float]], name: str, baseline: str) -> dict[str, Any]:
    """``name − baseline`` over seeds: mean, std, 95 % t-interval, seeds > 0, t-test p."""
    diffs = [row[name] - row[baseline] for row in per_seed]
    result: dict[str, Any] = {**mean_std(diffs), "positive": sum(d > 0 for d in diffs)}
    spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    half = stats.t.ppf(0.975, len(diffs) - 1) * spread / len(diffs) ** 0.5 if spread else 0.0
    result["ci95"] = [result["mean"] - half, result["mean"] + half]
    result["p"] = float(stats.ttest_1samp(diffs, 0.0).pvalue) if spread > 0 else None
    return result


def summarise(per_seed: Sequence[dict[str, float]], rows: Sequence[str]) -> dict[str, Any]:
    """Per variant: accuracy mean ± std; paired vs labels, vs logits KD, vs logits + hidden."""
    summary = {}
    for variant in rows:
        summary[variant] = {
            "accuracy": mean_std(row[variant] for row in per_seed),
            "vs_labels": paired(per_seed, variant, "labels"),
            "vs_kd": paired(per_seed, variant, "logits KD"),
            "vs_hidden": paired(per_seed, variant, "logits + hidden"),
        }
    return summary


def ours(role: str, seed: int) -> nn.Module:
    """Our transformer: teacher 4 × 128, student 2 × 64 (4 heads each)."""
    torch.manual_seed(seed)
    if role == "teacher":
        return TransformerClassifier(64, 10, d_model=128, num_layers=4, num_heads=4)
    return TransformerClassifier(64, 10, d_model=64, num_layers=2, num_heads=4)


class BertOnRows(nn.Module):
    """A randomly initialised Hugging Face ``BertModel`` over 8 row tokens (linear embedding)."""

    def __init__(self, hidden: int, layers: int, heads: int) -> None:
        super().__init__()
        import transformers

        config = transformers.BertConfig(
            vocab_size=1,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=4 * hidden,
            max_position_embeddings=8,
            type_vocab_size=1,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            attn_implementation="eager",
        )
        self.rows = nn.Linear(8, hidden)
        self.bert = transformers.BertModel(config, add_pooling_layer=False)
        self.head = nn.Linear(hidden, 10)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = self.rows(features.reshape(-1, 8, 8))
        return self.head(self.bert(inputs_embeds=tokens).last_hidden_state.mean(dim=1))

    def layer_names(self, attention: str = "probs") -> dict[str, Any]:
        count = len(self.bert.encoder.layer)
        return {
            "embedding": "bert.embeddings",
            "hidden": [f"bert.encoder.layer.{i}" for i in range(count)],
            "attention": [f"bert.encoder.layer.{i}.attention.self[1]" for i in range(count)],
        }


def bert(role: str, seed: int) -> nn.Module:
    """Tiny BERTs: teacher 4 layers × 128 (4 heads), student 2 × 64 (4 heads)."""
    torch.manual_seed(seed)
    return BertOnRows(128, 4, 4) if role == "teacher" else BertOnRows(64, 2, 4)


def render(families: Sequence[dict[str, Any]], seeds: int) -> str:
    """The Markdown section: one table per model family, then the reading."""
    parts = []
    for family in families:
        summary = family["summary"]
        rows = []
        for index, variant in enumerate(family["variants"]):
            s = summary[variant]
            rows.append(
                [
                    variant,
                    fmt(s["accuracy"], 100, 2),
                    "–" if index == 0 else _diff(s["vs_labels"], seeds),
                    "–" if index < 2 else _diff(s["vs_kd"], seeds),
                    "–" if index < 3 else _diff(s["vs_hidden"], seeds),
                ]
            )
        header = ["student", "test accuracy %", "Δ vs labels (pp)", "Δ vs logits KD (pp)"]
        header.append("Δ vs logits + hidden (pp)")
        parts.append(
            f"**{family['family']}** (teacher {family['teacher_accuracy'] * 100:.2f} %, "
            f"{family['wall_time_s']:.0f} s)\n\n{markdown_table(header, rows)}"
        )
    return "\n\n".join(parts)


def _diff(result: dict[str, Any], seeds: int) -> str:
    low, high = result["ci95"]
    return (
        f"{result['mean'] * 100:+.2f} [{low * 100:+.2f}, {high * 100:+.2f}] "
        f"({result['positive']}/{seeds} > 0)"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(NAME, argv, seeds=5)
    config = settings(args.quick)
    digits = load_builtin("digits")
    if config["rows"] is not None:
        share = config["rows"] / len(digits)
        digits = split(digits, (share, 1 - share), seed=0)[0]
    data = split(digits, (0.6, 0.2, 0.2), seed=0)
    families = [run_family("our transformer", ours, ("mse", "kl"), data, config, args.seeds)]
    if importlib.util.find_spec("transformers") is not None:
        families.append(
            run_family("tiny BERT (transformers)", bert, ("kl",), data, config, args.seeds)
        )
    payload = {"settings": config, "kd": KD, "layers": LAYERS, "attention": ATTENTION}
    write_results(NAME, args, {**payload, "families": families})
    publish(TITLE, render(families, args.seeds) + "\n\n" + reading(families), args)
    return {"families": families}


NOTES = """Setting: a short budget (students train 6 epochs on the rows the teacher learnt
from; KD at the library defaults T = 4, α = 0.9), so logits KD alone is no better than labels
here. Δ: paired per-seed difference, mean [95 % t-interval] (seeds with Δ > 0); an interval that
holds 0 is reported as no difference. The MSE attention row matches TinyBERT's unnormalised
scores Q·Kᵀ/√d_k, whose scale is the teacher's (unbounded); the KL row matches the row-wise
attention distributions (bounded), the only form Hugging Face exposes."""


def reading(families: Sequence[dict[str, Any]]) -> str:
    """Which terms help, by the intervals (a difference whose interval holds 0 is none)."""
    lines = [NOTES, ""]
    for family in families:
        summary = family["summary"]
        for variant in family["variants"][2:]:
            verdict = _verdict(summary[variant]["vs_kd"])
            lines.append(f"- {family['family']}: {variant} vs logits KD: {verdict}.")
        for variant in family["variants"][3:]:
            verdict = _verdict(summary[variant]["vs_hidden"])
            lines.append(f"- {family['family']}: {variant} vs logits + hidden: {verdict}.")
    return "\n".join(lines)


def _verdict(result: dict[str, Any]) -> str:
    low, high = result["ci95"]
    mean = f"{result['mean'] * 100:+.2f} pp [{low * 100:+.2f}, {high * 100:+.2f}]"
    if low > 0:
        return f"better, {mean}"
    if high < 0:
        return f"worse, {mean}"
    return f"no difference inside the noise, {mean}"


if __name__ == "__main__":
    main()
