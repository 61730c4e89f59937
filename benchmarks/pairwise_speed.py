"""Forward+backward speed and peak memory of pairwise losses on ragged groups.

Run: ``python -m benchmarks.pairwise_speed`` (about 3-5 minutes on 2 cores). Every variant runs
in its own subprocess on the very same groups (same seeds); peak memory is that process's
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` minus its high-water mark just before the first
loss call (imports and data). Variants:

- ``distill_distill``: :func:`distill.pairwise_distillation_loss` (squared, all pairs), with a
  warm plan cache (the batch layout repeats) and ``_cold`` (caches cleared every call);
  ``_dense`` forces the dense internal path (the CPU default is ragged); ``_t1`` runs on one
  thread (all others use 2), which suffers less when other jobs share the cores;
- ``distill_ranknet``: :func:`distill.pairwise_logistic_loss` (RankNet, unequal pairs);
- ``padded_naive``: a plain ``[G, M, M]`` torch version of the distillation loss, every group
  padded to the longest;
- ``allrank_ranknet``: allRank 1.4.3 ``rankNet`` on the same groups padded as it expects
  (run with ``.venv-bench/bin/python``; skipped when that environment lacks allRank).

Times are the best of 9 calls (2 for the slow padded baselines on the MSLR shape) after a
warm-up call, to discount other jobs on shared cores; medians are kept too. Pairs/s counts the
pairs each loss is defined on: all pairs for the distillation variants, pairs with different
labels for RankNet. Writes ``benchmarks/results/pairwise_speed.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import types
from datetime import datetime, timezone
from pathlib import Path

import torch

from distill._io import write_atomic

RESULTS = Path(__file__).parent / "results" / "pairwise_speed.json"
BENCH_PYTHON = Path(__file__).resolve().parents[1] / ".venv-bench" / "bin" / "python"
SHAPES = {
    # MSLR-WEB30K-like: log-normal query sizes, mean ~120, longest 1,250 items.
    "mslr_64": {"kind": "mslr", "groups": 64},
    "mslr_256": {"kind": "mslr", "groups": 256},
    # Recommender: 10k groups x 20 items, clicks.
    "recommender": {"kind": "recommender", "groups": 10_000},
}
FAST_REPS, SLOW_REPS = 9, 2  # timed calls per variant (after one warm-up call)
SLOW = {("mslr_64", "padded_naive"), ("mslr_64", "allrank_ranknet")}
COMPARED = [
    "distill_distill",
    "distill_distill_t1",
    "distill_distill_cold",
    "distill_distill_dense",
    "distill_ranknet",
]
VARIANTS = {
    "mslr_64": [*COMPARED, "padded_naive", "allrank_ranknet"],
    "mslr_256": [
        "distill_distill",
        "distill_distill_t1",
        "distill_distill_cold",
        "distill_ranknet",
    ],
    "recommender": [*COMPARED, "padded_naive", "allrank_ranknet"],
}


def make_batch(kind: str, groups: int, seed: int = 0):
    """Flat scores, teacher scores, labels and group sizes (sorted-by-group layout)."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "mslr":
        sizes = torch.exp(4.47 + 0.8 * torch.randn(groups, generator=gen)).round().long()
        sizes = sizes.clamp(1, 1250)
        sizes[0] = 1250
        grade_probs = torch.tensor([0.5, 0.3, 0.14, 0.05, 0.01])
    else:
        sizes = torch.full((groups,), 20)
        grade_probs = torch.tensor([0.9, 0.1])
    num_items = int(sizes.sum())
    labels = torch.multinomial(grade_probs, num_items, replacement=True, generator=gen).float()
    student = torch.randn(num_items, generator=gen)
    teacher = torch.randn(num_items, generator=gen)
    return student, teacher, labels, sizes


def pad(values: torch.Tensor, sizes: torch.Tensor, fill: float) -> torch.Tensor:
    """``[G, M]`` with every group padded to the longest."""
    rows = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    starts = torch.cumsum(sizes, 0) - sizes
    cols = torch.arange(len(values)) - starts[rows]
    out = torch.full((len(sizes), int(sizes.max())), fill, dtype=values.dtype)
    return out.index_put((rows, cols), values)


def padded_naive_loss(student_pad, teacher_pad, valid, num_pairs):
    """Plain ``[G, M, M]`` pairwise squared distillation over the upper triangle."""
    slots = torch.arange(student_pad.shape[1])
    mask = valid[:, :, None] & valid[:, None, :] & (slots[:, None] < slots[None, :])
    delta_s = student_pad[:, :, None] - student_pad[:, None, :]
    delta_t = teacher_pad[:, :, None] - teacher_pad[:, None, :]
    return (((delta_t - delta_s) ** 2) * mask).sum() / num_pairs


def stub_allrank_imports() -> None:
    """allRank's loss package imports its data loader, which pulls torchvision, gcsfs, attrs and
    pkg_resources; none of them is used by the loss, so missing ones are stubbed."""
    transforms = types.ModuleType("torchvision.transforms")
    transforms.Compose = object
    torchvision = types.ModuleType("torchvision")
    torchvision.transforms = transforms
    attr = types.ModuleType("attr")
    attr.attrs = lambda *args, **kwargs: args[0] if args else (lambda cls: cls)
    attr.attrib = lambda *args, **kwargs: None
    pkg_resources = types.ModuleType("pkg_resources")
    pkg_resources.Requirement = pkg_resources.resource_filename = None
    stubs = {
        "torchvision": torchvision,
        "torchvision.transforms": transforms,
        "gcsfs": types.ModuleType("gcsfs"),
        "attr": attr,
        "pkg_resources": pkg_resources,
    }
    missing = {name for name in stubs if importlib.util.find_spec(name.split(".")[0]) is None}
    sys.modules.update({name: stubs[name] for name in missing})


