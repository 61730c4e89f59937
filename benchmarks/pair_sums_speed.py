"""Exact pair sums against enumerated pairs: speed and memory, side by side in one process.

Forward + backward of :func:`distill.pairwise_distillation_loss`, whose ``"auto"`` path takes
the closed pair sums of :mod:`distill.ranking.pair_sums` for these penalties, against the same
loss with every pair listed (``pair_engine.pair_sum(..., path="ragged")``, the path every
pairwise loss took before). Every comparison is timed in this one process on one thread,
interleaved rounds after a warm-up, medians; the two values (loss and gradient) are checked
equal in float64 before anything is timed. Parts:

- MSLR-like shape (256 groups, log-normal sizes, mean ~124, longest 1,250; 4.3 M pairs):
  squared, absolute, pinball(0.3), huber(1) over all and over unequal (label-ordered) pairs.
  Target: closed form ≥ 50× enumeration.
- allRank 1.4.3 ``rankNet`` on 64 of those groups, padded as it expects (it needs ~3 GiB there,
  ~12 GiB at 256 groups), and on the recommender shape (10,000 groups × 20 items, clicks).
  allRank pins torch ≤ 1.8, so it is no dependency of this project: install it beside with
  ``pip install --no-deps --target .venv-allrank allrank==1.4.3``; torchvision, gcsfs, attrs
  and pkg_resources are stubbed for its import. Without it the part is skipped. Throughput
  ratios use each loss's own pairs (all for distillation, unequal for RankNet), as in
  ``benchmarks/pairwise_speed.py``.
- One group of 200,000 items (2·10¹⁰ pairs): forward + backward under 1 s.
- Memory: peak RSS growth (``VmHWM`` after the loss calls minus before, each variant in a
  fresh subprocess, data made before the first reading). Target: closed form < 1/100 of
  allRank's at the shape both run on.

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.pair_sums_speed [--quick] [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
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
    write_results,
)
from benchmarks.pairwise_speed import make_batch, pad, stub_allrank_imports
from distill import pairwise_distillation_loss, penalties
from distill.ranking import pair_engine

NAME = "pair_sums_speed"
TITLE = "Speed: exact pair sums without listing pairs"
ALLRANK_SITE = ROOT / ".venv-allrank"
PENALTIES = {
    "squared": "squared",
    "absolute": "absolute",
    "pinball(0.3)": {"name": "pinball", "tau": 0.3},
    "huber(1)": {"name": "huber", "beta": 1.0},
}
TARGET_RATIO, TARGET_BIG_S, TARGET_MEMORY = 50.0, 1.0, 0.01


def batch(groups: int, seed: int = 0, kind: str = "mslr") -> dict[str, torch.Tensor]:
    student, teacher, labels, sizes = make_batch(kind, groups, seed)
    group_ids = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    return {"student": student, "teacher": teacher, "labels": labels, "group_ids": group_ids}


def one_group(items: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "student": torch.randn(items, generator=gen),
        "teacher": torch.randn(items, generator=gen),
        "labels": torch.randint(0, 5, (items,), generator=gen).float(),
        "group_ids": torch.zeros(items, dtype=torch.long),
    }


def loss_fn(data, penalty, pairs: str, method: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``scores -> loss``: the library call (closed form) or the same loss over listed pairs."""
    rho = penalties.get(penalty)
    labels = data["labels"] if pairs == "unequal" else None
    if method == "closed":
        return lambda s: pairwise_distillation_loss(
            s, data["teacher"].to(s.dtype), data["group_ids"], labels, penalty=rho, pairs=pairs
        )
    return lambda s: pair_engine.pair_sum(
        (data["teacher"].to(s.dtype) - s,),
        data["group_ids"],
        labels,
        term=lambda first, second: rho(first[0] - second[0]),
        pairs=pairs,
        path="ragged",
    )


