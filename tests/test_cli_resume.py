"""`distill run` safety: kill -9 at several points then --resume gives the uninterrupted weights;
a second run on a busy folder refuses (pid lock); an existing run needs --force; stale caches."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
from typer.testing import CliRunner

from distill.cli import app
from distill.config import load_config
from distill.experiment.results import read_results
from distill.experiment.runner import run_experiment

CONFIG = str(Path(__file__).parents[1] / "examples" / "classification.toml")
SMALL = [
    "teacher.train.max_steps=60",
    "train.max_steps=240",
    "train.checkpoint_every=5",
]
SRC = str(Path(__file__).parents[1] / "src")
runner = CliRunner()


def _sets(*values: str) -> list[str]:
    return [item for value in values for item in ("--set", value)]


def _start(out_dir: Path, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "distill", "run", CONFIG, "--no-report", *flags]
    command += _sets(*SMALL, f"run.out_dir='{out_dir}'")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when(process: subprocess.Popen, path: Path, timeout: float = 120.0) -> None:
    """kill -9 the run as soon as ``path`` exists (fails if the run ends first)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _weights(folder: Path) -> dict:
    return safetensors.torch.load_file(folder / "model.safetensors")


def _assert_same_weights(ours: Path, reference: Path) -> None:
    for name in ("teacher", "students/labels", "students/kd_T4"):
        mine, theirs = _weights(ours / name), _weights(reference / name)
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert mine[key].dtype == value.dtype
            assert bool((mine[key] == value).all()), f"{name}: {key} differs"


def test_kill_9_then_resume_gives_the_uninterrupted_weights(tmp_path):
    reference = tmp_path / "reference"
    run_experiment(load_config(CONFIG, overrides=[*SMALL, f"run.out_dir='{reference}'"]))
    out = tmp_path / "killed"
    folder = out / "classification"

    first = _start(out)  # 1: killed right after the teacher is saved
    _kill_when(first, folder / "teacher" / "model.json")
    assert not (folder / "students").exists()
    (folder / ".results.json.x1y2.tmp").write_text("{")  # a torn atomic write

    again = runner.invoke(
        app, ["run", CONFIG, "--no-report", *_sets(*SMALL, f"run.out_dir='{out}'")]
    )
    assert again.exit_code == 2
    assert (
        "already holds a run (config.toml); pass --force to overwrite it, --resume" in again.stderr
    )

    second = _start(out, "--resume")  # 2: killed in the middle of the second student
    _kill_when(second, folder / "checkpoints" / "kd_T4" / "last.pt")
    assert (folder / "run.lock").exists()  # left behind by the killed process: stale
    assert not (folder / ".results.json.x1y2.tmp").exists()  # cleaned up on resume
    assert not (folder / "students" / "kd_T4").exists()

    resumed = runner.invoke(
        app, ["run", CONFIG, "--no-report", "--resume", *_sets(*SMALL, f"run.out_dir='{out}'")]
    )
    assert resumed.exit_code == 0, resumed.output
    assert not (folder / "run.lock").exists()
    _assert_same_weights(folder, reference / "classification")


def test_second_run_on_a_busy_folder_refuses(tmp_path):
    folder = tmp_path / "classification"
    first = _start(tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not (folder / "teacher" / "model.json").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.005)
        sets = _sets(*SMALL, f"run.out_dir='{tmp_path}'")
        commands = [["run", "--force"], ["run", "--resume"], ["student"], ["score"]]
        for command, *flags in commands:
            busy = runner.invoke(app, [command, CONFIG, *flags, *sets])
            assert busy.exit_code == 1, command
            assert f"is in use by another distill run (pid {first.pid} on" in busy.stderr
    finally:
        first.kill()
        first.wait()


def test_force_overwrites_and_resume_needs_the_same_config(tmp_path):
    sets = _sets("teacher.train.max_steps=2", "train.max_steps=2", f"run.out_dir='{tmp_path}'")
    assert runner.invoke(app, ["run", CONFIG, "--no-report", *sets]).exit_code == 0
    folder = tmp_path / "classification"
    (folder / "checkpoints" / "old").mkdir()
    forced = runner.invoke(app, ["run", CONFIG, "--no-report", "--force", *sets])
    assert forced.exit_code == 0, forced.output
    assert not (folder / "checkpoints" / "old").exists()
    other = runner.invoke(
        app, ["run", CONFIG, "--no-report", "--resume", *sets, "--set", "train.lr=0.5"]
    )
    assert other.exit_code == 2
    assert "--resume: the config differs from the run's" in other.stderr
    assert "[train]" in other.stderr  # brackets print verbatim (no rich markup)
    both = runner.invoke(app, ["run", CONFIG, "--no-report", "--resume", "--force", *sets])
    assert both.exit_code == 2 and "--force and --resume exclude each other" in both.stderr
    nothing = runner.invoke(app, ["run", CONFIG, "--resume", *sets, "--set", "run.name='fresh'"])
    assert nothing.exit_code == 2 and "holds no run to resume" in nothing.stderr


def test_run_refuses_a_folder_that_the_step_commands_wrote(tmp_path):
    sets = _sets("teacher.train.max_steps=2", f"run.out_dir='{tmp_path}'")
    assert runner.invoke(app, ["teacher", CONFIG, *sets]).exit_code == 0
    teacher = (tmp_path / "classification" / "teacher" / "model.safetensors").read_bytes()
    result = runner.invoke(app, ["run", CONFIG, *sets])
    assert result.exit_code == 2 and "already holds a run (results.json)" in result.stderr
    assert (tmp_path / "classification" / "teacher" / "model.safetensors").read_bytes() == teacher


