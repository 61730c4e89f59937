"""The keyboard example's compression chain (Yu et al. 2018) on a synthetic next-word task.

Per seed: ``synthetic_text`` (30,000 rows, 256 tokens, 4 previous tokens → the next; the seed
draws the language and the 70/10/20 split). A teacher ``NextTokenLM`` (d = 64, 256 hidden)
learns the labels for 500 steps (3 epochs; longer overfits); a student (d = 24, 48 hidden) is
distilled from it (KD, T = 2, α = 0.5).
The student then goes through ``distill.export.run_chain``: share (embedding + output layer
on one basis of rank 24 = d), low rank (rank 12 for the hidden layers), fp16, twice: without
recovery, and with 500 recovery steps after each factorisation (KD at T = 1 from the
uncompressed student, lr 3e-3, on the training rows). Every step's saved file is measured:
bytes on disk, test accuracy, top-3 accuracy and perplexity.

Run: ``python -m benchmarks.compression_chain [--quick] [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from benchmarks import _common
from benchmarks._common import diff_text, fmt, markdown_table, mean_std, paired, train_model
from distill.data import split, synthetic_text
from distill.export import ChainSettings, chain_table, read_export, run_chain
from distill.models import NextTokenLM
from distill.teachers import ModuleTeacher
from distill.train import KDTerm, LabelsTerm, Objective

NAME = "compression_chain"
TITLE = "Compression chain of the keyboard example (shared factorisation → low rank → fp16)"
STEPS = ("share", "low-rank", "fp16")
ROWS = ("original", *STEPS)
METRICS = ("accuracy", "top3", "perplexity", "bytes")
SHARE_RANK, RANK, RECOVERY = 24, 12, 500
VOCAB, WIDTH = 256, 24
SEPARATE_RANK = round((VOCAB + 2 * WIDTH) * SHARE_RANK / (2 * (VOCAB + WIDTH)))
"""The rank of E and W factorised apart with the share step's parameter count (13)."""


def _metrics(model, test) -> dict[str, float]:
    with torch.inference_mode():
        logits = model(test.features).float()
    top3 = logits.topk(3, dim=1).indices
    return {
        "accuracy": float((logits.argmax(1) == test.labels).double().mean()),
        "top3": float((top3 == test.labels[:, None]).any(1).double().mean()),
        "perplexity": math.exp(float(F.cross_entropy(logits, test.labels))),
    }


def _truncated(matrix: torch.Tensor, rank: int) -> torch.Tensor:
    left, values, right = torch.linalg.svd(matrix.double(), full_matrices=False)
    return ((left[:, :rank] * values[:rank]) @ right[:rank]).float()


def _separate(student, test) -> dict[str, float]:
    """E and W each at rank SEPARATE_RANK, no recovery: what sharing one basis is compared
    with, at the same size (2·(V + d)·13 = 7,280 numbers against V·24 + 2·24·d = 7,296)."""
    model = copy.deepcopy(student).eval()
    with torch.no_grad():
        model.embedding.weight.copy_(_truncated(model.embedding.weight, SEPARATE_RANK))
        model.head.weight.copy_(_truncated(model.head.weight, SEPARATE_RANK))
    return _metrics(model, test)


def _kept_energy(student) -> float:
    """Share of the balanced [E/‖E‖  W/‖W‖]'s squared singular mass in its top SHARE_RANK."""
    table, weight = student.embedding.weight.detach(), student.head.weight.detach()
    both = torch.cat([table / table.norm(), weight / weight.norm()], 1).double()
    mass = torch.linalg.svdvals(both).square()
    return float(mass[:SHARE_RANK].sum() / mass.sum())


def _chain(student, train, test, recovery: int, folder: Path) -> dict[str, dict[str, float]]:
    settings = ChainSettings(share_rank=SHARE_RANK, rank=RANK, recover_steps=recovery)
    settings.recover_inputs = train.features
    settings.recover_options = {"loss": "kd", "temperature": 1.0, "lr": 3e-3}
    written = run_chain(student, STEPS, folder, settings=settings)
    rows = chain_table(written, example_input=test.features[:8], repeats=1)
    return {
        row.step: {**_metrics(read_export(written[row.step]).model, test), "bytes": row.bytes}
        for row in rows
    }


