import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.train import (
    fit,
    load_checkpoint,
    read_metrics,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

WORKER = Path(__file__).with_name("train_worker.py")


def draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)])


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    np.random.normal()  # leaves a cached Gaussian in NumPy's legacy state
    path = save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    expected = draws()
    set_rng_state(load_checkpoint(path)["rng"])
    assert draws() == expected


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "sub" / "last.pt", {"step": 1, "w": torch.ones(2)})
    assert load_checkpoint(path)["step"] == 1

    def broken_save(obj, file):
        Path(file).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 1  # the old checkpoint survives
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_load_refuses_code_carrying_pickles(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Path("x"), protocol=2))
    with pytest.raises(ValueError, match=r"evil\.pt is not a weights-only torch file"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def run_uninterrupted(run_dir):
    from train_worker import classification_setup

    model, train, valid, objective, options = classification_setup()
    return fit(model, train, objective=objective, options=options, valid=valid, run_dir=run_dir)


def test_sigkilled_run_resumes_to_identical_weights(tmp_path):
    from train_worker import classification_setup

    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(WORKER), "resume", str(killed), "--slow"], env=env
    )
    last = killed / "checkpoints" / "student" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists():
        assert process.poll() is None, "worker ended before writing a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = load_checkpoint(last)["step"]
    assert 0 < killed_at < 60, f"the kill should land mid-run, checkpoint at step {killed_at}"

    model, train, valid, objective, options = classification_setup()
    train_forwards = []
    model.register_forward_hook(lambda m, i, o: train_forwards.append(1) if m.training else None)
    resumed = fit(
        model,
        train,
        objective=objective,
        options=options,
        valid=valid,
        run_dir=killed,
        resume=True,
    )
    assert len(train_forwards) == 60 - killed_at  # it continued; it did not start over
    full = run_uninterrupted(tmp_path / "full")
    assert resumed.steps == full.steps == 60
    for (name, a), b in zip(
        resumed.model.state_dict().items(), full.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), f"{name} differs after resume (killed at step {killed_at})"
    assert resumed.best_step == full.best_step
    history = read_metrics(resumed.history_path)
    reference = read_metrics(full.history_path)
    assert [r["step"] for r in history] == [r["step"] for r in reference]
    assert [r.get("loss") for r in history] == [r.get("loss") for r in reference]


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    from train_worker import classification_setup

    first = run_uninterrupted(tmp_path)
    lines = len(read_metrics(first.history_path))
    model, train, valid, objective, options = classification_setup()
    again = fit(
        model,
        train,
        objective=objective,
        options=options,
        valid=valid,
        run_dir=tmp_path,
        resume=True,
    )
    assert again.steps == 60
    for a, b in zip(
        first.model.state_dict().values(), again.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == lines


def test_resume_removes_temp_files_of_interrupted_writes(tmp_path):
    from train_worker import classification_setup

    model, train, _, objective, options = classification_setup()
    leftover = tmp_path / "checkpoints" / "student" / ".last.pt.abc123.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"torn")
    options.max_steps = 2
    fit(model, train, objective=objective, options=options, run_dir=tmp_path, resume=True)
    assert sorted(p.name for p in leftover.parent.iterdir()) == ["last.pt"]
