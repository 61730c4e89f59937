"""``fit`` against a hand-written AdamW loop doing the same work, side by side in one process.

One epoch from the same initial weights over the same batches: ``distill.train.fit`` against a
plain loop (``torch.optim.AdamW`` with its defaults, the same warm-up + cosine ``LambdaLR``,
``clip_grad_norm_``, rows gathered per batch, the loss written with torch primitives and, for
offline KD, the cached teacher logits gathered by row index). The final weights of the two are
checked equal before anything is timed. Tasks: the 64-64-10 MLP on ``digits`` (tiled ×10) and
the Wide & Deep CTR student on ``synthetic_ctr``, each trained plainly (labels) and with
offline KD (cached teacher scores). Target: ``fit`` ≤ 1.10× the hand loop. One thread,
interleaved rounds, medians of per-round ratios.

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.fit_overhead [--quick] [--repeats 15]``.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks import distill_overhead
from benchmarks._common import (
    markdown_table,
    parse_args,
    publish,
    time_interleaved,
    train_model,
    write_results,
)
from benchmarks.pair_sums_speed import verdict
from distill import teachers
from distill.data import Dataset, load_builtin
from distill.models import MLP, WideAndDeep
from distill.train import BinaryKDTerm, KDTerm, LabelsTerm, Objective
from distill.train.batches import global_batches
from distill.train.schedule import warmup_cosine

NAME = "fit_overhead"
TITLE = "Speed: fit against a hand-written training loop"
TARGET = 1.10
BATCH_SIZE, WARMUP, LR, CLIP = 256, 10, 1e-3, 1.0
TEMPERATURE, ALPHA, WEIGHT = 4.0, 0.9, 0.5


def tasks(quick: bool) -> dict[str, dict[str, Any]]:
    digits = load_builtin("digits")
    tiles = 1 if quick else 10
    tiled = Dataset(digits.features.repeat(tiles, 1), digits.labels.repeat(tiles))
    ctr = load_builtin("synthetic_ctr", n_rows=2_000 if quick else 20_000, fields=8)
    return {
        "digits ×10, MLP 64-64-10": {
            "data": tiled,
            "student": lambda: MLP(64, (64,), 10),
            "teacher": lambda: MLP(64, (512, 512), 10),
            "labels": Objective([LabelsTerm("ce")]),
            "kd": Objective([KDTerm(temperature=TEMPERATURE, alpha=ALPHA)]),
            "hand_labels": lambda out, y, t: F.cross_entropy(out, y),
            "hand_kd": hand_kd,
        },
        "synthetic_ctr, Wide & Deep": {
            "data": ctr,
            "student": lambda: WideAndDeep(ctr.num_embeddings, 8),
            "teacher": lambda: WideAndDeep(ctr.num_embeddings, 8, hidden=(256, 256)),
            "labels": Objective([LabelsTerm("bce")]),
            "kd": Objective([BinaryKDTerm(temperature=1.0, soft_weight=WEIGHT)]),
            "hand_labels": lambda out, y, t: F.binary_cross_entropy_with_logits(out, y),
            "hand_kd": hand_binary_kd,
        },
    }


def hand_kd(out: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``α·T²·KL(softmax(v/T) ‖ softmax(z/T)) + (1 − α)·CE``, batch mean."""
    soft = F.kl_div(
        F.log_softmax(out / TEMPERATURE, 1),
        F.log_softmax(teacher / TEMPERATURE, 1),
        reduction="batchmean",
        log_target=True,
    )
    return ALPHA * TEMPERATURE**2 * soft + (1 - ALPHA) * F.cross_entropy(out, y)