def run_seed(seed: int, quick: bool) -> dict[str, Any]:
    """Teacher, KD student, and the chain without and with recovery."""
    rows = 3000 if quick else 30_000
    data = synthetic_text(rows, vocab_size=VOCAB, context=4, seed=seed)
    train, valid, test = split(data, (0.7, 0.1, 0.2), seed=seed)
    steps = (30, 30) if quick else (500, 1500)  # teacher: 3 epochs (longer overfits)
    common = {"valid": valid, "batch_size": 128, "lr": 3e-3, "seed": seed, "metric": "accuracy"}
    torch.manual_seed(seed)
    teacher = NextTokenLM(VOCAB, 4, VOCAB, embedding_dim=64, hidden=(256,))
    labels = Objective([LabelsTerm("ce")])
    train_model(teacher, train, objective=labels, max_steps=steps[0], **common)
    student = NextTokenLM(VOCAB, 4, VOCAB, embedding_dim=WIDTH, hidden=(48,))
    kd = Objective([KDTerm(temperature=2.0, alpha=0.5)])
    train_model(
        student, train, objective=kd, teacher=ModuleTeacher(teacher), max_steps=steps[1], **common
    )
    recovery = 20 if quick else RECOVERY
    with tempfile.TemporaryDirectory() as folder:
        plain = _chain(student, train, test, 0, Path(folder) / "plain")
        recovered = _chain(student, train, test, recovery, Path(folder) / "recovered")
    return {
        "teacher": _metrics(teacher.eval(), test),
        "plain": plain,
        "recovered": recovered,
        "separate": _separate(student, test),
        "kept_energy": _kept_energy(student),
    }


def _flat(per_seed: list[dict], chain: str) -> list[dict[str, float]]:
    return [{f"{r}.{m}": s[chain][r][m] for r in ROWS for m in METRICS} for s in per_seed]


def _chain_summary(flat: list[dict[str, float]]) -> dict[str, Any]:
    summary = {"original": {m: mean_std(f[f"original.{m}"] for f in flat) for m in METRICS}}
    for previous, row in pairwise(ROWS):
        stats = {m: mean_std(f[f"{row}.{m}"] for f in flat) for m in METRICS}
        for m in METRICS:
            stats[f"{m}_vs_previous"] = paired(flat, f"{row}.{m}", f"{previous}.{m}")
        summary[row] = stats
    return summary


def summarise(per_seed: list[dict]) -> dict[str, Any]:
    teacher = {m: mean_std(s["teacher"][m] for s in per_seed) for m in METRICS[:3]}
    summary: dict[str, Any] = {"teacher": teacher}
    for chain in ("plain", "recovered"):
        summary[chain] = _chain_summary(_flat(per_seed, chain))
    both = [
        {
            f"{chain}.{row}": s[chain][row]["accuracy"]
            for chain in ("plain", "recovered")
            for row in STEPS
        }
        for s in per_seed
    ]
    summary["recovery_gain"] = {
        row: paired(both, f"recovered.{row}", f"plain.{row}") for row in STEPS
    }
    versus = [
        {"shared": s["plain"]["share"]["accuracy"], "separate": s["separate"]["accuracy"]}
        for s in per_seed
    ]
    summary["separate"] = {m: mean_std(s["separate"][m] for s in per_seed) for m in METRICS[:3]}
    summary["shared_vs_separate"] = paired(versus, "shared", "separate")
    summary["kept_energy"] = mean_std(s["kept_energy"] for s in per_seed)
    last = _flat(per_seed, "recovered")
    summary["end_vs_original"] = paired(last, f"{ROWS[-1]}.accuracy", "original.accuracy")
    return summary


