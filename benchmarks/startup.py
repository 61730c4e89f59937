"""Startup and report time: ``distill --help`` against ``import torch``, and the report figures.

Target: ``distill --help`` takes under 1 s more than ``python -c "import torch"``. Each command
runs in a fresh subprocess; the commands of a round run back to back (interleaved) and the
medians over rounds are reported. The report part renders a run report's figures (training
curves of 12 variants, soft targets, two reliability diagrams, NDCG bars, a pair scatter) to
PNG in a subprocess and reports the seconds (imports excluded) and the bytes.

``--baseline SRC`` also times another source tree (e.g. a checkout of an older commit's
``src``) in the same rounds, for a before/after comparison. Run:
``OMP_NUM_THREADS=1 python -m benchmarks.startup [--baseline ../old/src]``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import ROOT, markdown_table, parse_args, publish, write_results

NAME = "startup"
TARGET_S = 1.0
SRC = ROOT / "src"

# Renders the standard report figures; prints {"seconds": ..., "bytes": ...}.
RENDER = """
import json, time
import numpy as np, torch
from distill import report
from distill.report.files import figure_png

rng = np.random.default_rng(0)
rows = []
for v in range(12):
    for step in range(0, 600, 10):
        rows.append({"variant": f"v{v}", "step": step, "split": "train", "loss": 1 / (step + 1),
                     "loss/kd": 0.5 / (step + 1), "loss/labels": 0.2 / (step + 1)})
        if step % 50 == 0:
            rows.append({"variant": f"v{v}", "step": step, "split": "valid", "accuracy": 0.9})
started, cpu = time.perf_counter(), time.process_time()
figures = [report.plot_training_curves([r for r in rows if r["variant"] == f"v{v}"], title=f"v{v}")
           for v in range(12)]
temperatures = (1.0, 2.0, 4.0, 8.0, 20.0)
figures.append(report.plot_soft_targets(torch.randn(4, 10) * 3, temperatures=temperatures))
for _ in range(2):
    figures.append(report.plot_reliability(torch.rand(400), (torch.rand(400) > 0.5).float()))
figures.append(report.plot_ndcg_bars({f"m{i}": {1: 0.6, 5: 0.65, 10: 0.7} for i in range(7)}))
figures.append(report.plot_pair_scatter(rng.normal(size=20000), rng.normal(size=20000)))
sizes = [len(figure_png(figure)) for figure in figures]
wall, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"seconds": wall, "cpu_seconds": cpu, "bytes": sum(sizes)}))
"""


def _env(src: Path) -> dict[str, str]:
    """PYTHONPATH on ``src``, one thread, bytecode cached (as an installed package has it)."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], src: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one subprocess."""
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=_env(src))
    return time.perf_counter() - started, _children_cpu() - cpu


def _render(src: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", RENDER], check=True, capture_output=True, text=True, env=_env(src)
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _paired(times: dict[str, list[float]], label: str) -> float:
    """Median over rounds of ``distill --help`` minus the same round's ``import torch``."""
    pairs = zip(times[f"distill --help ({label})"], times["import torch"], strict=True)
    return statistics.median(help_s - torch_s for help_s, torch_s in pairs)


def _add_extra(parser) -> None:
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--baseline", type=Path, help="another source tree to time alongside")


def main(argv=None) -> None:
    """Time the commands in interleaved rounds; write the results and the section."""
    args = parse_args(NAME, argv, seeds=1, extra=_add_extra)
    rounds = 2 if args.quick else args.rounds
    trees = {"this tree": SRC} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    python = sys.executable
    commands = {"import torch": ([python, "-c", "import torch"], SRC)}
    for label, src in trees.items():
        commands[f"import distill ({label})"] = ([python, "-c", "import distill"], src)
        commands[f"distill --help ({label})"] = ([python, "-m", "distill", "--help"], src)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    renders: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    for command, src in commands.values():  # untimed: writes each tree's bytecode cache
        _run(command, src)
    for _ in range(rounds):
        for name, (command, src) in commands.items():
            wall, cpu = _run(command, src)
            walls[name].append(wall)
            cpus[name].append(cpu)
        for label, src in trees.items():
            renders[label].append(_render(src))
    # Paired per round: the command's time minus the same round's `import torch`.
    over = {
        label: {kind: _paired(times, label) for kind, times in (("wall", walls), ("cpu", cpus))}
        for label in trees
    }
    report = {
        label: {
            key: statistics.median(r[key] for r in runs)
            for key in ("seconds", "cpu_seconds", "bytes")
        }
        for label, runs in renders.items()
    }
    median = statistics.median
    write_results(
        NAME,
        args,
        {
            "rounds": rounds,
            "walls_s": walls,
            "cpu_s": cpus,
            "help_over_torch_s": over,
            "report_figures": report,
            "target_s": TARGET_S,
        },
    )
    rows = [[name, f"{median(walls[name]):.2f}", f"{median(cpus[name]):.2f}"] for name in commands]
    rows += [
        [
            f"distill --help − import torch ({label}; paired per round)",
            f"{value['wall']:.2f}",
            f"{value['cpu']:.2f} ({'met' if value['cpu'] < TARGET_S else 'missed'}: "
            f"target < {TARGET_S:g} s)",
        ]
        for label, value in over.items()
    ]
    rows += [
        [
            f"report figures, 17 PNGs, {value['bytes'] / 1024:.0f} KiB ({label})",
            f"{value['seconds']:.2f}",
            f"{value['cpu_seconds']:.2f}",
        ]
        for label, value in report.items()
    ]
    body = (
        f"Fresh subprocess per command (bytecode cached, one untimed warm-up), {rounds} "
        "interleaved rounds, medians, one thread. CPU "
        "time (user + system) is the figure to read on a shared machine: wall time grows with "
        "the load of other jobs. The report rows time rendering only (imports excluded).\n\n"
        + markdown_table(["command", "wall (s)", "CPU (s)"], rows)
    )
    publish("Startup and report time (`benchmarks/startup.py`)", body, args)


if __name__ == "__main__":
    main()
