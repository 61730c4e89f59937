"""A run's train/valid/test data from its ``[data]`` section: one file split, or a file per split.

Every file is read with the train file's layout (feature width and index base of SVMlight
files, the column lists of tables), checked against it, and given the labels of the run's
track. Reader errors become :class:`~distill.config.ConfigError` naming the ``data`` key, so
the CLI exits with code 2 on bad input. See docs/data.md.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import torch

from distill import data as data_module
from distill.config import ConfigError, DataSection
from distill.data import Dataset
from distill.data.tasks import with_task

LETOR_FILES = ("train.txt", "vali.txt", "test.txt")
TASK_OF_TRACK = {"classification": "classification", "ctr": "binary", "ranking": "ranking"}
SPLITS = ("train", "valid", "test")
MIN_POSITIVES = 100
"""Fewer positive rows than this in a CTR split makes its AUC noise (a warning says so)."""


def read_splits(section: DataSection, *, track: str, seed: int) -> tuple[Dataset, ...]:
    """Train, valid and test Datasets of a run, labels typed for ``track``.

    Given files are read as they are; a missing valid or test split is cut from train with
    the ``split`` fractions of the parts it makes (groups whole, CTR rows stratified by click).
    Row ids are made unique across files (renumbered, or checked when an ``id`` column gives
    them).

    Raises:
        ConfigError: a missing file, a reader error, a valid/test file whose features differ
            from train, labels that do not fit ``track``, ids shared by two files.
    """
    task = TASK_OF_TRACK[track]
    files = _files(section)
    train = _typed(_read(section, "train", files["train"], {}), task, "train")
    read = {"train": train}
    for key in ("valid", "test"):
        if files[key] is not None:
            other = _read(section, key, files[key], _aligned_options(section, train))
            _check_same_features(train, other, key)
            if section.source == "table" and "features" not in section.columns:
                _check_same_columns(train, other, key)
            read[key] = _typed(other, task, key)
    read = _unique_ids(read, own_ids="id" in section.columns)
    parts = _split_missing(read, section.split, seed=seed, stratify=track == "ctr")
    if track == "ctr":  # AUC is measured on valid (early stopping) and test (the results)
        for key, part in zip(SPLITS[1:], parts[1:], strict=True):
            _warn_few_positives(part, key)
    return parts


def _files(section: DataSection) -> dict[str, Path | None]:
    if section.source == "builtin":
        return {"train": None, "valid": None, "test": None}
    if section.path is not None:
        path = Path(section.path)
        if section.source == "letor" and path.is_dir():
            files = {key: path / name for key, name in zip(SPLITS, LETOR_FILES, strict=True)}
            missing = [name for name in LETOR_FILES if not (path / name).is_file()]
            if missing:
                raise ConfigError([f"data.path: {path} has no {', '.join(missing)} (a LETOR fold)"])
            return files
        files = {"train": path, "valid": None, "test": None}
        names = {"train": "path"}
    else:
        files = {
            key: None if getattr(section, key) is None else Path(getattr(section, key))
            for key in SPLITS
        }
        names = {key: key for key in SPLITS}
    for key, path in files.items():
        if path is not None and not path.exists():
            raise ConfigError([f"data.{names[key]}: no such file or folder: {path}"])
    if sum(path is not None for path in files.values()) > 1 and "query_file" in section.options:
        raise ConfigError(
            [
                "data.options.query_file: names one file's groups; with several files put each "
                "file's groups in <file>.query next to it (LightGBM's layout)"
            ]
        )
    return files


def _read(section: DataSection, key: str, path: Path | None, aligned: dict[str, Any]) -> Dataset:
    options = dict(section.options) | aligned
    try:
        if section.source == "builtin":
            return data_module.load_builtin(section.name, **options)
        if section.source == "letor":
            return data_module.read_letor(path, **options)
        if section.source == "libsvm":
            return data_module.read_libsvm(path, **options)
        if section.source == "criteo":
            return data_module.read_criteo(path, **options)
        if "label" not in section.columns:
            raise ConfigError(["data.columns: needs at least `label` for source = 'table'"])
        return data_module.read_table(path, **(dict(section.columns) | options))
    except (ValueError, FileNotFoundError) as error:
        where = "path" if section.path is not None and key == "train" else key
        raise ConfigError([f"data.{where}: {error}"]) from error
    except TypeError as error:
        if "unexpected keyword argument" not in str(error):
            raise
        raise ConfigError([f"data.options: {error}"]) from error


def _aligned_options(section: DataSection, train: Dataset) -> dict[str, Any]:
    """Reader options that make a valid/test file use the train file's layout."""
    if section.source in ("letor", "libsvm"):
        width = train.features.shape[1] if section.source == "letor" else train.num_embeddings - 1
        return {"n_features": width, "zero_based": train.meta["index_base"] == 0}
    if section.source == "table":
        return dict(train.meta["columns"])
    return {}


