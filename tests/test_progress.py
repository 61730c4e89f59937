"""Progress with an ETA: plain log lines off a terminal, at most one per interval, --quiet."""

import re

import pytest
from typer.testing import CliRunner

import distill._progress as progress
from distill._progress import ProgressBar, configure_progress, progress_prefix
from distill.cli import app


@pytest.fixture(autouse=True)
def _restore_settings():
    saved = dict(progress._SETTINGS)
    yield
    progress._SETTINGS.update(saved)


def _clock(monkeypatch, times):
    ticks = iter(times)
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(ticks))


def test_log_lines_carry_phase_step_eta_and_values(monkeypatch, capsys):
    configure_progress(interval_s=5.0)
    # start, then updates at t = 1, 2, 7, 8, 10 (s); the end prints at once
    _clock(monkeypatch, [0.0, 1.0, 1.0, 2.0, 7.0, 7.0, 8.0, 10.0, 10.0])
    with progress_prefix("seed 3 (1/2) · "), ProgressBar(10, "kd") as bar:
        for step, loss in ((1, 0.9), (2, 0.8), (7, 0.5), (8, 0.4), (10, 0.3)):
            bar.update(step, {"loss": loss, "auc": 0.71234})
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "seed 3 (1/2) · kd  step 1/10 (10%)  elapsed 0:00:01  ETA 0:00:09  loss=0.9 auc=0.7123",
        "seed 3 (1/2) · kd  step 7/10 (70%)  elapsed 0:00:07  ETA 0:00:03  loss=0.5 auc=0.7123",
        "seed 3 (1/2) · kd  step 10/10 (100%)  elapsed 0:00:10  ETA 0:00:00  loss=0.3 auc=0.7123",
    ]


def test_a_stopped_phase_prints_its_last_step(capsys):
    with ProgressBar(100, "teacher") as bar:
        bar.update(1)
        bar.update(40, {"loss": 0.5})
    last = capsys.readouterr().out.splitlines()[-1]
    assert re.match(r"teacher  step 40/100 \(40%\)  elapsed 0:00:00  ETA 0:00:00  loss=0.5", last)


def test_quiet_and_disabled_print_nothing(capsys):
    configure_progress(quiet=True)
    with ProgressBar(3, "a") as bar:
        bar.update(3)
    configure_progress(quiet=False)
    with ProgressBar(3, "b", enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="`interval_s` must be > 0, got 0"):
        configure_progress(interval_s=0)


def test_cli_run_logs_every_phase_and_quiet_silences_it(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        f'[run]\nname = "r"\ntrack = "classification"\nout_dir = "{tmp_path}"\n'
        '[data]\nname = "digits"\n'
        '[teacher.model]\nname = "MLP"\nkwargs = { hidden = [8] }\n'
        "[teacher.train]\nmax_steps = 3\n"
        '[student.model]\nname = "MLP"\nkwargs = { hidden = [4] }\n'
        "[train]\nmax_steps = 3\n"
        '[[variants]]\nname = "labels"\n[variants.objective.labels]\n'
        '[[variants]]\nname = "kd"\n[variants.objective.kd]\n'
    )
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(config), "--seeds", "2"])
    assert result.exit_code == 0, result.output
    for phase in ("teacher", "scoring teacher", "labels", "kd"):
        assert f"seed 1 (2/2) · {phase}  step " in result.output
    assert "report  step 4/4 (100%)" in result.output and "ETA" in result.output
    quiet = runner.invoke(app, ["run", str(config), "--quiet", "--no-report", "--force"])
    assert quiet.exit_code == 0 and "ETA" not in quiet.output and "step " not in quiet.output
