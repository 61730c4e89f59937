"""Shared helpers of the benchmarks: arguments, machine info, timing, seed statistics, output.

Every benchmark module is run as ``python -m benchmarks.NAME [--quick] [--seeds N]``. It writes
``benchmarks/results/NAME.json`` (machine, command, UTC date, all numbers) and replaces its own
``## `` section of ``BENCHMARKS.md``. ``--quick`` shrinks the work to a few seconds (smoke
tests) and writes into ``--results-dir`` only, never into ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from distill._io import write_atomic

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
MARKDOWN = ROOT / "BENCHMARKS.md"


def parse_args(
    name: str, argv: Sequence[str] | None, *, seeds: int = 5, extra: Callable | None = None
) -> argparse.Namespace:
    """The common options (``--quick``, ``--seeds``, ``--results-dir``, ``--markdown``) plus
    ``extra(parser)``."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}")
    parser.add_argument("--quick", action="store_true", help="tiny run for smoke tests")
    parser.add_argument("--seeds", type=int, default=seeds, help="seeds per setting")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--markdown", type=Path, default=MARKDOWN, help="section target; ignored with --quick"
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    args.command = " ".join([*_launcher(), f"-m benchmarks.{name}", *(argv or sys.argv[1:])])
    return args


def _launcher() -> list[str]:
    """``[OMP_NUM_THREADS=…] <interpreter>``, the interpreter relative to the repository."""
    interpreter = Path(sys.executable)
    shown = "python"
    if interpreter.is_relative_to(ROOT):  # a venv inside the checkout: .venv, .venv-bench
        shown = str(interpreter.relative_to(ROOT))
    threads = os.environ.get("OMP_NUM_THREADS")
    return [f"OMP_NUM_THREADS={threads}", shown] if threads else [shown]


def machine() -> dict[str, Any]:
    """Where the numbers were measured: CPU, cores, threads, load, library versions."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mean_std(values: Iterable[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}`` of the finite values (sample std; 0 for a single value)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return {"mean": statistics.fmean(finite), "std": std, "n": len(finite)}


def fmt(stats: Mapping[str, float], scale: float = 1.0, digits: int = 1) -> str:
    """``"mean ± std"`` of a :func:`mean_std` result, times ``scale``."""
    return f"{stats['mean'] * scale:.{digits}f} ± {stats['std'] * scale:.{digits}f}"


def percent(share: float | None) -> str:
    """A share as a whole percentage (``gap_recovered`` gives None when there is no gap)."""
    return "–" if share is None else f"{share:.0%}"


def time_interleaved(
    candidates: Mapping[str, Callable[[], Any]], *, repeats: int, warmup: int = 1
) -> dict[str, dict[str, Any]]:
    """Median wall time of each candidate, run round-robin ``repeats`` times after warm-up.

    Interleaving spreads load changes of a shared machine evenly over the candidates. The
    process CPU time of each run is kept too: on a shared machine it leaves out the time other
    jobs held the core (with one compute thread it is the work done).

    Returns:
        ``{name: {"median_s", "min_s", "times_s", "cpu_median_s", "cpu_times_s",
        "loadavg_start"}}``; the load average (1, 5, 15 min) is taken before the warm-up.
    """
    load = [round(x, 2) for x in os.getloadavg()]
    for _ in range(warmup):
        for run in candidates.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    cpu: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            run()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    return {
        name: {
            "median_s": statistics.median(t),
            "min_s": min(t),
            "times_s": t,
            "cpu_median_s": statistics.median(cpu[name]),
            "cpu_times_s": cpu[name],
            "loadavg_start": load,
        }
        for name, t in times.items()
    }


def write_results(name: str, args: argparse.Namespace, payload: Mapping[str, Any]) -> Path:
    """Write ``NAME.json`` atomically."""
    folder = Path(args.results_dir)
    document = {
        "benchmark": name,
        "command": args.command,
        "date": utc_now(),
        "quick": bool(args.quick),
        "seeds": args.seeds,
        "machine": machine(),
        **payload,
    }
    return write_atomic(
        folder / f"{name}.json", json.dumps(document, indent=2, default=_jsonable) + "\n"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def publish(title: str, body: str, args: argparse.Namespace) -> None:
    """Print the section; unless ``--quick``, replace ``## title`` in ``--markdown``.

    The header lines (command, machine, date, load) are added here. Other sections are kept
    as they are; the file is rewritten atomically.
    """
    info = machine()
    header = (
        f"Command: `{args.command}` · date {utc_now()} · machine: {info['processor']}, "
        f"{info['cpu_count']} CPU cores ({info['platform']}), torch {info['torch']}, "
        f"load average {info['loadavg']} (CPU shared with other jobs)"
    )
    section = f"## {title}\n\n{header}\n\n{body.strip()}\n"
    print(section)
    if not args.quick:
        replace_section(Path(args.markdown), title, section)


def replace_section(path: Path, title: str, section: str) -> None:
    """Put ``section`` in place of the ``## title`` section of ``path`` (or append it)."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    heading = f"## {title}"
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new_text = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        new_text = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    write_atomic(path, new_text)


