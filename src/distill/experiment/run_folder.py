"""The run folder's safety: one writer at a time (a pid lock file), no silent overwrite, resume.

``distill run`` takes ``<run>/run.lock`` before it writes anything; a second run on the same
folder refuses while the first one lives. A folder that already holds a run is overwritten only
with ``force`` and continued only with ``resume`` (see docs/guarantees.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distill.config import ConfigError, RunConfig, load_config

LOCK_FILE = "run.lock"
RUN_OUTPUTS = (
    "results.json",
    "metrics.jsonl",
    "teacher",
    "scores",
    "students",
    "joint",
    "checkpoints",
    "tensorboard",
)
"""What a run writes into its folder (``--force`` removes these before starting over)."""


class RunLockedError(RuntimeError):
    """Another live process holds the run folder's lock."""


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[Path]:
    """Hold ``folder/run.lock`` (created atomically, holding this pid) while the block runs.

    A lock left by a process that no longer exists (killed) is stale and taken over.

    Raises:
        RunLockedError: a live process (or one on another host) holds the lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    _acquire(path)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _acquire(path: Path) -> None:
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = _read_owner(path)
            if _alive(held):
                raise RunLockedError(
                    f"{path.parent} is in use by another distill run (pid {held.get('pid')} on "
                    f"{held.get('host')}, lock file {path}); wait for it to finish, or delete "
                    "the lock file if that process is gone"
                ) from None
            if _read_owner(path) == held:  # stale: its process is gone; take it over
                path.unlink(missing_ok=True)
            continue
        with os.fdopen(handle, "w") as file:
            json.dump(owner, file)
        return
    raise RunLockedError(f"{path.parent}: could not take the lock {path}; try again")


def _read_owner(path: Path) -> dict[str, Any]:
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _alive(owner: dict[str, Any]) -> bool:
    """Whether the lock's process may still run (unknown hosts are assumed alive)."""
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False  # torn or empty lock file: its writer died while creating it
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_folder(cfg: RunConfig, *, force: bool, resume: bool) -> None:
    """Check the folder against ``force``/``resume`` and clear what a fresh run replaces.

    The main process calls it under the lock, before anything is written.

    Raises:
        ConfigError: ``force`` with ``resume``; an existing run without either; ``resume``
            of a folder without a run or with another config.
    """
    folder = cfg.run.directory
    saved = folder / "config.toml"
    if force and resume:
        raise ConfigError(["--force and --resume exclude each other"])
    if resume:
        if not saved.is_file():
            raise ConfigError([f"--resume: {folder} holds no run to resume (no config.toml)"])
        _check_same_config(cfg, saved)
    elif not force and (found := _run_files(folder)):
        raise ConfigError(
            [
                f"run.name: {folder} already holds a run ({found[0]}); pass --force to "
                "overwrite it, --resume to finish a killed run, or choose another run.name"
            ]
        )


def _run_files(folder: Path) -> list[str]:
    """The run files in ``folder`` (``config.toml`` and :data:`RUN_OUTPUTS`) that exist."""
    return [name for name in ("config.toml", *RUN_OUTPUTS) if (folder / name).exists()]


def clear_outputs(folder: Path) -> None:
    """Remove a previous run's outputs (for ``--force``)."""
    for name in RUN_OUTPUTS:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def remove_temp_files(folder: Path) -> None:
    """Remove temp files of atomic writes cut short by a kill (``.<name>.*.tmp``)."""
    for leftover in folder.rglob(".*.tmp"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)


def finished_rows(folder: Path) -> set[str]:
    """Names of the models of ``results.json`` (``"teacher"`` included when it is there)."""
    path = folder / "results.json"
    if not path.is_file():
        return set()
    results = json.loads(path.read_text())
    names = {row["name"] for row in results.get("variants", [])}
    return names | ({"teacher"} if results.get("teacher") else set())


def _check_same_config(cfg: RunConfig, saved: Path) -> None:
    previous = load_config(saved)
    mine, theirs = _without_trust(cfg), _without_trust(previous)
    if mine != theirs:
        keys = [
            key for key in type(mine).model_fields if getattr(mine, key) != getattr(theirs, key)
        ]
        raise ConfigError(
            [
                f"--resume: the config differs from the run's {saved} in [{', '.join(keys)}]; "
                "resume with the run's own config, or start over with --force"
            ]
        )


def _without_trust(cfg: RunConfig) -> RunConfig:
    """The config less ``teacher.trust`` (a permission of this invocation, not of the run)."""
    return cfg.model_copy(update={"teacher": cfg.teacher.model_copy(update={"trust": False})})
