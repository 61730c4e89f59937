"""A streamed run's train/valid/test: one :class:`~distill.data.streaming.StreamingTable` each.

``data.streaming = true`` reads each split's Parquet shards (a folder, glob or ``pyarrow.fs``
URI) lazily with the ``columns`` mapping and the train split's layout; reader errors become
:class:`~distill.config.ConfigError` naming the ``data`` key. See docs/streaming.md.
"""

from __future__ import annotations

from distill.config import ConfigError, DataSection
from distill.experiment.inputs import SPLITS, TASK_OF_TRACK, _check_same_features

READER_OPTIONS = ("hash_buckets", "allow_nan", "impute")
"""``data.options`` keys a streamed table takes (the others concern whole-file readers)."""


def stream_splits(section: DataSection, *, track: str, extras: list[str]) -> tuple:
    """Train, valid and test StreamingTables of a streamed run, typed for ``track``.

    Args:
        section: the ``[data]`` section (``streaming = true``, every split given).
        track: ``"ctr"`` or ``"ranking"``; extras: score columns kept with the rows.

    Raises:
        ConfigError: an unknown option, a reader error (empty glob, corrupt or mismatched
            shard, split group), valid/test features that differ from train's.
    """
    from distill.data.streaming import StreamingTable  # pyarrow: the `data` extra

    unknown = sorted(set(section.options) - set(READER_OPTIONS))
    if unknown:
        raise ConfigError([f"data.options: {unknown} do not apply to streamed shards"])
    if "label" not in section.columns:
        raise ConfigError(["data.columns: needs at least `label` for source = 'table'"])
    tables = []
    for key in SPLITS:
        try:
            table = StreamingTable(
                getattr(section, key),
                **dict(section.columns),
                **section.options,
                extras=extras,
                task=TASK_OF_TRACK[track],
                shuffle_buffer=section.shuffle_buffer,
                layout=tables[0].sparse_layout if tables else None,
                scores_dir=None if section.scores_dir is None else f"{section.scores_dir}/{key}",
            )
        except (ValueError, FileNotFoundError) as error:
            raise ConfigError([f"data.{key}: {error}"]) from error
        if tables:
            _check_same_features(tables[0], table, key)
        tables.append(table)
    return tuple(tables)
