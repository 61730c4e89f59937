"""The streamed pipeline end to end: raw Criteo TSV → shards → teacher → score shards → student
→ report, each step a separate process; peak RSS and wall time of every step.

The commands of examples/criteo_pipeline.toml's header, run in a scratch folder on synthetic
Criteo-format TSV files (``examples/criteo_shards.py --tsv``): ``distill convert`` of each
split, ``distill teacher`` (a wide Wide & Deep, one epoch on the stream), ``distill score``
(score shards beside the data shards), ``distill student`` (``labels`` and ``binary_kd``),
``distill report`` (the HTML report ``distill run`` ends with). A step's peak RSS is its own
process's ``ru_maxrss`` (``os.wait4``). Target: every step under 2 GiB at 20 M training rows.
Sizes accumulate in the results file (one run per size).

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.pipeline --rows 2000000 [--keep]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, markdown_table, parse_args, publish, write_results

NAME = "pipeline"
TITLE = "Memory and time: the streamed pipeline, TSV to report"
RSS_LIMIT_GIB = 2.0
CONFIG = ROOT / "examples" / "criteo_pipeline.toml"


def extra(parser) -> None:
    parser.add_argument("--rows", type=int, default=2_000_000, help="training rows")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")


def steps(rows: int) -> list[tuple[str, list[str]]]:
    """``(name, argv)`` of every step, in order (run in the scratch folder)."""
    distill = [sys.executable, "-m", "distill"]
    convert = [
        (
            f"convert {split}",
            [*distill, "convert", f"data/criteo_raw/{split}.tsv", "--out", f"data/criteo/{split}"],
        )
        for split in ("train", "valid", "test")
    ]
    return [
        (
            "write TSV",
            [sys.executable, str(ROOT / "examples" / "criteo_shards.py"), str(rows), "--tsv"],
        ),
        *convert,
        ("teacher", [*distill, "teacher", str(CONFIG)]),
        ("score", [*distill, "score", str(CONFIG)]),
        ("students", [*distill, "student", str(CONFIG)]),
        ("report", [*distill, "report", str(CONFIG)]),
    ]


def run_step(name: str, argv: list[str], folder: Path) -> dict[str, Any]:
    """One step in its own process: its peak RSS (GiB) and wall time; its output to a log."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    log = folder / f"{name.replace(' ', '_')}.log"
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(
            f"step {name!r} failed ({process.returncode}): {log.read_text()[-3000:]}"
        )
    result = {"peak_rss_gib": usage.ru_maxrss / 2**20, "wall_s": wall}  # ru_maxrss: KiB
    print(f"{name}: {result}", flush=True)
    return result


def pipeline(rows: int, folder: Path) -> dict[str, Any]:
    """Every step on ``rows`` training rows in ``folder``; the final test AUCs."""
    measured = {name: run_step(name, argv, folder) for name, argv in steps(rows)}
    results = json.loads((folder / "runs" / "criteo_pipeline" / "results.json").read_text())
    students = {row["name"]: row["metrics"]["auc"] for row in results["variants"]}
    return {
        "steps": measured,
        "teacher_auc": results["teacher"]["metrics"]["auc"],
        "student_auc": students["binary_kd"],
        "labels_auc": students["labels"],
        "data_gib": _size_gib(folder / "data"),
    }


def _size_gib(folder: Path) -> dict[str, float]:
    sizes = {}
    for name in ("criteo_raw", "criteo"):
        files = (path for path in (folder / name).rglob("*") if path.is_file())
        sizes[name] = sum(path.stat().st_size for path in files) / 2**30
    return sizes


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(NAME, argv, seeds=1, extra=extra)
    rows = 20_000 if args.quick else args.rows
    folder = Path(tempfile.mkdtemp(prefix="distill-pipeline-", dir=args.work))
    try:
        run = pipeline(rows, folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    path = Path(args.results_dir) / f"{NAME}.json"
    earlier = json.loads(path.read_text()) if path.is_file() and not args.quick else {}
    earlier = {} if earlier.get("quick", True) else earlier["runs"]  # never a --quick run's
    runs = {int(n): value for n, value in earlier.items()} | {rows: run}
    payload = {"runs": dict(sorted(runs.items())), "target_rss_gib": RSS_LIMIT_GIB}
    write_results(NAME, args, payload)
    publish(TITLE, _markdown(payload["runs"]), args)
    return payload


def _markdown(runs: dict[int, dict[str, Any]]) -> str:
    names = list(next(iter(runs.values()))["steps"])
    header = ["step", *(f"{n:,} rows: peak RSS (GiB) / wall (s)" for n in runs)]
    table = [[name, *(_cell(run["steps"].get(name)) for run in runs.values())] for name in names]
    aucs = markdown_table(
        [
            "train rows",
            "teacher test AUC",
            "binary_kd test AUC",
            "labels test AUC",
            "TSV (GiB)",
            "shards (GiB)",
        ],
        [
            [
                f"{n:,}",
                f"{run['teacher_auc']:.4f}",
                f"{run['student_auc']:.4f}",
                f"{run['labels_auc']:.4f}",
                f"{run['data_gib']['criteo_raw']:.2f}",
                f"{run['data_gib']['criteo']:.2f}",
            ]
            for n, run in runs.items()
        ],
    )
    verdicts = []
    for n, run in runs.items():
        worst = max(step["peak_rss_gib"] for step in run["steps"].values())
        met = "met" if worst < RSS_LIMIT_GIB else "missed"
        verdicts.append(f"{n:,} rows: largest step peak {worst:.2f} GiB ({met})")
    return f"""
The commands of examples/criteo_pipeline.toml on synthetic Criteo-format TSV (valid and test:
5 % of the training rows each), each step a separate process (peak RSS: the process's own
`ru_maxrss`). The teacher is a Wide & Deep (embed 16, hidden [256, 128]) trained one epoch on
the stream; the students (embed 4, hidden [32]) learn from the labels alone and from the score
shards with binary KD (`distill student` trains both, one after the other).

{markdown_table(header, table)}

{aucs}

Target: every step's peak RSS under {RSS_LIMIT_GIB} GiB at 20 M rows. {"; ".join(verdicts)}.
The AUCs are of one seed each: the pipeline's end result, not a comparison of the variants.
"""


def _cell(step: dict[str, Any] | None) -> str:
    return "–" if step is None else f"{step['peak_rss_gib']:.2f} / {step['wall_s']:.0f}"


if __name__ == "__main__":
    main()
