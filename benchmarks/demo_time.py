"""Wall time and results of ``distill demo`` (target: at most 3 minutes on a 2-core CPU).

Runs the demo in a fresh subprocess (imports included, as ``make demo`` does), with the
machine's default thread count, and reads each track's ``results.json``. Run:
``python -m benchmarks.demo_time`` (``--quick``: ``distill demo --quick``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import markdown_table, parse_args, publish, write_results

NAME = "demo_time"
TARGET_S = 180.0
TRACKS = ("digits", "recommender", "ctr")


def run_demo(quick: bool, out: Path) -> tuple[float, str]:
    """Seconds of wall time and console output of one ``distill demo`` subprocess."""
    command = [sys.executable, "-c", "from distill.cli import main; main()", "demo"]
    command += ["--out", str(out), *(["--quick"] if quick else [])]
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, done.stdout


def track_rows(out: Path) -> list[list[str]]:
    """One Markdown row per model: track, model, headline metric, gap recovered, params."""
    rows = []
    for track in TRACKS:
        results = json.loads((out / "demo" / track / "results.json").read_text())
        metric = results["metric"]
        for row in [results["teacher"], *results["variants"]]:
            gap = row.get("gap_recovered")
            rows.append(
                [
                    track,
                    row["name"],
                    f"{metric} {row['metrics'][metric]:.4f}",
                    "–" if gap is None else f"{100 * gap:.0f}%",
                    f"{row['params']:,}",
                ]
            )
    return rows


def main(argv=None) -> None:
    args = parse_args(NAME, argv, seeds=1)
    with tempfile.TemporaryDirectory() as folder:
        seconds, output = run_demo(args.quick, Path(folder))
        rows = track_rows(Path(folder))
    verdict = "met" if seconds <= TARGET_S else "MISSED"
    numbers = {"wall_time_s": round(seconds, 1), "target_s": TARGET_S, "rows": rows}
    write_results(NAME, args, {**numbers, "output": output})
    body = (
        f"`distill demo`{' --quick' if args.quick else ''} in a fresh process: "
        f"**{seconds:.0f} s** wall time (target ≤ {TARGET_S:.0f} s: {verdict}).\n\n"
        + markdown_table(["track", "model", "test metric", "gap recovered", "params"], rows)
    )
    publish("distill demo: wall time and results", body, args)


if __name__ == "__main__":
    main()
