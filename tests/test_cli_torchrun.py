"""`torchrun --nproc-per-node 2 distill run ...` matches a single-process run; rank 0 writes."""

import json
import sys
from pathlib import Path

import pytest

from launch import launch

EXAMPLE = str(Path(__file__).parents[1] / "examples" / "classification.toml")
SETS = [
    "teacher.model.kwargs={hidden=[32]}",  # no dropout: ranks draw no different masks
    "teacher.train.max_steps=10",
    "train.max_steps=10",
    "data.label_fraction=1.0",  # masked labels would make per-rank CE means differ
]


def _run(out: Path, *launcher: str) -> dict:
    sets = [item for value in [*SETS, f"run.out_dir='{out}'"] for item in ("--set", value)]
    command = [*launcher, "-c", "from distill.cli import main; main()"]
    command = [*command, "run", EXAMPLE, "--no-report", "--force", *sets]  # --force: a retry
    done = launch(command)
    assert done.stdout.count("Results: ") == 1  # only rank 0 prints
    return json.loads((out / "classification" / "results.json").read_text())


def test_two_processes_match_one(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    two = _run(tmp_path / "two", *torchrun, "--nproc-per-node", "2", "--no-python", sys.executable)
    one = _run(tmp_path / "one", sys.executable)
    rows = zip([one["teacher"], *one["variants"]], [two["teacher"], *two["variants"]], strict=True)
    for left, right in rows:
        assert left["name"] == right["name"]
        assert left["metrics"] == pytest.approx(right["metrics"], rel=1e-3, abs=1e-3)
    shards = sorted(
        p.name for p in (tmp_path / "two" / "classification" / "scores" / "train").iterdir()
    )
    assert shards == ["scores-00000-of-00002.parquet", "scores-00001-of-00002.parquet"]