def _row(chain: dict, row: str, seeds: int) -> list[str]:
    stats = chain[row]
    cells = [row, f"{stats['bytes']['mean']:,.0f}"]
    cells += [fmt(stats["accuracy"], 100, 2), fmt(stats["top3"], 100, 2)]
    cells.append(fmt(stats["perplexity"], 1, 1))
    if row == "original":
        return [*cells, "–", "–", "–"]
    size = stats["bytes_vs_previous"]
    cells.append(f"{size['mean']:+,.0f}")
    cells.append(diff_text(stats["accuracy_vs_previous"], seeds))
    cells.append(diff_text(stats["perplexity_vs_previous"], seeds, scale=1.0, digits=1))
    return cells


def _ratio(chain: dict[str, Any]) -> str:
    return f"{chain['original']['bytes']['mean'] / chain[ROWS[-1]]['bytes']['mean']:.2f}"


def report(summary: dict[str, Any], args: argparse.Namespace) -> str:
    seeds = args.seeds
    header = ["step", "bytes", "accuracy %", "top-3 %", "perplexity", "Δ bytes"]
    header += ["Δ accuracy (points)", "Δ perplexity"]
    tables = {
        chain: markdown_table(header, [_row(summary[chain], row, seeds) for row in ROWS])
        for chain in ("plain", "recovered")
    }
    teacher = summary["teacher"]
    gains = ", ".join(f"{row} {diff_text(summary['recovery_gain'][row], seeds)}" for row in STEPS)
    return f"""Test metrics of each step's saved file, mean ± std over {seeds} seeds (data,
split and weights); Δ = paired difference to the previous step (seeds > 0), ", none" = inside
one std. Student `NextTokenLM` (d = 24, 48 hidden, V = 256, 4 previous tokens) distilled from
a d = 64 teacher (teacher: accuracy {fmt(teacher["accuracy"], 100, 2)} %, top-3
{fmt(teacher["top3"], 100, 2)} %, perplexity {fmt(teacher["perplexity"], 1, 1)}). Steps:
share = embedding + output layer on one V × {SHARE_RANK} basis (balanced weighting),
low-rank = rank {RANK} for `body.0` (96 → 48) and `project` (48 → 24), fp16 = half-precision
weights. Wall time {getattr(args, "wall_s", 0)} s.

Without recovery:

{tables["plain"]}

With {RECOVERY} recovery steps after each factorisation (KD at T = 1 from the uncompressed
student, lr 3e-3):

{tables["recovered"]}

Recovery gain in accuracy points, per step (with − without): {gains}.

Shared basis against separate factorisations of the same size, before recovery: E and W each
at rank {SEPARATE_RANK} (two V × {SEPARATE_RANK} bases, the same number of weights) give accuracy
{fmt(summary["separate"]["accuracy"], 100, 2)} %, perplexity
{fmt(summary["separate"]["perplexity"], 1, 1)}; shared − separate:
{diff_text(summary["shared_vs_separate"], seeds)} points. The rank-{SHARE_RANK} shared basis
keeps {fmt(summary["kept_energy"], 100, 1)} % of the squared singular mass of the balanced
concatenation [E/‖E‖  W/‖W‖].

Against the claims of Yu et al. 2018 (docs/compression.md#measured): 16-bit weights halve the
file at no accuracy cost (confirmed: fp16 − low-rank
{diff_text(summary["recovered"]["fp16"]["accuracy_vs_previous"], seeds)} points); re-training
after factorisation restores accuracy (confirmed in direction, not in full: the recovered chain
ends {diff_text(summary["end_vs_original"], seeds)} points from the original at
{_ratio(summary["recovered"])}× smaller, a contradiction if the paper's chain is read as
loss-free; its per-step accuracies were not available to us); one basis shared by the
embedding and the softmax layer beats factorising them apart at the same size (confirmed, see
above).
"""


main = _common.seeded_entry(__name__)
"""Run every seed, write the JSON and the BENCHMARKS.md section; return the summary."""

if __name__ == "__main__":
    main()