def build_step(variant: str, student, teacher, labels, sizes):
    """A closure running one forward+backward, and the number of pairs it covers."""
    import distill
    from distill.ranking import pair_engine, pairs

    group_ids = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    counts = pair_engine.pair_counts(group_ids, None)
    unequal = int(pair_engine.pair_counts(group_ids, labels).sum())
    scores = student.clone().requires_grad_(True)
    if variant.startswith("distill_distill"):
        path = variant.removeprefix("distill_distill").strip("_")
        if path in ("dense", "ragged"):
            pair_engine.DENSE_MIN_SIZE["cpu"] = 2 if path == "dense" else None

        def step():
            if path == "cold":
                pair_engine._plans.clear()
                pairs._cache.clear()
            distill.pairwise_distillation_loss(scores, teacher, group_ids).backward()

        return step, int(counts.sum())
    if variant == "distill_ranknet":
        return lambda: distill.pairwise_logistic_loss(scores, group_ids, labels).backward(), unequal
    if variant == "padded_naive":
        student_pad = pad(student, sizes, 0.0).requires_grad_(True)
        teacher_pad, valid = pad(teacher, sizes, 0.0), pad(torch.ones_like(student), sizes, 0.0) > 0
        num = int(counts.sum())
        return lambda: padded_naive_loss(student_pad, teacher_pad, valid, num).backward(), num
    stub_allrank_imports()
    from allrank.models.losses import rankNet

    y_pred = pad(student, sizes, 0.0).requires_grad_(True)
    y_true = pad(labels, sizes, -1.0)
    return lambda: rankNet(y_pred, y_true).backward(), unequal


def worker(variant: str, shape: str) -> dict:
    threads = 1 if variant.endswith("_t1") else 2
    torch.set_num_threads(threads)
    spec = SHAPES[shape]
    batch = make_batch(spec["kind"], spec["groups"])
    step, num_pairs = build_step(variant.removesuffix("_t1"), *batch)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()  # warm-up (fills the plan cache for the warm variants)
    times = []
    for _ in range(SLOW_REPS if (shape, variant) in SLOW else FAST_REPS):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "variant": variant,
        "threads": threads,
        "pairs": num_pairs,
        "seconds_best": min(times),
        "seconds_median": statistics.median(times),
        "times": times,
        "pairs_per_s": num_pairs / min(times),
        "pairs_per_s_median": num_pairs / statistics.median(times),
        "load_average": os.getloadavg(),
        "peak_rss_mib": peak / 1024,
        "loss_peak_mib": (peak - before) / 1024,
    }


def run_variant(variant: str, shape: str) -> dict:
    python = str(BENCH_PYTHON) if variant.startswith("allrank") else sys.executable
    if variant.startswith("allrank") and not BENCH_PYTHON.exists():
        return {"variant": variant, "skipped": f"{BENCH_PYTHON} missing"}
    command = [python, "-m", "benchmarks.pairwise_speed", "--worker", variant, "--shape", shape]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"variant": variant, "skipped": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratios(rows: dict[str, dict]) -> dict[str, float]:
    """Throughput and memory of ``distill`` relative to the baselines of the same shape."""
    out = {}
    for ours in ("distill_distill", "distill_ranknet"):
        for base in ("allrank_ranknet", "padded_naive"):
            if ours in rows and base in rows and "skipped" not in rows[base]:
                out[f"{ours}/{base} pairs_per_s"] = (
                    rows[ours]["pairs_per_s"] / rows[base]["pairs_per_s"]
                )
                out[f"{ours}/{base} loss_peak_mib"] = rows[ours]["loss_peak_mib"] / max(
                    rows[base]["loss_peak_mib"], 1e-9
                )
    return out


def markdown(results: dict) -> str:
    """The table for BENCHMARKS.md: best-of-n throughput and loss peak memory per variant."""
    lines = [
        "| shape | variant | pairs | best s | M pairs/s | loss peak MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for shape, result in results.items():
        for name, row in result["variants"].items():
            if "skipped" in row:
                lines.append(f"| {shape} | {name} | skipped | | | |")
                continue
            lines.append(
                f"| {shape} | {name} | {row['pairs']:,} | {row['seconds_best']:.3f} | "
                f"{row['pairs_per_s'] / 1e6:.1f} | {row['loss_peak_mib']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    load_start = os.getloadavg()
    results = {}
    for shape, variants in VARIANTS.items():
        rows = {variant: run_variant(variant, shape) for variant in variants}
        batch = make_batch(SHAPES[shape]["kind"], SHAPES[shape]["groups"])
        results[shape] = {
            "groups": SHAPES[shape]["groups"],
            "items": len(batch[0]),
            "max_group": int(batch[3].max()),
            "mean_group": float(batch[3].float().mean()),
            "variants": rows,
            "ratios": ratios(rows),
        }
        print(shape, json.dumps(results[shape]["ratios"], indent=1), flush=True)
    report = {
        "benchmark": "pairwise_speed",
        "command": "OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.pairwise_speed",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "threads": "2 (1 for the *_t1 variants)",
            "note": "2 CPU cores shared with other jobs during the run: timings are noisy",
        },
        "timing_method": "best of the timed calls (pairs_per_s) and their median; one "
        "warm-up call first; ratios use the best times",
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "memory_method": "ru_maxrss of a fresh subprocess per variant, minus its value before "
        "the first loss call",
        "results": results,
    }
    write_atomic(RESULTS, json.dumps(report, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker")
    parser.add_argument("--shape")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.shape)))
    else:
        main()
