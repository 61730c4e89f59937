"""NDCG@10 speed: ``distill.metrics.ndcg`` vs torchmetrics' ``RetrievalNormalizedDCG``
(and, as a side check, ``distill.metrics.auc`` vs scikit-learn's ``roc_auc_score``).

100k groups of 1–200 items (~10M rows, rows shuffled so groups are unsorted), relevance 0–4,
float32 scores. Both run side by side in one process on one thread; the ratio is what counts
(the CPU may be shared). Linear gain for both (torchmetrics' only gain); our exp2 time is also
recorded. AUC: 2M float32 scores, best of ``--repeats`` each. Writes
``benchmarks/results/ndcg_speed.json``.

Run: ``python -m benchmarks.ndcg_speed [--groups 100000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from sklearn.metrics import roc_auc_score
from torchmetrics.retrieval import RetrievalNormalizedDCG

from distill._io import write_atomic
from distill.metrics import auc, ndcg

RESULTS = Path(__file__).parent / "results" / "ndcg_speed.json"
TARGET_SPEEDUP = 10.0


def make_data(n_groups: int, max_size: int = 200, seed: int = 0):
    """Shuffled rows of ``n_groups`` groups with uniform sizes in [1, max_size]."""
    generator = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, max_size + 1, (n_groups,), generator=generator)
    groups = torch.repeat_interleave(torch.arange(n_groups), sizes)
    groups = groups[torch.randperm(len(groups), generator=generator)]
    labels = torch.randint(0, 5, (len(groups),), generator=generator)
    scores = torch.randn(len(groups), generator=generator) + 0.3 * labels
    return scores, labels, groups


def best_time(function, repeats: int) -> tuple[float, object]:
    """Best wall time over ``repeats`` calls and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def auc_comparison(rows: int, repeats: int) -> dict:
    """Seconds and values of our AUC and scikit-learn's on the same float32 scores."""
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 2, (rows,), generator=generator)
    scores = torch.randn(rows, generator=generator) + 0.5 * labels
    ours_s, ours = best_time(lambda: auc(scores, labels), repeats)
    theirs_s, theirs = best_time(lambda: roc_auc_score(labels.numpy(), scores.numpy()), repeats)
    return {
        "rows": rows,
        "distill_s": round(ours_s, 3),
        "sklearn_s": round(theirs_s, 3),
        "speedup": round(theirs_s / ours_s, 1),
        "abs_difference": abs(ours - float(theirs)),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    scores, labels, groups = make_data(args.groups)
    reference = RetrievalNormalizedDCG(top_k=10, empty_target_action="skip")
    ours_s, ours = best_time(
        lambda: ndcg(scores, labels, groups, k=10, gain="linear"), args.repeats
    )
    exp2_s, _ = best_time(lambda: ndcg(scores, labels, groups, k=10), args.repeats)
    theirs_s, theirs = best_time(lambda: float(reference(scores, labels, indexes=groups)), 1)
    result = {
        "benchmark": "ndcg_speed",
        "command": " ".join(
            [Path(sys.executable).name, "-m", "benchmarks.ndcg_speed", *(argv or sys.argv[1:])]
        ),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "note": "CPU shared with other jobs during the run; compare the ratio, not seconds",
        },
        "rows": len(scores),
        "groups": args.groups,
        "distill_linear_s": round(ours_s, 3),
        "distill_exp2_s": round(exp2_s, 3),
        "torchmetrics_s": round(theirs_s, 3),
        "speedup": round(theirs_s / ours_s, 1),
        "target_speedup": TARGET_SPEEDUP,
        "target_met": theirs_s / ours_s >= TARGET_SPEEDUP,
        "ndcg_distill": ours,
        "ndcg_torchmetrics": theirs,
        "abs_difference": abs(ours - theirs),
        "auc_vs_sklearn": auc_comparison(2_000_000, args.repeats),
    }
    write_atomic(RESULTS, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