def train_model(model, train, *, objective, teacher=None, valid=None, **options: Any):
    """``distill.train.fit`` on the CPU without progress bar; returns the ``FitResult``.

    ``options`` are :class:`distill.train.TrainOptions` fields (``max_steps``, ``lr``, ...).
    """
    from distill.train import TrainOptions, fit

    settings = {"device": "cpu", "progress": False, "log_every": 10_000, **options}
    return fit(
        model,
        train,
        objective=objective,
        options=TrainOptions(**settings),
        teacher=teacher,
        valid=valid,
    )


def run_seeds(seeds: int, run: Callable[[int], Any]) -> list[Any]:
    """``run(seed)`` for seeds ``0 … seeds − 1``, printing progress; the results in order."""
    results = []
    for seed in range(seeds):
        results.append(run(seed))
        print(f"seed {seed}: done", flush=True)
    return results


def paired(per_seed: Sequence[Mapping[str, float]], first: str, second: str) -> dict[str, Any]:
    """Per-seed ``first − second``: mean ± std (:func:`mean_std`) and ``positive`` seeds."""
    diffs = [s[first] - s[second] for s in per_seed]
    return {**mean_std(diffs), "positive": sum(d > 0 for d in diffs)}


def diff_text(
    stats: Mapping[str, Any], seeds: int, *, scale: float = 100.0, digits: int = 2
) -> str:
    """``+1.23 ± 0.45 (4/5)`` of a :func:`paired` result; ``, none`` when inside one std."""
    text = f"{stats['mean'] * scale:+.{digits}f} ± {stats['std'] * scale:.{digits}f}"
    text += f" ({stats['positive']}/{seeds})"
    return text + (", none" if abs(stats["mean"]) <= stats["std"] else "")


def seeded_main(
    name: str,
    title: str,
    argv: Sequence[str] | None,
    *,
    run_seed: Callable[[int, argparse.Namespace], Any],
    summarise: Callable[[list[Any]], dict[str, Any]],
    report: Callable[[dict[str, Any], argparse.Namespace], str],
    stored: Callable[[list[Any]], Any] = lambda per_seed: per_seed,
    extra: Callable | None = None,
) -> tuple[dict[str, Any], list[Any], argparse.Namespace]:
    """A benchmark that runs ``run_seed(seed, args)`` per seed on one thread (``args.wall_s``:
    the seconds it took), then writes ``{"summary", "per_seed": stored(per_seed)}`` and
    publishes ``report(summary, args)``."""
    args = parse_args(name, argv, extra=extra)
    torch.set_num_threads(1)
    started = time.perf_counter()
    per_seed = run_seeds(args.seeds, lambda seed: run_seed(seed, args))
    args.wall_s = round(time.perf_counter() - started)
    summary = summarise(per_seed)
    write_results(name, args, {"summary": summary, "per_seed": stored(per_seed)})
    publish(title, report(summary, args), args)
    return summary, per_seed, args


def seeded_entry(module: str) -> Callable[[Sequence[str] | None], dict[str, Any]]:
    """``main(argv)`` of a benchmark module that defines ``NAME``, ``TITLE``,
    ``run_seed(seed, quick)``, ``summarise(per_seed)`` and ``report(summary, args)``."""

    def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
        found = sys.modules[module]
        return seeded_main(
            found.NAME,
            found.TITLE,
            argv,
            run_seed=lambda seed, args: found.run_seed(seed, args.quick),
            summarise=found.summarise,
            report=found.report,
        )[0]

    return main
