"""``fit`` and evaluation over streamed shards: every row once per epoch, same metrics."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import torch

from distill import metrics
from distill.data import read_table
from distill.data.streaming import concat_datasets
from distill.models import WideAndDeep
from distill.teachers import StreamedScoreColumns
from distill.train import BinaryKDTerm, LabelsTerm, Objective, TrainOptions, fit
from distill.train.evaluation import evaluate
from distill.train.streaming import RowColumns, predict_stream
from distill.train.terms import main_score
from test_data_streaming import open_table, write_shards


class RecordingTeacher:
    """An online teacher that records the ids it is asked about (returns zero logits)."""

    def __init__(self):
        self.ids = []

    def predict(self, features, ids, values=None):
        self.ids.append(ids.clone())
        return torch.zeros(len(ids))


def model_for(table):
    torch.manual_seed(0)
    return WideAndDeep(table.num_embeddings, table.width, embed_dim=4, hidden=(8,))


def test_fit_reads_every_row_exactly_once_per_epoch(tmp_path):
    write_shards(tmp_path, [300, 211])
    table = open_table(tmp_path, shuffle_buffer=128)
    teacher = RecordingTeacher()
    options = TrainOptions(epochs=2, batch_size=50, device="cpu", lr=1e-2, progress=False)
    result = fit(
        model_for(table),
        table,
        objective=Objective([BinaryKDTerm(weight=0.5)]),
        options=options,
        teacher=teacher,
    )
    assert result.steps == 2 * 11 == len(teacher.ids)
    for epoch in range(2):
        seen = torch.cat(teacher.ids[epoch * 11 : (epoch + 1) * 11])
        assert sorted(seen.tolist()) == list(range(511))


def test_fit_with_streamed_score_column_learns_and_streamed_auc_matches(tmp_path):
    write_shards(tmp_path / "train", [600, 600], seed=1)
    paths = write_shards(tmp_path / "valid", [250, 150], seed=2)
    train = open_table(tmp_path / "train", extras=["logit"], shuffle_buffer=300)
    valid = open_table(tmp_path / "valid", shuffle_buffer=64)
    options = TrainOptions(
        epochs=3, batch_size=64, device="cpu", lr=3e-2, progress=False, metric="auc"
    )
    result = fit(
        model_for(train),
        train,
        objective=Objective([LabelsTerm("bce"), BinaryKDTerm(weight=0.5)]),
        options=options,
        teacher=StreamedScoreColumns(column="logit"),
        valid=valid,
    )
    assert result.metrics["auc"] == pytest.approx(result.best_metric)
    # oracle: the same rows read whole, scored by the in-memory path
    tables = [pa.Table.from_batches(pa.parquet.read_table(p).to_batches()) for p in paths]
    whole = tmp_path / "whole.parquet"
    pa.parquet.write_table(pa.concat_tables(tables), whole)
    memory = read_table(
        whole, label="y", features=["I1", "I2"], categorical=["C1", "C2"], hash_buckets=64
    )
    expected = evaluate(result.model, memory, metric="auc")["auc"]
    streamed = evaluate(result.model, valid, metric="auc")["auc"]
    assert streamed == pytest.approx(expected, abs=1e-12)
    scores = result.model(memory.features, memory.feature_values)
    assert expected == pytest.approx(metrics.auc(scores.detach(), memory.labels.float()))


def test_loss_decreases_on_a_learnable_stream(tmp_path):
    write_shards(tmp_path, [800], seed=4)
    table = open_table(tmp_path, shuffle_buffer=256)
    options = TrainOptions(epochs=4, batch_size=100, device="cpu", lr=5e-2, log_every=1)
    result = fit(
        model_for(table),
        table,
        objective=Objective([LabelsTerm("bce")]),
        options=options,
        run_dir=tmp_path / "run",
    )
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in lines if '"train"' in line]
    assert result.steps == 32 and len(losses) == 32
    assert sum(losses[-4:]) < sum(losses[:4])  # clicks at a 30 % rate: log loss < log 2


def test_grouped_stream_needs_groups_per_batch_and_streamed_columns_need_a_stream(tmp_path):
    write_shards(tmp_path, [40], grouped=True)
    table = open_table(tmp_path, group="q", task="ranking")
    options = TrainOptions(max_steps=2, batch_size=8, device="cpu")
    with pytest.raises(ValueError, match="a grouped StreamingTable needs `groups_per_batch`"):
        fit(model_for(table), table, objective=Objective([LabelsTerm("bce")]), options=options)
    memory = next(table.iter_chunks(batch_size=10))
    with pytest.raises(TypeError, match="serves streamed rows only; `train` must be a Streaming"):
        fit(
            model_for(table),
            memory,
            objective=Objective([BinaryKDTerm()]),
            options=options,
            teacher=StreamedScoreColumns(column="logit"),
        )


def test_prefetched_keeps_order_and_raises_where_the_producer_failed():
    from distill.train.streaming import prefetched

    def items():
        yield from range(5)
        raise OSError("shard vanished")

    seen = []
    with pytest.raises(OSError, match="shard vanished"):
        for item in prefetched(items(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_predict_stream_scores_every_row_in_file_order(tmp_path):
    write_shards(tmp_path, [90, 61], grouped=True, group_size=4)
    table = open_table(tmp_path, group="q", task="ranking")
    model = model_for(table)
    scores, rows = predict_stream(model, table, score=main_score, batch_size=16)
    whole = concat_datasets(list(table.iter_chunks(batch_size=1000, shuffle=False)))
    assert torch.equal(rows.ids, torch.arange(151)) and torch.equal(rows.groups, whole.groups)
    assert torch.equal(rows.labels, whole.labels)
    torch.testing.assert_close(scores, model(whole.features, whole.feature_values).detach())


def test_growing_columns_equal_concatenation():
    columns = RowColumns(1)
    parts = [torch.randn(n, 3) for n in (2, 5, 1, 9)]
    for k, part in enumerate(parts):
        columns.append(scores=part, labels=part[:, 0], ids=torch.arange(len(part)) + k, groups=None)
    scores, labels, ids, groups = columns.tensors()
    assert torch.equal(scores, torch.cat(parts)) and torch.equal(labels, torch.cat(parts)[:, 0])
    assert len(ids) == 17 and groups.numel() == 0