def _check_same_features(train: Dataset, other: Dataset, key: str) -> None:
    found = (other.is_sparse, other.feature_names, other.num_embeddings)
    expected = (train.is_sparse, train.feature_names, train.num_embeddings)
    if found != expected:
        raise ConfigError(
            [
                f"data.{key}: {other.meta.get('source')}: features differ from the train file "
                f"{train.meta.get('source')}: expected {_describe(train)}, found {_describe(other)}"
            ]
        )


def _check_same_columns(train: Dataset, other: Dataset, key: str) -> None:
    """Features taken from "every other column" must be the same columns in every file."""
    expected, found = train.meta["table_columns"], other.meta["table_columns"]
    if set(found) != set(expected):
        raise ConfigError(
            [
                f"data.{key}: {other.meta['source']}: columns differ from the train file's, whose "
                f"unmapped columns are the features: expected {expected}, found {found} (extra "
                f"{sorted(set(found) - set(expected))}, missing "
                f"{sorted(set(expected) - set(found))}); or list `columns.features`"
            ]
        )


def _describe(dataset: Dataset) -> str:
    kind = f"sparse ids (num_embeddings {dataset.num_embeddings})" if dataset.is_sparse else "dense"
    names = dataset.feature_names
    shown = names if len(names) <= 8 else [*names[:4], "...", *names[-2:]]
    return f"{len(names)} {kind} column(s) {shown}"


def _typed(dataset: Dataset, task: str, key: str) -> Dataset:
    try:
        return with_task(dataset, task)
    except ValueError as error:
        raise ConfigError([f"data.{key}: {error} (run.track asks for {task!r} labels)"]) from None


def _unique_ids(read: dict[str, Dataset], *, own_ids: bool) -> dict[str, Dataset]:
    """Renumber rows across files (train first), or check given ids are not shared."""
    if len(read) == 1:
        return read
    if own_ids:
        previous: list[tuple[str, torch.Tensor]] = []
        for key, part in read.items():
            for earlier, ids in previous:
                shared = torch.isin(part.ids, ids)
                if bool(shared.any()):
                    row = int(shared.nonzero()[0])
                    raise ConfigError(
                        [
                            f"data.{key}: id {int(part.ids[row])} (row {row}) is also in the "
                            f"{earlier} file; ids must be unique across files"
                        ]
                    )
            previous.append((key, part.ids))
        return read
    offset, renumbered = 0, {}
    for key, part in read.items():
        ids = torch.arange(offset, offset + len(part))
        renumbered[key] = dataclasses.replace(part, ids=ids, extras=dict(part.extras))
        offset += len(part)
    return renumbered


def _split_missing(
    read: dict[str, Dataset], fractions: list[float], *, seed: int, stratify: bool
) -> tuple[Dataset, ...]:
    missing = [key for key in SPLITS if key not in read]
    if not missing:
        return tuple(read[key] for key in SPLITS)
    cut = ["train", *missing]
    shares = fractions if len(fractions) == len(cut) else [fractions[SPLITS.index(k)] for k in cut]
    total = sum(shares)
    train = read["train"]
    clicks = bool(((train.labels == 0) | (train.labels == 1)).all())  # not soft labels
    parts = data_module.split(
        train,
        tuple(share / total for share in shares),
        seed=seed,
        stratify=stratify and clicks and train.groups is None,
    )
    read = read | dict(zip(cut, parts, strict=True))
    return tuple(read[key] for key in SPLITS)


def _warn_few_positives(dataset: Dataset, key: str) -> None:
    positives = int((dataset.labels > 0.5).sum())
    if positives < MIN_POSITIVES:
        warnings.warn(
            f"data: the {key} split has {positives} positive row(s) of {len(dataset)}; AUC on "
            f"fewer than {MIN_POSITIVES} positives is noise",
            stacklevel=3,
        )
