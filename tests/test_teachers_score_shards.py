"""Score shards beside streamed data shards: aligned, resumable, split across ranks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill.models import WideAndDeep
from distill.teachers import ModuleTeacher, StreamedScoreColumns
from distill.teachers.score_shards import score_shards
from distill.train import BinaryKDTerm, Objective, TrainOptions, fit
from test_data_streaming import open_table, write_shards


def teacher_for(table, seed=0):
    torch.manual_seed(seed)
    return ModuleTeacher(WideAndDeep(table.num_embeddings, table.width, hidden=(4,)))


def test_score_shards_are_aligned_with_the_rows_and_read_back_as_extras(tmp_path):
    write_shards(tmp_path, [120, 77, 50])
    table = open_table(tmp_path)
    teacher = teacher_for(table)
    written = score_shards(teacher, table)
    assert [p.rsplit("/", 2)[1:] for p in written] == [
        ["_scores", f"part-00{k}.parquet"] for k in range(3)
    ]
    assert len(open_table(tmp_path).shards) == 3  # score shards are not data
    scored = open_table(tmp_path, scores=["teacher_logit"], shuffle_buffer=60)
    for chunk in scored.iter_chunks(batch_size=32, seed=0):
        expected = teacher.module(chunk.features, chunk.feature_values)
        torch.testing.assert_close(chunk.extras["teacher_logit"], expected)


def test_rerun_skips_finished_shards_and_a_new_teacher_rescores(tmp_path):
    write_shards(tmp_path, [30, 30])
    table = open_table(tmp_path)
    teacher = teacher_for(table)
    assert len(score_shards(teacher, table)) == 2
    assert score_shards(teacher, table) == []
    assert len(score_shards(teacher_for(table, seed=1), table)) == 2


def test_ranks_split_the_shards(tmp_path):
    write_shards(tmp_path, [10, 10, 10])
    table = open_table(tmp_path)
    teacher = teacher_for(table)
    first = score_shards(teacher, table, rank=0, world_size=2)
    second = score_shards(teacher, table, rank=1, world_size=2)
    assert [Path(p).name for p in first] == ["part-000.parquet", "part-002.parquet"]
    assert [Path(p).name for p in second] == ["part-001.parquet"]


class FailingTeacher:
    """Scores one record batch, then fails (a killed scoring run)."""

    def __init__(self, inner, calls):
        self.inner, self.calls = inner, calls

    def predict(self, features, ids, values=None):
        self.calls -= 1
        if self.calls < 0:
            raise RuntimeError("killed")
        return self.inner.predict(features, ids, values=values)

    def fingerprint(self):
        return self.inner.fingerprint()


def test_a_killed_run_leaves_no_half_written_shard_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr("distill.data.streaming.READ_ROWS", 20)
    write_shards(tmp_path, [40, 60])
    table = open_table(tmp_path)
    teacher = teacher_for(table)
    with pytest.raises(RuntimeError, match="killed"):
        score_shards(FailingTeacher(teacher, calls=3), table)  # shard 0 done, shard 1 cut
    folder = tmp_path / "_scores"
    assert sorted(p.name for p in folder.iterdir()) == ["part-000.parquet"]
    with pytest.raises(ValueError, match=r"part-001.parquet: no readable score shard"):
        list(open_table(tmp_path, scores=["teacher_logit"]).iter_chunks(batch_size=8))
    assert [Path(p).name for p in score_shards(teacher, table)] == ["part-001.parquet"]


def test_fit_reads_the_score_shards_with_the_rows(tmp_path):
    write_shards(tmp_path, [200, 100])
    table = open_table(tmp_path)
    score_shards(teacher_for(table), table)
    scored = open_table(tmp_path, scores=["teacher_logit"])
    torch.manual_seed(0)
    result = fit(
        WideAndDeep(table.num_embeddings, table.width, hidden=(4,)),
        scored,
        objective=Objective([BinaryKDTerm(soft_weight=1.0)]),
        options=TrainOptions(epochs=2, batch_size=50, device="cpu", lr=1e-2, progress=False),
        teacher=StreamedScoreColumns(column="teacher_logit"),
    )
    assert result.steps == 12