def step(fn: Callable, scores: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        scores.grad = None
        fn(scores).backward()

    return run


def repeated(run: Callable[[], None], times: int) -> Callable[[], None]:
    def many() -> None:
        for _ in range(times):
            run()

    return many


def calls_per_round(fast: Callable[[], None], slow: Callable[[], None], cap: int = 200) -> int:
    """How many ``fast`` calls take about as long as one ``slow`` call (after a warm-up).

    A round then spends similar wall time on both candidates, so both meet the same share of
    a shared CPU; a single millisecond call is either untouched or loses a whole time slice.
    """
    fast(), slow()
    started = time.perf_counter()
    fast()
    one_fast = time.perf_counter() - started
    started = time.perf_counter()
    slow()
    one_slow = time.perf_counter() - started
    return max(1, min(cap, round(one_slow / max(one_fast, 1e-6))))


def check_equal(data, penalty, pairs: str) -> float:
    """Largest relative difference of loss and gradient in float64 (closed vs listed)."""
    out = []
    for method in ("closed", "listed"):
        scores = data["student"].double().requires_grad_(True)
        loss = loss_fn(data, penalty, pairs, method)(scores)
        out.append((loss.detach(), torch.autograd.grad(loss, scores)[0]))
    (loss_a, grad_a), (loss_b, grad_b) = out
    return max(
        float((loss_a - loss_b).abs() / loss_b.abs().clamp_min(1e-300)),
        float((grad_a - grad_b).abs().max() / grad_b.abs().max().clamp_min(1e-300)),
    )


def versus_enumeration(data, repeats: int) -> list[dict[str, Any]]:
    num_pairs = {
        "all": int(pair_engine.pair_counts(data["group_ids"], None).sum()),
        "unequal": int(pair_engine.pair_counts(data["group_ids"], data["labels"]).sum()),
    }
    rows = []
    for name, penalty in PENALTIES.items():
        for pairs in ("all", "unequal"):
            difference = check_equal(data, penalty, pairs)
            if difference > 1e-8:
                raise AssertionError(f"{name}/{pairs}: closed form differs by {difference:.2e}")
            scores = data["student"].clone().requires_grad_(True)
            closed_step = step(loss_fn(data, penalty, pairs, "closed"), scores)
            listed_step = step(loss_fn(data, penalty, pairs, "listed"), scores)
            inner = calls_per_round(closed_step, listed_step)
            times = time_interleaved(
                {"closed": repeated(closed_step, inner), "listed": listed_step}, repeats=repeats
            )
            closed = times["closed"]["median_s"] / inner
            listed = times["listed"]["median_s"]
            rows.append(
                {
                    "penalty": name,
                    "pairs": pairs,
                    "num_pairs": num_pairs[pairs],
                    "max_rel_difference_f64": difference,
                    "closed_s": closed,
                    "listed_s": listed,
                    "ratio": listed / closed,
                    "cpu_ratio": times["listed"]["cpu_median_s"]
                    / (times["closed"]["cpu_median_s"] / inner),
                    "closed_calls_per_round": inner,
                    "closed_pairs_per_s": num_pairs[pairs] / closed,
                    "times": times,
                }
            )
            print(f"{name:12s} {pairs:8s} ×{listed / closed:7.1f}", flush=True)
    return rows


@functools.cache
def allrank_loss():
    """allRank's ``rankNet`` from ``.venv-allrank``, or None when it is not installed there."""
    if str(ALLRANK_SITE) not in sys.path and ALLRANK_SITE.is_dir():
        sys.path.append(str(ALLRANK_SITE))
    try:
        stub_allrank_imports()
        from allrank.models.losses import rankNet
    except ImportError:
        return None
    return rankNet


def versus_allrank(data, repeats: int) -> dict[str, Any] | None:
    rank_net = allrank_loss()
    if rank_net is None:
        return None
    sizes = torch.bincount(data["group_ids"])
    padded = pad(data["student"], sizes, 0.0).requires_grad_(True)
    padded_labels = pad(data["labels"], sizes, -1.0)
    scores = data["student"].clone().requires_grad_(True)
    closed_step = step(loss_fn(data, "squared", "all", "closed"), scores)
    listed_step = step(loss_fn(data, "squared", "all", "listed"), scores)
    inner = calls_per_round(closed_step, listed_step)
    times = time_interleaved(
        {
            "closed squared": repeated(closed_step, inner),
            "listed squared": listed_step,
            "allRank rankNet": lambda: rank_net(padded, padded_labels).backward(),
        },
        repeats=repeats,
    )
    times["closed squared"]["calls_per_round"] = inner
    pairs_all = int(pair_engine.pair_counts(data["group_ids"], None).sum())
    pairs_unequal = int(pair_engine.pair_counts(data["group_ids"], data["labels"]).sum())
    median = {name: value["median_s"] for name, value in times.items()}
    median["closed squared"] /= inner
    rate = {
        "closed squared": pairs_all / median["closed squared"],
        "listed squared": pairs_all / median["listed squared"],
        "allRank rankNet": pairs_unequal / median["allRank rankNet"],
    }
    return {
        "groups": len(sizes),
        "times": times,
        "pairs_per_s": rate,
        "closed_vs_allrank": rate["closed squared"] / rate["allRank rankNet"],
        "listed_vs_allrank": rate["listed squared"] / rate["allRank rankNet"],
    }


def big_group(items: int, repeats: int) -> dict[str, Any]:
    data = one_group(items)
    scores = data["student"].clone().requires_grad_(True)
    candidates = {
        f"{name} {pairs}": step(loss_fn(data, penalty, pairs, "closed"), scores)
        for name, penalty in PENALTIES.items()
        for pairs in ("all", "unequal")
    }
    times = time_interleaved(candidates, repeats=repeats)
    return {"items": items, "pairs": items * (items - 1) // 2, "times": times}


MEMORY_VARIANTS = {  # name: (shape, groups or items, penalty, method)
    "closed squared, MSLR 256": ("mslr", 256, "squared", "closed"),
    "closed huber(1), MSLR 256": ("mslr", 256, {"name": "huber", "beta": 1.0}, "closed"),
    "listed squared, MSLR 256": ("mslr", 256, "squared", "listed"),
    "closed squared, MSLR 64": ("mslr", 64, "squared", "closed"),
    "closed huber(1), MSLR 64": ("mslr", 64, {"name": "huber", "beta": 1.0}, "closed"),
    "allRank rankNet, MSLR 64": ("mslr", 64, None, "allrank"),
    "closed huber(1), one group of 200,000": (
        "one",
        200_000,
        {"name": "huber", "beta": 1.0},
        "closed",
    ),
}


def memory_worker(name: str) -> dict[str, Any]:
    """In a fresh process: peak RSS growth over three forward + backward calls."""
    torch.set_num_threads(1)
    shape, size, penalty, method = MEMORY_VARIANTS[name]
    data = batch(size) if shape == "mslr" else one_group(size)
    if method == "allrank":
        rank_net = allrank_loss()
        if rank_net is None:
            return {"skipped": "allRank not installed in .venv-allrank"}
        sizes = torch.bincount(data["group_ids"])
        padded = pad(data["student"], sizes, 0.0).requires_grad_(True)
        labels = pad(data["labels"], sizes, -1.0)
        run = lambda: rank_net(padded, labels).backward()  # noqa: E731
    else:
        run = step(loss_fn(data, penalty, "all", method), data["student"].requires_grad_(True))
    before = peak_rss_kib()
    for _ in range(3):
        run()
    after = peak_rss_kib()
    return {"peak_growth_mib": (after - before) / 1024, "peak_rss_mib": after / 1024}


def peak_rss_kib() -> int:
    """This process's peak RSS: ``VmHWM`` (Linux; unlike ``ru_maxrss`` it is not inherited
    from the parent across fork and exec), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory(names: Sequence[str]) -> dict[str, Any]:
    out = {}
    for name in names:
        command = [sys.executable, "-m", f"benchmarks.{NAME}", "--memory-worker", name]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode != 0:
            out[name] = {"skipped": done.stderr.strip().splitlines()[-1:]}
        else:
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(name, out[name], flush=True)
    return out


def verdict(met: bool, met_on_cpu: bool | None = None) -> str:
    """On wall time; a miss that CPU time would meet says so."""
    if met:
        return "met"
    return "**missed** (met on CPU time)" if met_on_cpu else "**missed**"


def report(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md section body."""
    rows = []
    for row in results["mslr"]:
        rows.append(
            [
                f"MSLR {results['groups']} groups, {row['penalty']}, {row['pairs']} pairs "
                f"({row['num_pairs']:,})",
                f"closed ≥ {TARGET_RATIO:.0f}× listed",
                f"{row['closed_s'] * 1e3:.2f} ms vs {row['listed_s'] * 1e3:.1f} ms: "
                f"**{row['ratio']:.0f}×** ({row['closed_pairs_per_s'] / 1e9:.1f} G pairs/s); "
                f"CPU time {row['cpu_ratio']:.0f}×",
                verdict(row["ratio"] >= TARGET_RATIO, row["cpu_ratio"] >= TARGET_RATIO),
            ]
        )
    for shape, allrank in results.get("allrank", {}).items():
        if allrank is None:
            rows.append([f"allRank rankNet, {shape}", "ratio reported", "skipped", "–"])
            continue
        rate = allrank["pairs_per_s"]
        rows.append(
            [
                f"{shape}: squared (all pairs) vs allRank rankNet (unequal pairs), pairs/s",
                "ratio reported",
                f"closed **{allrank['closed_vs_allrank']:,.0f}×**, listed "
                f"{allrank['listed_vs_allrank']:,.0f}× (allRank {rate['allRank rankNet'] / 1e6:.2f}"
                f" M pairs/s, closed {rate['closed squared'] / 1e9:.2f} G pairs/s)",
                "–",
            ]
        )
    big = results["big"]
    for name, value in big["times"].items():
        seconds = value["median_s"]
        rows.append(
            [
                f"one group of {big['items']:,} items, {name}",
                f"forward + backward < {TARGET_BIG_S:g} s",
                f"{seconds:.3f} s",
                verdict(seconds < TARGET_BIG_S),
            ]
        )
    rows += memory_rows(results["memory"])
    header = ["case", "target", "measured (medians, interleaved)", "met?"]
    return f"""Forward + backward, one thread, float32 scores, medians of interleaved rounds in one
process (`time_interleaved`, {results["repeats"]} rounds after a warm-up; in each round the
closed form runs as many times as take about one listed call, so both spend similar wall time
on the shared CPU, and its time is divided by that count; the verdict is on wall time, the
process CPU time of the same runs is given beside it); the closed form
(`pairwise_distillation_loss`, automatic) against the same loss over listed pairs
(`pair_sum(..., path="ragged")`, what every pairwise loss did before), after checking both give
the same loss and gradient in float64 (largest relative difference
{max(r["max_rel_difference_f64"] for r in results["mslr"]):.1e}). Memory: peak RSS growth
over three calls in a fresh subprocess per variant (`VmHWM` after minus before; 0 means
below the high-water mark left by making the data). Maths: `docs/pair-sums.md`.

{markdown_table(header, rows)}
"""


def memory_rows(memory_results: dict[str, Any]) -> list[list[str]]:
    rows = []
    allrank = memory_results.get("allRank rankNet, MSLR 64", {})
    base = allrank.get("peak_growth_mib")
    for name, value in memory_results.items():
        if "skipped" in value:
            rows.append([f"peak RSS growth, {name}", "–", f"skipped: {value['skipped']}", "–"])
            continue
        growth = value["peak_growth_mib"]
        if base and name.startswith("closed") and "MSLR 64" in name:
            share = growth / base
            rows.append(
                [
                    f"peak RSS growth, {name}",
                    f"< 1/100 of allRank's ({base:,.0f} MiB)",
                    f"{growth:.1f} MiB ({share:.4f}×)",
                    verdict(share < TARGET_MEMORY),
                ]
            )
        else:
            rows.append([f"peak RSS growth, {name}", "O(items)", f"{growth:,.1f} MiB", "–"])
    return rows


def extra_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every part, write the JSON and the BENCHMARKS.md section."""
    args = parse_args(NAME, argv, seeds=1, extra=extra_options)
    torch.set_num_threads(1)
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker)))
        return {}
    repeats = 2 if args.quick else args.repeats
    data = batch(8 if args.quick else 256)
    results = {"repeats": repeats, "groups": len(torch.unique(data["group_ids"]))}
    results["mslr"] = versus_enumeration(data, repeats)
    results["allrank"] = (
        {}
        if args.quick
        else {
            "MSLR 64 groups": versus_allrank(batch(64), max(3, repeats // 2)),
            "recommender, 10,000 groups × 20": versus_allrank(
                batch(10_000, kind="recommender"), repeats
            ),
        }
    )
    results["big"] = big_group(2_000 if args.quick else 200_000, repeats)
    results["memory"] = memory([] if args.quick else list(MEMORY_VARIANTS))
    write_results(NAME, args, results)
    publish(TITLE, report(results), args)
    return results


if __name__ == "__main__":
    main()
