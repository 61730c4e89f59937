"""Issue 8 item 8: epoch time of pairwise distillation as the data and the groups grow.

1. Groups ×1, ×10, ×100 (``synthetic_recommender``, 20 items per group, 32 groups per batch).
2. Group size 10 → 100 → 1000 items at a fixed 20,000 rows (batches of 2,000 items): all pairs
   grow linearly in the group size (quadratic per group); ``PairwiseTerm(max_pairs_per_group=…)``
   (a fresh uniform sample per step, ``distill.ranking.pairs.make_pairs``) bounds them.
3. DDP: the ×100 data, 1024 groups per global batch, 2 processes on the CPU (``torchrun``,
   gloo) vs 1 process.

Every epoch is one ``distill.train.fit`` epoch with ``PairwiseTerm`` (squared, logit) from an
online teacher MLP, medians of interleaved repeats. No GPU is lent to this task, so there are
no GPU numbers; the same command runs on a GPU machine (``fit`` picks CUDA when present).

Run: ``python -m benchmarks.scaling [--quick] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import (
    ROOT,
    markdown_table,
    parse_args,
    publish,
    time_interleaved,
    train_model,
    write_results,
)
from distill.data import load_builtin
from distill.models import MLP
from distill.teachers import ModuleTeacher
from distill.train import Objective, PairwiseTerm

NAME = "scaling"
TITLE = "Scaling: groups, group size, pair bound, DDP"
BASE_GROUPS, GROUP_ITEMS, GROUPS_PER_BATCH = 100, 20, 32
FIXED_ROWS, ITEMS_PER_BATCH, MAX_PAIRS = 20_000, 2_000, 1_000
DDP_GROUPS, DDP_GROUPS_PER_BATCH = BASE_GROUPS * 100, 1024  # big steps: gloo latency amortised


def recommender(groups: int, items: int):
    """Synthetic recommender rows (16 features)."""
    return load_builtin("synthetic_recommender", n_groups=groups, items_per_group=items)


def epoch(data, objective: Objective, **options: Any) -> Callable[[], None]:
    """One ``fit`` epoch of a fresh student from an untrained (fixed) teacher MLP."""
    torch.manual_seed(1)
    teacher = ModuleTeacher(MLP(16, (64,), 1))

    def run() -> None:
        torch.manual_seed(0)
        model = MLP(16, (64,), 1)
        train_model(model, data, objective=objective, teacher=teacher, epochs=1, seed=0, **options)

    return run


def pair_count(data, bound: int | None) -> int:
    """Pairs per epoch (whole groups; bounded per group when ``bound`` is set)."""
    sizes = torch.bincount(data.groups)
    per_group = sizes * (sizes - 1) // 2
    if bound is not None:
        per_group = per_group.clamp(max=bound)
    return int(per_group.sum())


def group_count_sweep(scales: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    """Epoch time for BASE_GROUPS × scale groups."""
    objective = Objective([PairwiseTerm()])
    runs = {
        scale: epoch(
            recommender(BASE_GROUPS * scale, GROUP_ITEMS),
            objective,
            groups_per_batch=GROUPS_PER_BATCH,
        )
        for scale in scales
    }
    times = time_interleaved({str(s): run for s, run in runs.items()}, repeats=repeats)
    return [
        {
            "groups": BASE_GROUPS * scale,
            "rows": BASE_GROUPS * scale * GROUP_ITEMS,
            "epoch_s": times[str(scale)]["median_s"],
            "times_s": times[str(scale)]["times_s"],
        }
        for scale in scales
    ]


def group_size_sweep(sizes: Sequence[int], rows: int, repeats: int) -> list[dict[str, Any]]:
    """Epoch time with all pairs vs at most MAX_PAIRS per group, at a fixed row count."""
    candidates, counts = {}, {}
    for size in sizes:
        data = recommender(rows // size, size)
        for bound in (None, MAX_PAIRS):
            term = PairwiseTerm(max_pairs_per_group=bound)
            key = f"{size}/{bound}"
            candidates[key] = epoch(data, Objective([term]), batch_size=ITEMS_PER_BATCH)
            counts[key] = pair_count(data, bound)
    times = time_interleaved(candidates, repeats=repeats)
    return [
        {
            "items_per_group": int(key.split("/")[0]),
            "max_pairs_per_group": None if key.endswith("None") else MAX_PAIRS,
            "pairs_per_epoch": counts[key],
            "epoch_s": times[key]["median_s"],
            "times_s": times[key]["times_s"],
        }
        for key in candidates
    ]


def ddp_worker(output: Path, groups: int) -> None:
    """Inside ``torchrun``: one timed epoch; rank 0 writes ``{"epoch_s": ...}``."""
    torch.set_num_threads(1)
    run = epoch(recommender(groups, GROUP_ITEMS), Objective([PairwiseTerm()]),
                groups_per_batch=DDP_GROUPS_PER_BATCH, device="cpu")  # fmt: skip
    run()  # warm-up (process group, first-call costs)
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    if int(os.environ.get("RANK", "0")) == 0:
        output.write_text(json.dumps({"epoch_s": elapsed}))


def ddp_epoch(processes: int, groups: int) -> float:
    """Epoch seconds of ``processes`` torchrun workers on the CPU."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "ddp.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "-m", "benchmarks.scaling",
                   "--ddp-worker", str(output), "--ddp-groups", str(groups)]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(command, check=True, cwd=ROOT, env=env, capture_output=True)
        return json.loads(output.read_text())["epoch_s"]


