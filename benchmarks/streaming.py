"""Streaming over Parquet shards: peak memory of ``distill run`` and streaming ÷ in-memory speed.

Synthetic Criteo-shaped shards (13 numeric + 26 categorical columns and a logged
``teacher_logit``, ``distill.data.synthetic_shards``) are trained on by a Wide & Deep student
with binary KD from the score column, one epoch.

1. Peak RSS: ``distill run`` of a streamed config (``data.streaming = true``) in a fresh
   process per size; targets: the largest size's peak within 1.2× of the smallest's, and
   under 2 GiB.
2. Throughput: one epoch of ``fit`` over the streamed table against ``fit`` over the same rows
   held in memory (the table's chunks concatenated), both with sparse embedding gradients,
   interleaved in one process; target
   streaming ÷ in-memory rows/s ≥ 0.8.
3. ``--ddp``: one epoch of ``fit`` over the same shards under ``torchrun`` with 1 and with 2
   CPU processes (alternated), rows/s, the rows each rank read, and the exactly-once check
   (every row trained on by exactly one rank).

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.streaming [--quick] [--rows 200000 2000000]``,
``... --memory-only --rows 20000000``, ``... --ddp [--rows 400000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import ROOT, markdown_table, parse_args, publish, write_results
from distill.data.streaming import StreamingTable, concat_datasets
from distill.data.synthetic_shards import CATEGORICAL, NUMERIC, write_criteo_shards
from distill.models import WideAndDeep
from distill.teachers import StreamedScoreColumns
from distill.train import BinaryKDTerm, Objective, TrainOptions, fit

NAME = "streaming"
TITLE = "Memory and speed: streaming Parquet shards"
DDP_TITLE = "Streaming shards under torchrun: 1 vs 2 CPU processes"
RSS_RATIO, RSS_LIMIT_GIB, SPEED_TARGET = 1.2, 2.0, 0.8
BATCH_SIZE, SHARD_ROWS, BUCKETS = 1024, 200_000, 2**17
DDP_BATCH_SIZES = (1024, 8192)
"""Global batches of the torchrun runs: the per-step gradient exchange is amortised over more
rows in the larger one."""
MAIN = "import resource, sys\nfrom distill.__main__ import main\ntry:\n    main()\nfinally:\n"


def extra(parser) -> None:
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 2_000_000])
    parser.add_argument("--repeats", type=int, default=2, help="interleaved throughput rounds")
    parser.add_argument(
        "--ddp", action="store_true", help="only the 1 vs 2 torchrun processes runs"
    )
    parser.add_argument(
        "--ddp-worker", nargs=3, metavar=("SHARDS", "OUT", "BATCH"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the peak-RSS runs (results: streaming_memory.json; one size is compared "
        "with the largest size of streaming.json, several with the smallest of them)",
    )


def write_data(folder: Path, rows: int) -> None:
    """Train shards of ``rows`` rows; valid/test of ``rows // 20`` each (at least 2 000)."""
    held_out = max(rows // 20, 2_000)
    shard_rows = min(SHARD_ROWS, rows)
    write_criteo_shards(folder / "train", rows=rows, shard_rows=shard_rows, seed=0)
    write_criteo_shards(folder / "valid", rows=held_out, shard_rows=shard_rows, seed=1)
    write_criteo_shards(folder / "test", rows=held_out, shard_rows=shard_rows, seed=2)


def config_text(folder: Path) -> str:
    """The streamed run of examples/criteo_streaming.toml on ``folder``'s shards."""
    text = (ROOT / "examples" / "criteo_streaming.toml").read_text()
    for split in ("train", "valid", "test"):
        text = text.replace(f'"data/criteo_shards/{split}"', json.dumps(str(folder / split)))
    return text.replace('out_dir = "runs"', f"out_dir = {json.dumps(str(folder / 'runs'))}")


def peak_rss_of_run(folder: Path) -> dict[str, Any]:
    """``distill run`` in a fresh process; its peak RSS (``ru_maxrss``) and wall time."""
    config = folder / "config.toml"
    config.write_text(config_text(folder))
    report = folder / "maxrss.txt"
    script = MAIN + f"    open({str(report)!r}, 'w').write(str(resource.getrusage("
    script += "resource.RUSAGE_SELF).ru_maxrss))\n"
    started = time.perf_counter()
    argv = [sys.executable, "-c", script]
    command = [*argv, "run", str(config), "--no-report", "--set", "train.epochs=1"]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"distill run failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    results = json.loads((folder / "runs" / "criteo_streaming" / "results.json").read_text())
    return {
        "peak_rss_gib": int(report.read_text()) / 2**20,  # ru_maxrss is in KiB on Linux
        "wall_s": time.perf_counter() - started,
        "test_auc": {row["name"]: row["metrics"]["auc"] for row in results["variants"]},
        "teacher_auc": results["teacher"]["metrics"]["auc"],
    }


def table_of(folder: Path) -> StreamingTable:
    return StreamingTable(
        folder / "train",
        label="label",
        features=NUMERIC,
        categorical=CATEGORICAL,
        hash_buckets=BUCKETS,
        extras=["teacher_logit"],
        shuffle_buffer=100_000,
    )


def throughput(folder: Path, repeats: int) -> dict[str, Any]:
    """One epoch of fit, streamed against in memory (same rows, same options), interleaved."""
    table = table_of(folder)
    memory = concat_datasets(list(table.iter_chunks(batch_size=65_536, shuffle=False)))
    options = train_options()
    objective = Objective([BinaryKDTerm(soft_weight=0.5)])
    sources = {
        "streaming": (table, StreamedScoreColumns(column="teacher_logit")),
        "in_memory": (memory, _ExtrasTeacher(memory)),
    }
    times: dict[str, list[float]] = {name: [] for name in sources}
    for _ in range(repeats):
        for name, (data, teacher) in sources.items():
            torch.manual_seed(0)
            model = WideAndDeep(table.num_embeddings, table.width, hidden=(64, 32))
            started = time.perf_counter()
            fit(model, data, objective=objective, options=options, teacher=teacher)
            times[name].append(time.perf_counter() - started)
    rows = len(table)
    speed = {name: rows / min(values) for name, values in times.items()}
    return {"rows": rows, "times_s": times, "rows_per_s": speed}


class _ExtrasTeacher:
    """The in-memory rows' logged score column, served by id (the in-memory counterpart)."""

    def __init__(self, data) -> None:
        self.logits = data.extras["teacher_logit"]

    def predict(self, features: torch.Tensor, ids: torch.Tensor, values=None) -> torch.Tensor:
        return self.logits[ids]


def memory_only(args) -> dict[str, Any]:
    """Peak RSS at ``--rows`` sizes, against the largest size of the full benchmark."""
    runs = {}
    with tempfile.TemporaryDirectory() as scratch:
        for rows in sorted(args.rows):
            folder = Path(scratch) / str(rows)
            write_data(folder, rows)
            runs[rows] = peak_rss_of_run(folder)
            print(rows, runs[rows], flush=True)
    if len(runs) > 1:  # the smallest size measured here is the baseline
        reference = {}
        baseline_rows = min(runs)
    else:
        full = json.loads((Path(args.results_dir) / f"{NAME}.json").read_text())
        reference = {int(rows): run for rows, run in full["runs"].items()}
        baseline_rows = max(reference)
    largest = max(runs)
    baseline = {**reference, **runs}[baseline_rows]
    ratio = runs[largest]["peak_rss_gib"] / baseline["peak_rss_gib"]
    payload = {"runs": runs, "baseline": {baseline_rows: baseline}}
    payload["rss_ratio"] = ratio
    write_results(f"{NAME}_memory", args, payload)
    met = (
        "met" if ratio <= RSS_RATIO and runs[largest]["peak_rss_gib"] < RSS_LIMIT_GIB else "missed"
    )
    rows = [
        [
            f"{n:,}",
            f"{run['peak_rss_gib']:.2f}",
            f"{run['wall_s']:.0f}",
            f"{run['test_auc']['binary_kd']:.4f}",
            f"{run['teacher_auc']:.4f}",
        ]
        for n, run in sorted({**reference, **runs}.items())
    ]
    table = markdown_table(
        ["train rows", "peak RSS (GiB)", "wall (s)", "student test AUC", "teacher column AUC"],
        rows,
    )
    body = f"""
The same `distill run` as in "{TITLE}", at larger sizes, each in a fresh process (rows not
measured by this command come from that section's run):

{table}

Peak RSS {largest:,} rows ÷ {baseline_rows:,} rows: **{ratio:.2f}×** (target ≤ {RSS_RATIO}× and
under {RSS_LIMIT_GIB} GiB: {met}).
"""
    publish("Memory: streaming Parquet shards at scale", body, args)
    return payload


def train_options(batch_size: int = BATCH_SIZE) -> TrainOptions:
    """One epoch, the benchmark's batch, sparse embedding gradients (lazy Adam)."""
    return TrainOptions(
        epochs=1,
        batch_size=batch_size,
        lr=3e-3,
        device="cpu",
        progress=False,
        log_every=10**6,
        sparse_embeddings=True,
    )


class _RecordingColumns(StreamedScoreColumns):
    """The logged teacher column, recording the ids of every batch trained on."""

    def __init__(self) -> None:
        super().__init__(column="teacher_logit")
        self.ids: list[np.ndarray] = []

    def batch_logits(self, extras, ids):
        self.ids.append(ids.numpy().copy())
        return super().batch_logits(extras, ids)


def ddp_worker(folder: Path, out: Path, batch_size: int) -> None:
    """Inside ``torchrun``: one epoch of ``fit``; each rank writes its ids, the rows it read
    and (rank 0) the epoch's seconds."""
    import torch.distributed as dist

    table, teacher, read = table_of(folder), _RecordingColumns(), [0]
    original = StreamingTable.read_shard

    def counting(self, shard, rows=None):
        for piece in original(self, shard, rows):
            read[0] += len(piece)
            yield piece

    StreamingTable.read_shard = counting
    torch.manual_seed(0)
    model = WideAndDeep(table.num_embeddings, table.width, hidden=(64, 32))
    objective = Objective([BinaryKDTerm(soft_weight=0.5)])
    started = time.perf_counter()
    fit(model, table, objective=objective, options=train_options(batch_size), teacher=teacher)
    elapsed = time.perf_counter() - started
    rank = dist.get_rank() if dist.is_initialized() else 0
    np.save(out / f"ids{rank}.npy", np.concatenate(teacher.ids))
    (out / f"rank{rank}.json").write_text(json.dumps({"epoch_s": elapsed, "rows_read": read[0]}))


def ddp_epoch(folder: Path, processes: int, batch_size: int) -> dict[str, Any]:
    """One epoch under ``torchrun`` with ``processes`` CPU workers: time, reads, the check."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={processes}", "-m", "benchmarks.streaming",
                   "--ddp-worker", str(folder), str(out), str(batch_size)]  # fmt: skip
        env = os.environ | {"OMP_NUM_THREADS": "1"}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"torchrun failed: {done.stderr[-3000:]}")
        ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(processes)]
        ids = np.concatenate([np.load(out / f"ids{r}.npy") for r in range(processes)])
    rows = len(table_of(folder))
    exactly_once = len(ids) == rows and bool(np.array_equal(np.sort(ids), np.arange(rows)))
    return {
        "epoch_s": max(rank["epoch_s"] for rank in ranks),
        "rows_read": [rank["rows_read"] for rank in ranks],
        "exactly_once": exactly_once,
    }


def ddp_comparison(args) -> dict[str, Any]:
    """1 vs 2 torchrun processes over the same shards at each global batch of
    :data:`DDP_BATCH_SIZES`, alternated ``--repeats`` times."""
    rows = 40_000 if args.quick else max(args.rows)
    settings = [(batch, processes) for batch in DDP_BATCH_SIZES for processes in (1, 2)]
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {setting: [] for setting in settings}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        write_criteo_shards(folder / "train", rows=rows, shard_rows=max(rows // 8, 1), seed=0)
        for _ in range(1 if args.quick else args.repeats):
            for batch, processes in settings:
                runs[batch, processes].append(ddp_epoch(folder, processes, batch))
    best = {setting: min(run["epoch_s"] for run in r) for setting, r in runs.items()}
    payload = {
        "rows": rows,
        "shards": 8,
        "batches": {
            str(batch): {
                "runs": {str(p): runs[batch, p] for p in (1, 2)},
                "rows_per_s": {str(p): rows / best[batch, p] for p in (1, 2)},
                "speedup": best[batch, 1] / best[batch, 2],
            }
            for batch in DDP_BATCH_SIZES
        },
        "exactly_once": all(run["exactly_once"] for r in runs.values() for run in r),
    }
    write_results(f"{NAME}_ddp", args, payload)
    publish(DDP_TITLE, _ddp_markdown(payload), args)
    return payload


def _ddp_markdown(payload: dict[str, Any]) -> str:
    check = "every row exactly once" if payload["exactly_once"] else "FAILED"
    rows = []
    for batch, result in payload["batches"].items():
        for processes in ("1", "2"):
            reads = result["runs"][processes][0]["rows_read"]
            speed = f"{result['rows_per_s'][processes]:,.0f}"
            ratio = f"**{result['speedup']:.2f}×**" if processes == "2" else "–"
            rows.append([batch, processes, speed, ratio, ", ".join(f"{n:,}" for n in reads)])
    header = ["global batch", "processes", "rows/s", "2 ÷ 1 process", "rows read by each rank"]
    return f"""
One epoch of `fit` (Wide & Deep, binary KD from the logged column, sparse embeddings) over
{payload["rows"]:,} synthetic Criteo-shaped rows in {payload["shards"]} shards, under `torchrun
--standalone` on the CPU (gloo), 1 and 2 processes at two global batches, alternated (best of
the rounds; the time of the slowest rank, `fit`'s DDP set-up included; {os.cpu_count()} cores,
shared with other jobs):

{markdown_table(header, rows)}

Each step exchanges the gradients (gloo; the embedding tables' sparse gradients are gathered
rather than summed), once per global batch: a larger batch spreads that exchange over more
rows. Exactly-once check (the ids each rank trained on,
every round): {check}. Each rank reads only its own run of the shards (docs/streaming.md, "One
epoch").
"""


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(NAME, argv, seeds=1, extra=extra)
    if args.ddp_worker:
        ddp_worker(Path(args.ddp_worker[0]), Path(args.ddp_worker[1]), int(args.ddp_worker[2]))
        return {}
    if args.ddp:
        return ddp_comparison(args)
    if args.memory_only:
        return memory_only(args)
    sizes = [20_000, 60_000] if args.quick else sorted(args.rows)
    memory_runs, speed = {}, None
    with tempfile.TemporaryDirectory() as scratch:
        for rows in sizes:
            folder = Path(scratch) / str(rows)
            write_data(folder, rows)
            memory_runs[rows] = peak_rss_of_run(folder)
            print(rows, memory_runs[rows], flush=True)
        speed = throughput(Path(scratch) / str(sizes[-1]), 1 if args.quick else args.repeats)
    small, large = memory_runs[sizes[0]], memory_runs[sizes[-1]]
    ratio = large["peak_rss_gib"] / small["peak_rss_gib"]
    speed_ratio = speed["rows_per_s"]["streaming"] / speed["rows_per_s"]["in_memory"]
    payload = {
        "sizes": sizes,
        "runs": memory_runs,
        "rss_ratio": ratio,
        "throughput": speed,
        "speed_ratio": speed_ratio,
        "targets": {"rss_ratio": RSS_RATIO, "rss_gib": RSS_LIMIT_GIB, "speed": SPEED_TARGET},
    }
    write_results(NAME, args, payload)
    publish(TITLE, _markdown(payload), args)
    return payload


def _markdown(payload: dict[str, Any]) -> str:
    rows = [
        [
            f"{rows:,}",
            f"{run['peak_rss_gib']:.2f}",
            f"{run['wall_s']:.0f}",
            f"{run['test_auc']['binary_kd']:.4f}",
            f"{run['teacher_auc']:.4f}",
        ]
        for rows, run in payload["runs"].items()
    ]
    table = markdown_table(
        ["train rows", "peak RSS (GiB)", "wall (s)", "student test AUC", "teacher column AUC"],
        rows,
    )
    ratio, limit = payload["rss_ratio"], payload["targets"]["rss_gib"]
    largest = max(run["peak_rss_gib"] for run in payload["runs"].values())
    speed = payload["throughput"]["rows_per_s"]
    met = "met" if ratio <= RSS_RATIO and largest < limit else "missed"
    speed_met = "met" if payload["speed_ratio"] >= SPEED_TARGET else "missed"
    return f"""
`distill run` of examples/criteo_streaming.toml (Wide & Deep student, binary KD from the
logged teacher column, one epoch, `shuffle_buffer` 100 000 rows) over synthetic
Criteo-shaped shards of 200 000 rows, each size in a fresh process:

{table}

Peak RSS ratio largest ÷ smallest size: **{ratio:.2f}×** (target ≤ {RSS_RATIO}× and under
{limit} GiB: {met}).

Throughput, one epoch of `fit` on the {payload["throughput"]["rows"]:,} rows of the largest
size, interleaved in one process (best of the rounds): streaming {speed["streaming"]:,.0f}
rows/s, in memory {speed["in_memory"]:,.0f} rows/s, ratio **{payload["speed_ratio"]:.2f}**
(target ≥ {SPEED_TARGET}: {speed_met}). Both use sparse embedding gradients (lazy Adam). The
in-memory side excludes reading and hashing the rows, which the streaming side does inside
its epoch.
"""


if __name__ == "__main__":
    main()