def hand_binary_kd(out: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``W·H(σ(v), σ(z)) + (1 − W)·H(y, σ(z))`` (T = 1), mean."""
    return WEIGHT * F.binary_cross_entropy_with_logits(out, torch.sigmoid(teacher)) + (
        1 - WEIGHT
    ) * F.binary_cross_entropy_with_logits(out, y)


def hand_loop(task, loss: Callable, logits: torch.Tensor | None) -> Callable[[], torch.nn.Module]:
    """One epoch of the plain loop; returns the trained model."""
    data = task["data"]

    def run() -> torch.nn.Module:
        batches = global_batches(
            data, batch_size=BATCH_SIZE, groups_per_batch=None, seed=0, epoch=0
        )
        torch.manual_seed(0)
        model = task["student"]()
        optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
        schedule = warmup_cosine(optimizer, warmup_steps=WARMUP, total_steps=len(batches))
        model.train()
        for index in batches:
            out = model(data.features[index])
            value = loss(out, data.labels[index], None if logits is None else logits[index])
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            schedule.step()
        return model

    return run


def fit_loop(task, objective: Objective, teacher: Any) -> Callable[[], torch.nn.Module]:
    def run() -> torch.nn.Module:
        torch.manual_seed(0)
        model = task["student"]()
        train_model(
            model,
            task["data"],
            objective=objective,
            teacher=teacher,
            epochs=1,
            batch_size=BATCH_SIZE,
            lr=LR,
            warmup_steps=WARMUP,
            grad_clip=CLIP,
            seed=0,
            log_every=10,
        )
        return model

    return run


def same_weights(first: torch.nn.Module, second: torch.nn.Module) -> float:
    """Largest absolute difference between the two models' parameters."""
    return max(
        float((a - b).abs().max())
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )


def measure(task: dict[str, Any], repeats: int, folder: Path) -> dict[str, Any]:
    torch.manual_seed(1)
    teacher = teachers.ModuleTeacher(task["teacher"]())
    data = task["data"]
    shard = teachers.score(teacher, data, folder)
    cached = teachers.CachedScores(shard.parent, data, teacher=teacher)
    logits = cached.predict(data.features, data.ids)
    candidates = {
        "plain: fit": fit_loop(task, task["labels"], None),
        "plain: hand loop": hand_loop(task, task["hand_labels"], None),
        "offline KD: fit": fit_loop(task, task["kd"], cached),
        "offline KD: hand loop": hand_loop(task, task["hand_kd"], logits),
    }
    difference = {
        kind: same_weights(candidates[f"{kind}: fit"](), candidates[f"{kind}: hand loop"]())
        for kind in ("plain", "offline KD")
    }
    if max(difference.values()) > 1e-5:
        raise AssertionError(f"fit and the hand loop trained different weights: {difference}")
    times = time_interleaved(candidates, repeats=repeats)
    ratios = round_ratios(times, "times_s")
    cpu_ratios = round_ratios(times, "cpu_times_s")
    steps = len(global_batches(data, batch_size=BATCH_SIZE, groups_per_batch=None, seed=0, epoch=0))
    return {
        "rows": len(data),
        "steps": steps,
        "max_weight_difference": difference,
        "times": times,
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
    }


def round_ratios(times: dict[str, Any], key: str) -> dict[str, float]:
    """Median over rounds of each round's fit ÷ hand-loop time (``key``: wall or CPU)."""
    return {
        kind: statistics.median(
            f / h
            for f, h in zip(
                times[f"{kind}: fit"][key], times[f"{kind}: hand loop"][key], strict=True
            )
        )
        for kind in ("plain", "offline KD")
    }


def report(results: dict[str, Any], repeats: int) -> str:
    rows = []
    for name, part in results.items():
        median = {k: v["median_s"] for k, v in part["times"].items()}
        for kind in ("plain", "offline KD"):
            ratio, cpu_ratio = part["ratios"][kind], part["cpu_ratios"][kind]
            fit_s, hand_s = median[f"{kind}: fit"], median[f"{kind}: hand loop"]
            rows.append(
                [
                    f"{name}, {kind} ({part['steps']} steps)",
                    f"{fit_s:.3f}",
                    f"{hand_s:.3f}",
                    f"{(fit_s - hand_s) / part['steps'] * 1e6:.0f}",
                    f"**{ratio:.2f}×**",
                    f"{cpu_ratio:.2f}×",
                    verdict(ratio <= TARGET, cpu_ratio <= TARGET),
                ]
            )
    header = ["task", "fit s", "hand loop s", "extra µs/step", f"fit ÷ hand (≤ {TARGET})"]
    header += ["same, CPU time", "met? (wall time)"]
    largest = max(max(part["max_weight_difference"].values()) for part in results.values())
    return f"""One epoch, batch {BATCH_SIZE}, AdamW lr {LR}, {WARMUP} warm-up steps then cosine,
clipping at {CLIP}, one thread, {repeats} interleaved rounds after a warm-up; the ratio is the
median over rounds of each round's fit ÷ hand-loop time (wall time; the same ratio of the
runs' process CPU time is given beside it, less disturbed by other jobs on the machine).
Both start from the same weights and train on the same batches; their final weights were
checked equal first (largest difference {largest:.1e}). The hand loop uses
`torch.optim.AdamW` with its defaults, the same `LambdaLR` schedule, `clip_grad_norm_`, the
loss from torch primitives and, for offline KD, a tensor of cached teacher logits indexed by
row; `fit` runs with its defaults (validation of inputs, a train log line every 10 steps, no
progress bar, no run directory), including its setup.

{markdown_table(header, rows)}
"""


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure both tasks (score caches in a temporary folder), write the JSON and section."""
    args = parse_args(NAME, argv, seeds=1, extra=distill_overhead.extra_options)
    torch.set_num_threads(1)
    repeats = 1 if args.quick else args.repeats
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, task in tasks(args.quick).items():
            results[name] = measure(task, repeats, Path(folder) / f"cache-{len(results)}")
    write_results(NAME, args, {"repeats": repeats, "results": results})
    publish(TITLE, report(results, repeats), args)
    return results


if __name__ == "__main__":
    main()
