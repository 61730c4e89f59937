"""The `distill` command: help, exit codes, one-line errors, bench, --debug."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill import __version__
from distill.cli import app
from distill.cli._common import STATE

COMMANDS = [
    "demo",
    "run",
    "teacher",
    "score",
    "student",
    "evaluate",
    "report",
    "landscape",
    "export",
    "bench",
]
EXAMPLE = str(Path(__file__).parents[1] / "examples" / "classification.toml")
runner = CliRunner()


def test_top_level_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    assert len(result.stdout.split()) > 15


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"distill {__version__}"


def test_no_arguments_shows_help_with_usage_exit_code():
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "Usage" in result.output


@pytest.mark.parametrize("command", ["run", "teacher", "score", "student"])
def test_bad_config_value_exits_2_with_one_located_line(command):
    result = runner.invoke(app, [command, EXAMPLE, "--set", "variants.1.objective.kd.alpha=1.5"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        f"error: {EXAMPLE}: variants.1.objective.kd.alpha: must be in [0, 1], got 1.5"
    )
    assert "Traceback" not in result.output


def test_mistyped_key_and_missing_file_exit_2(tmp_path):
    result = runner.invoke(app, ["run", EXAMPLE, "--set", "train.lrr=0.1"])
    assert result.exit_code == 2
    assert "train.lrr: unknown key (did you mean 'lr'?)" in result.stderr
    result = runner.invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "nope.toml: cannot read config" in result.stderr


def test_missing_data_file_is_a_config_error(tmp_path):
    args = ["run", EXAMPLE, "--set", "data.source='letor'", "--set", f"data.path='{tmp_path}/x'"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert f"data.path: no such file or folder: {tmp_path}/x" in result.stderr


@pytest.fixture
def bench_dir(tmp_path, monkeypatch):
    """A checkout with its own ``benchmarks`` package; the real one is restored afterwards."""
    saved = {name: module for name, module in sys.modules.items() if name.startswith("benchmarks")}
    for name in saved:
        del sys.modules[name]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name in [name for name in sys.modules if name.startswith("benchmarks")]:
        del sys.modules[name]
    sys.modules.update(saved)


def _forget_benchmarks() -> None:
    for name in [name for name in sys.modules if name.startswith("benchmarks")]:
        del sys.modules[name]


def _write_bench(root: Path, body: str) -> None:
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "__init__.py").write_text("")
    (root / "benchmarks" / "tiny.py").write_text(body)


def test_bench_runs_a_module_from_the_current_directory(bench_dir):
    body = "import sys\nif __name__ == '__main__':\n    print('tiny ran', sys.argv[1:])\n"
    _write_bench(bench_dir, body)
    result = runner.invoke(app, ["bench", "tiny", "--", "--fast"])
    assert result.exit_code == 0, result.output
    assert "tiny ran ['--fast']" in result.stdout


def test_bench_unknown_name_lists_available(bench_dir):
    _write_bench(bench_dir, "")
    result = runner.invoke(app, ["bench", "nope"])
    assert result.exit_code == 2
    assert "no benchmark 'nope'" in result.stderr
    assert "available: tiny" in result.stderr


def test_failures_exit_1_and_debug_shows_the_traceback(bench_dir, monkeypatch):
    monkeypatch.setattr(STATE, "debug", False)  # --debug below sets it for this process
    _write_bench(bench_dir, "raise RuntimeError('boom')\n")
    result = runner.invoke(app, ["bench", "tiny"])
    assert result.exit_code == 1
    assert "error: RuntimeError: boom (run with --debug for the traceback)" in result.stderr
    _forget_benchmarks()
    result = runner.invoke(app, ["--debug", "bench", "tiny"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


def test_console_script_entry_point():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from distill.cli import main; sys.argv[0] = 'distill'; main()",
            "--version",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"distill {__version__}"