def test_bad_model_kwarg_leaves_a_finished_run_untouched(tmp_path):
    sets = _sets("teacher.train.max_steps=2", "train.max_steps=2", f"run.out_dir='{tmp_path}'")
    assert runner.invoke(app, ["run", CONFIG, "--no-report", *sets]).exit_code == 0
    folder = tmp_path / "classification"
    before = {name: (folder / name).read_bytes() for name in ("results.json", "config.toml")}
    before["metrics.jsonl"] = (folder / "metrics.jsonl").read_bytes()
    bad = "student.model.kwargs={hidden=[4], widht=3}"
    for flags in ([], ["--force"], ["--resume"]):
        result = runner.invoke(app, ["run", CONFIG, *flags, *sets, "--set", bad])
        assert result.exit_code == 2
        assert "student.model: cannot build 'MLP' from kwargs" in result.stderr
        for name, content in before.items():
            assert (folder / name).read_bytes() == content, name


def test_student_refuses_scores_of_a_retrained_teacher(tmp_path):
    sets = _sets("teacher.train.max_steps=3", "train.max_steps=2", f"run.out_dir='{tmp_path}'")
    for command in (["teacher"], ["score"], ["student", "--variant", "kd_T4"]):
        result = runner.invoke(app, [*command, CONFIG, *sets])
        assert result.exit_code == 0, result.output
    cache = tmp_path / "classification" / "scores" / "train"
    scored = {file.name: file.read_bytes() for file in cache.iterdir()}
    changed = runner.invoke(app, ["teacher", CONFIG, *sets, "--set", "teacher.train.lr=0.02"])
    assert changed.exit_code == 0
    stale = runner.invoke(app, ["student", CONFIG, "--variant", "kd_T4", *sets])
    assert stale.exit_code == 2
    assert "error: stale cache" in stale.stderr
    assert "teacher " in stale.stderr and "(cache) != " in stale.stderr
    assert "the teacher or data changed since: run `distill score` again" in stale.stderr
    assert {file.name: file.read_bytes() for file in cache.iterdir()} == scored
    assert runner.invoke(app, ["score", CONFIG, *sets]).exit_code == 0
    assert runner.invoke(app, ["student", CONFIG, "--variant", "kd_T4", *sets]).exit_code == 0


def test_report_of_a_run_made_step_by_step(tmp_path):
    sets = _sets("teacher.train.max_steps=3", "train.max_steps=2", f"run.out_dir='{tmp_path}'")
    folder = tmp_path / "classification"
    result = runner.invoke(app, ["report", CONFIG, *sets])
    assert result.exit_code == 2
    assert f"error: {folder}: no results.json; train the run first" in result.stderr
    assert runner.invoke(app, ["teacher", CONFIG, *sets]).exit_code == 0
    result = runner.invoke(app, ["report", CONFIG, *sets])
    assert result.exit_code == 2
    assert f"{folder}: results.json holds no row of the baseline 'labels'" in result.stderr
    assert "run distill student --variant labels" in result.stderr
    for command in (["score"], ["student", "--variant", "kd_T4"]):
        assert runner.invoke(app, [*command, CONFIG, *sets]).exit_code == 0
    result = runner.invoke(app, ["report", CONFIG, *sets])
    assert result.exit_code == 2
    assert "run distill student --variant labels" in result.stderr
    assert not (folder / "report.html").exists()
    assert runner.invoke(app, ["student", CONFIG, "--variant", "labels", *sets]).exit_code == 0
    result = runner.invoke(app, ["report", CONFIG, *sets])
    assert result.exit_code == 0, result.output
    assert "kd_T4" in (folder / "summary.md").read_text()
    assert "kd_T4" in (folder / "report.html").read_text()
    assert {row["name"] for row in read_results(folder)["compression"]} >= {"teacher", "kd_T4"}


@pytest.mark.parametrize("name", ["..", "."])
def test_run_and_variant_names_are_single_folder_names(tmp_path, name):
    for key in ("run.name", "variants.0.name"):
        result = runner.invoke(
            app, ["run", CONFIG, *_sets(f"run.out_dir='{tmp_path / 'out'}'", f"{key}='{name}'")]
        )
        assert result.exit_code == 2
        assert f"{key}: must be a single folder name, not '.' or '..'" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "message", ["bad markup [/", "give one [[variants]] table", "no [joint] table", "[bold]x"]
)
def test_errors_print_as_plain_text(capsys, message):
    import typer

    from distill.cli._common import guard
    from distill.config import ConfigError

    for error, code in ((ValueError(message), 1), (ConfigError([message]), 2)):
        with pytest.raises(typer.Exit) as exit_info, guard():
            raise error
        assert exit_info.value.exit_code == code
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("content", ["dead", "", "{torn"])
def test_a_stale_lock_is_taken_over(tmp_path, content):
    import json
    import socket

    from distill.experiment.run_folder import run_lock

    if content == "dead":
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        content = json.dumps({"pid": gone.pid, "host": socket.gethostname()})
    (tmp_path / "run.lock").write_text(content)
    with run_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not (tmp_path / "run.lock").exists()
