"""Wall and CPU time and results of ``distill demo`` (target: about 2 minutes on a 2-core CPU).

Runs the demo in a fresh subprocess (imports included, as ``make demo`` does), with the
machine's default thread count, and reads each track's ``results.json`` (5 seeds: mean,
paired Δ to the baseline with its 95 % interval, wins). CPU time (user + system of the demo
and its worker processes) is the number to read on a shared machine, where wall time
measures the other load too. Run:
``python -m benchmarks.demo_time`` (``--quick``: ``distill demo --quick``).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import markdown_table, parse_args, publish, write_results
from distill.report.decision import delta_text
from distill.report.tables import format_percent

NAME = "demo_time"
TARGET_S = 120.0
TRACKS = ("digits", "recommender", "ctr")


def run_demo(quick: bool, out: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds and console output of one ``distill demo`` subprocess."""
    command = [sys.executable, "-c", "from distill.cli import main; main()", "demo", "--quiet"]
    command += ["--out", str(out), *(["--quick"] if quick else [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def track_rows(out: Path) -> list[list[str]]:
    """One Markdown row per model: track, model, headline metric, gap recovered, params."""
    rows = []
    for track in TRACKS:
        results = json.loads((out / "demo" / track / "results.json").read_text())
        metric = results["metric"]
        for row in [results["teacher"], *results["variants"]]:
            paired = row.get("paired")
            rows.append(
                [
                    track,
                    row["name"],
                    f"{metric} {row['metrics'][metric]:.4f} ± {row['std'][metric]:.4f}",
                    delta_text(paired),
                    "–" if paired is None else f"{paired['wins']}/{paired['n']}",
                    format_percent(row.get("gap_recovered"), row.get("gap_recovered_ci")) or "–",
                ]
            )
    return rows


def main(argv=None) -> None:
    args = parse_args(NAME, argv, seeds=1)
    with tempfile.TemporaryDirectory() as folder:
        seconds, cpu, output = run_demo(args.quick, Path(folder))
        rows = track_rows(Path(folder))
    verdict = "met" if seconds <= TARGET_S else "MISSED"
    numbers = {"wall_time_s": round(seconds, 1), "cpu_time_s": round(cpu, 1)}
    numbers |= {"target_s": TARGET_S, "rows": rows}
    write_results(NAME, args, {**numbers, "output": output})
    columns = ["track", "model", "test metric (mean ± std)", "Δ [95 % CI]", "wins", "gap"]
    body = (
        f"`distill demo`{' --quick' if args.quick else ''} in a fresh process: "
        f"**{seconds:.0f} s** wall time (target ≤ {TARGET_S:.0f} s: {verdict}), "
        f"{cpu:.0f} s CPU time over its processes.\n\n" + markdown_table(columns, rows)
    )
    publish("distill demo: wall time and results", body, args)


if __name__ == "__main__":
    main()