def ddp_comparison(groups: int, repeats: int) -> dict[str, Any]:
    """1 vs 2 torchrun processes, alternated ``repeats`` times; medians."""
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for processes in times:
            times[processes].append(ddp_epoch(processes, groups))
    median = {p: sorted(t)[len(t) // 2] for p, t in times.items()}
    return {
        "groups": groups,
        "epoch_s": {str(p): m for p, m in median.items()},
        "times_s": {str(p): t for p, t in times.items()},
        "speedup_2_processes": median[1] / median[2],
    }


def report(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md section body."""
    base = result["groups"][0]["epoch_s"] / result["groups"][0]["groups"]
    group_rows = [
        [
            f"{row['groups']:,}",
            f"{row['rows']:,}",
            f"{row['epoch_s']:.3f}",
            f"{row['epoch_s'] / row['groups'] / base:.2f}",
        ]
        for row in result["groups"]
    ]
    size_rows = [
        [
            row["items_per_group"],
            "all" if row["max_pairs_per_group"] is None else f"≤ {row['max_pairs_per_group']}",
            f"{row['pairs_per_epoch']:,}",
            f"{row['epoch_s']:.3f}",
        ]
        for row in result["group_size"]
    ]
    ddp = result.get("ddp")
    ddp_text = (
        "DDP not measured (--quick)."
        if ddp is None
        else (
            f"DDP on the CPU, {ddp['groups']:,} groups, {DDP_GROUPS_PER_BATCH} groups per global "
            f"batch: 1 process {ddp['epoch_s']['1']:.3f} s, "
            f"2 processes {ddp['epoch_s']['2']:.3f} s per epoch (speed-up "
            f"{ddp['speedup_2_processes']:.2f}×, on {os.cpu_count()} cores shared with other "
            f"jobs). One epoch is only {-(-ddp['groups'] // DDP_GROUPS_PER_BATCH)} steps of "
            f"~{1000 * ddp['epoch_s']['1'] / -(-ddp['groups'] // DDP_GROUPS_PER_BATCH):.0f} ms "
            "on one process, so the per-step gradient all-reduce (gloo) and `fit`'s DDP set-up "
            "are not amortised (larger models or batches were not measured)."
        )
    )
    return f"""Median seconds of one `fit` epoch (student MLP 16-64-1, online teacher MLP 16-64-1,
`PairwiseTerm` squared/logit, one thread per process) over {result["repeats"]} interleaved
repeats after a warm-up.

Number of groups ({GROUP_ITEMS} items each, {GROUPS_PER_BATCH} groups per batch); time per
group relative to the smallest run (1.00 = linear scaling):

{markdown_table(["groups", "rows", "epoch s", "time per group (rel.)"], group_rows)}

Group size at {result["fixed_rows"]:,} rows (batches of {ITEMS_PER_BATCH:,} items); all pairs vs
`PairwiseTerm(max_pairs_per_group={MAX_PAIRS})` (a new uniform sample of pairs per group each step):

{markdown_table(["items per group", "pairs", "pairs per epoch", "epoch s"], size_rows)}

{ddp_text}

GPU: no GPU machine is lent to this task, so there are no GPU numbers; the same command runs
unchanged on one (`fit` uses CUDA when available).
"""


def extra_options(parser: argparse.ArgumentParser) -> None:
    """``--repeats``, and the internal ``--ddp-worker PATH`` / ``--ddp-groups N``."""
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats")
    parser.add_argument("--ddp-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ddp-groups", type=int, default=DDP_GROUPS, help=argparse.SUPPRESS)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the sweeps (and DDP unless ``--quick``), write the JSON and the section."""
    args = parse_args(NAME, argv, seeds=1, extra=extra_options)
    if args.ddp_worker is not None:
        ddp_worker(args.ddp_worker, args.ddp_groups)
        return {}
    torch.set_num_threads(1)
    repeats = 1 if args.quick else args.repeats
    scales = (1, 2) if args.quick else (1, 10, 100)
    sizes = (5, 10) if args.quick else (10, 100, 1000)
    rows = 200 if args.quick else FIXED_ROWS
    result: dict[str, Any] = {
        "repeats": repeats,
        "fixed_rows": rows,
        "groups": group_count_sweep(scales, repeats),
        "group_size": group_size_sweep(sizes, rows, repeats),
        "gpu": "no GPU lent to this task",
    }
    if not args.quick:
        result["ddp"] = ddp_comparison(DDP_GROUPS, repeats)
    write_results(NAME, args, result)
    publish(TITLE, report(result), args)
    return result


if __name__ == "__main__":
    main()
