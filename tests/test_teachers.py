import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from distill import models
from distill.data import Dataset
from distill.teachers import (
    CachedScores,
    EnsembleTeacher,
    ModuleTeacher,
    fingerprint_dataset,
    fingerprint_module,
    load_teacher,
    score,
)
from distill.teachers.cache import StaleCacheError, fingerprint_tensors


def _mlp(out_features=3, seed=0):
    torch.manual_seed(seed)
    return models.MLP(4, hidden=(8,), out_features=out_features, dropout=0.5)


class _Fixed:
    """A stand-in teacher returning given logits for row ids."""

    def __init__(self, logits, name="fixed"):
        self.logits, self.name = logits, name

    def predict(self, features, ids):
        return self.logits[ids]

    def fingerprint(self):
        return self.name


def test_module_teacher_uses_eval_mode_and_restores_it():
    model = _mlp()
    model.train()
    x = torch.rand(5, 4)
    teacher = ModuleTeacher(model)
    first = teacher.predict(x, torch.arange(5))
    assert torch.equal(first, teacher.predict(x, torch.arange(5)))  # dropout is off
    assert model.training
    model.eval()
    with torch.no_grad():
        assert torch.allclose(first, model(x))


def test_module_teacher_output_is_a_plain_target_without_grad():
    model = _mlp()
    before = fingerprint_module(model)
    target = ModuleTeacher(model).predict(torch.rand(6, 4), torch.arange(6))
    assert not target.requires_grad and not target.is_inference()
    student = torch.randn(6, 3, requires_grad=True)
    loss = nn.functional.kl_div(student.log_softmax(-1), target.softmax(-1), reduction="batchmean")
    loss.backward()  # an inference tensor here would raise
    assert student.grad is not None
    assert fingerprint_module(model) == before


def test_fingerprint_module_tracks_weights():
    a, b = _mlp(seed=1), _mlp(seed=1)
    assert fingerprint_module(a) == fingerprint_module(b)
    with torch.no_grad():
        b.head.bias[0] += 1e-6
    assert fingerprint_module(a) != fingerprint_module(b)


def test_load_teacher_from_model_directory(tmp_path):
    model = _mlp().eval()
    models.save(model, tmp_path / "teacher")
    teacher = load_teacher(tmp_path / "teacher")
    x = torch.rand(3, 4)
    with torch.no_grad():
        assert torch.allclose(teacher.predict(x, torch.arange(3)), model(x))
    assert teacher.fingerprint() == fingerprint_module(model)


def test_load_teacher_from_safetensors_and_import_path_spec(tmp_path):
    linear = nn.Linear(4, 2)
    path = tmp_path / "w.safetensors"
    safetensors.torch.save_file(linear.state_dict(), path)
    spec = {"name": "torch.nn:Linear", "kwargs": {"in_features": 4, "out_features": 2}}
    with pytest.raises(ValueError, match=r"'torch.nn:Linear' is an import path.*trust=True"):
        load_teacher(path, spec=spec)
    teacher = load_teacher(path, spec=spec, trust=True)
    x = torch.rand(2, 4)
    with torch.no_grad():
        assert torch.allclose(teacher.predict(x, torch.arange(2)), linear(x))
    with pytest.raises(ValueError, match="needs `spec`"):
        load_teacher(path)
    bad = {"name": "torch.nn:Linear", "kwargs": {"in_features": 3, "out_features": 2}}
    with pytest.raises(ValueError, match="weights do not fit spec 'torch.nn:Linear'"):
        load_teacher(path, spec=bad, trust=True)


def test_pickled_module_needs_trust(tmp_path):
    path = tmp_path / "teacher.pt"
    torch.save(nn.Linear(4, 1), path)
    with pytest.raises(ValueError, match=r"pickled module.*trust=True \(CLI: --trust\)"):
        load_teacher(path)
    assert isinstance(load_teacher(path, trust=True).module, nn.Linear)
    torch.save({"w": torch.ones(1)}, tmp_path / "dict.pt")
    with pytest.raises(TypeError, match="holds a dict, not an nn.Module"):
        load_teacher(tmp_path / "dict.pt", trust=True)
    (tmp_path / "x.bin").write_bytes(b"0")
    with pytest.raises(ValueError, match="x.bin: cannot tell the teacher kind from the file"):
        load_teacher(tmp_path / "x.bin")
    with pytest.raises(ValueError, match="a teacher is a model directory"):
        load_teacher(tmp_path / "x.bin", kind="distill")
    with pytest.raises(FileNotFoundError, match="no such teacher"):
        load_teacher(tmp_path / "nothing")


def _softmax_np(v, t):
    z = v / t - (v / t).max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
def test_ensemble_arithmetic_and_geometric_match_numpy(temperature):
    members = [torch.randn(6, 5, dtype=torch.float64) * 3 for _ in range(3)]
    teachers = [_Fixed(m, str(i)) for i, m in enumerate(members)]
    ids = torch.arange(6)
    v = np.stack([m.numpy() for m in members])
    arithmetic = EnsembleTeacher(teachers, temperature=temperature).predict(None, ids)
    expected = np.mean([_softmax_np(m, temperature) for m in v], axis=0)
    assert np.allclose(_softmax_np(arithmetic.numpy(), temperature), expected)
    geometric = EnsembleTeacher(teachers, mean="geometric", temperature=temperature)
    log_mean = np.mean([np.log(_softmax_np(m, temperature)) for m in v], axis=0)
    expected = np.exp(log_mean) / np.exp(log_mean).sum(-1, keepdims=True)
    got = _softmax_np(geometric.predict(None, ids).numpy(), temperature)
    assert np.allclose(got, expected)


def test_ensemble_binary_and_extreme_logits():
    members = [torch.tensor([0.0, 2.0, -1e4, 1e4]), torch.tensor([1.0, -3.0, -1e4, 50.0])]
    teachers = [_Fixed(m, str(i)) for i, m in enumerate(members)]
    out = EnsembleTeacher(teachers, binary=True, temperature=0.1).predict(None, torch.arange(4))
    assert torch.isfinite(out).all()
    probs = torch.sigmoid(out.double() / 0.1)
    expected = torch.stack([torch.sigmoid(m.double() / 0.1) for m in members]).mean(0)
    assert torch.allclose(probs, expected)
    geometric = EnsembleTeacher(teachers, binary=True, mean="geometric").predict(
        None, torch.arange(4)
    )
    assert torch.allclose(geometric, (members[0] + members[1]) / 2)
    big = [_Fixed(torch.tensor([[1e4, -1e4, 0.0]]), "a"), _Fixed(torch.tensor([[0.0, 0, 0]]), "b")]
    assert torch.isfinite(EnsembleTeacher(big).predict(None, torch.arange(1))).all()


def test_ensemble_top_k_keeps_k_classes():
    members = [
        _Fixed(torch.tensor([[3.0, 1.0, 0.0, -1.0]]), "a"),
        _Fixed(torch.tensor([[2.0, 2.0, 1.0, 0.0]]), "b"),
    ]
    out = EnsembleTeacher(members, temperature=2.0, top_k=2).predict(None, torch.arange(1))
    probs = torch.softmax(out / 2.0, -1)[0]
    full = np.mean([_softmax_np(m.logits.numpy(), 2.0) for m in members], axis=0)[0]
    assert torch.allclose(probs[:2], torch.tensor(full[:2] / full[:2].sum()), atol=1e-6)
    assert probs[2:].tolist() == [0.0, 0.0]


def test_ensemble_bad_arguments_and_fingerprint():
    with pytest.raises(ValueError, match="at least one teacher"):
        EnsembleTeacher([])
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, inf\), got 0"):
        EnsembleTeacher([_Fixed(None)], temperature=0.0)
    with pytest.raises(ValueError, match="`top_k` applies to multiclass"):
        EnsembleTeacher([_Fixed(None)], top_k=1, binary=True)
    one = EnsembleTeacher([_Fixed(None, "a")], temperature=2.0).fingerprint()
    assert one != EnsembleTeacher([_Fixed(None, "a")], temperature=3.0).fingerprint()
    assert one != EnsembleTeacher([_Fixed(None, "b")], temperature=2.0).fingerprint()


def _dataset(n=10):
    return Dataset(features=torch.rand(n, 4), labels=torch.zeros(n), ids=torch.arange(100, 100 + n))


@pytest.mark.parametrize("out_features", [1, 3])
@pytest.mark.parametrize("world_size", [1, 3])
def test_score_and_cached_scores_round_trip(tmp_path, out_features, world_size):
    ds = _dataset()
    teacher = ModuleTeacher(_mlp(out_features))
    for rank in range(world_size):
        score(teacher, ds, tmp_path / "scores", batch_size=3, rank=rank, world_size=world_size)
    cached = CachedScores(tmp_path / "scores", ds, teacher=teacher)
    assert len(cached) == 10 and cached.fingerprint() == teacher.fingerprint()
    order = torch.tensor([7, 0, 3, 9])
    expected = teacher.predict(ds.features[order], ds.ids[order])
    assert torch.allclose(cached.predict(ds.features[order], ds.ids[order]), expected)
    assert not list((tmp_path / "scores").glob("*.tmp"))


def test_parquet_layout_and_fingerprint_metadata(tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = _dataset(4)
    file = score(_Fixed(torch.zeros(104, 2), "t"), ds, tmp_path)
    table = pq.read_table(file)
    assert table.column_names == ["id", "logits"]
    assert table["id"].to_pylist() == [100, 101, 102, 103]
    logits_type = table.schema.field("logits").type
    assert logits_type.list_size == 2 and logits_type.value_type == pa.float32()
    meta = json.loads(table.schema.metadata[b"distill.fingerprint"])
    assert meta["teacher"] == "t" and meta["rows"] == 4 and meta["dtype"] == "float32"
    assert meta["dataset"] == fingerprint_dataset(ds)


def test_stale_cache_is_refused(tmp_path):
    ds = _dataset()
    teacher = ModuleTeacher(_mlp())
    score(teacher, ds, tmp_path)
    changed = _dataset()
    with pytest.raises(StaleCacheError, match=r"stale cache .*: dataset \w+ \(cache\) != \w+"):
        CachedScores(tmp_path, changed, teacher=teacher)
    with pytest.raises(StaleCacheError, match="rows 10 \\(cache\\) != 8 \\(now\\)"):
        CachedScores(tmp_path, ds.subset(torch.arange(8)), teacher=teacher)
    other = ModuleTeacher(_mlp(seed=5))
    both = (
        f"teacher {teacher.fingerprint()[:16]} \\(cache\\) != {other.fingerprint()[:16]} \\(now\\)"
    )
    with pytest.raises(StaleCacheError, match=both):
        CachedScores(tmp_path, ds, teacher=other)
    with pytest.raises(StaleCacheError, match="teacher"):
        CachedScores(tmp_path, ds, teacher=other.fingerprint())  # a fingerprint string works too
    with pytest.raises(TypeError, match="`teacher` must be a teacher with fingerprint"):
        CachedScores(tmp_path, ds, teacher=None)
    relabelled = ds.subset(torch.arange(10))
    relabelled.labels += 1  # labels are not seen by a teacher: still fresh
    CachedScores(tmp_path, relabelled, teacher=teacher)


def test_cache_errors(tmp_path):
    ds = _dataset()
    with pytest.raises(FileNotFoundError, match="no score shards"):
        CachedScores(tmp_path, ds, teacher="t")
    score(_Fixed(torch.zeros(110), "t"), ds, tmp_path, rank=1, world_size=2)
    with pytest.raises(ValueError, match=r"incomplete cache, shard\(s\) \[0\] of 2"):
        CachedScores(tmp_path, ds, teacher="t")
    score(_Fixed(torch.zeros(110), "t"), ds, tmp_path)
    with pytest.raises(ValueError, match=r"shards of runs with world sizes \[1, 2\]"):
        CachedScores(tmp_path / ".", ds, teacher="t")
    (tmp_path / "scores-00001-of-00002.parquet").unlink()
    with pytest.raises(KeyError, match="id 5 is not in the score cache"):
        CachedScores(tmp_path, ds, teacher="t").predict(None, torch.tensor([100, 5]))
    with pytest.raises(TypeError, match="needs a fingerprint"):
        score(object(), ds, tmp_path)
    with pytest.raises(ValueError, match="`rank` must be < world_size"):
        score(_Fixed(torch.zeros(110)), ds, tmp_path, rank=2, world_size=2)


def test_weighted_sparse_rows_pass_values_to_the_module(tmp_path):
    class WeightedSum(nn.Module):
        def forward(self, ids, values=None):
            weights = torch.ones_like(ids, dtype=torch.float32) if values is None else values
            return (ids.float() * weights).sum(dim=1)

    ds = Dataset(
        features=torch.tensor([[1, 2], [3, 0]]),
        labels=torch.zeros(2),
        feature_values=torch.tensor([[0.5, 2.0], [1.0, 0.0]]),
        num_embeddings=4,
    )
    teacher = ModuleTeacher(WeightedSum())
    assert teacher.predict(ds.features, ds.ids).tolist() == [3.0, 3.0]
    score(teacher, ds, tmp_path)
    assert CachedScores(tmp_path, ds, teacher=teacher).predict(None, ds.ids).tolist() == [4.5, 3.0]
    ensemble = EnsembleTeacher([teacher, teacher], binary=True)
    got = ensemble.predict(ds.features, ds.ids, values=ds.feature_values)
    assert torch.allclose(got, torch.tensor([4.5, 3.0]))


def test_fingerprint_covers_zero_dim_parameters():
    scalar = torch.tensor(1.5)
    assert fingerprint_tensors([("b", scalar)]) != fingerprint_tensors([("b", torch.tensor(2.5))])
    assert fingerprint_tensors([("b", scalar)]) != fingerprint_tensors([("b", scalar.reshape(1))])


def test_cached_scores_with_ids_0_to_n_minus_1(tmp_path):
    ds = Dataset(features=torch.rand(8, 4), labels=torch.zeros(8))  # ids default to 0 … 7
    teacher = ModuleTeacher(_mlp())
    score(teacher, ds, tmp_path, batch_size=3)
    cached = CachedScores(tmp_path, ds, teacher=teacher)
    order = torch.tensor([7, 0, 3, 3, 5])
    expected = teacher.predict(ds.features[order], order)
    torch.testing.assert_close(cached.predict(None, order), expected)
    assert cached.predict(None, torch.tensor([], dtype=torch.int64)).shape[0] == 0
    for missing in (8, -1):
        with pytest.raises(KeyError, match=f"id {missing} is not in the score cache"):
            cached.predict(None, torch.tensor([2, missing]))


def _rewrite_shard(file, change):
    """Rewrite a shard's table with ``change(table)``, keeping its metadata (a hand edit)."""
    import pyarrow.parquet as pq

    table = pq.read_table(file)
    pq.write_table(change(table).replace_schema_metadata(table.schema.metadata), file)


def test_edited_shard_is_caught_by_its_content_hash(tmp_path):
    import pyarrow as pa

    ds = _dataset()
    teacher = ModuleTeacher(_mlp(1))
    file = score(teacher, ds, tmp_path)
    CachedScores(tmp_path, ds, teacher=teacher)

    def double_logits(table):
        logits = pa.compute.multiply(table["logits"], 2.0).cast(pa.float32())
        return table.set_column(1, "logits", logits)

    _rewrite_shard(file, double_logits)
    with pytest.raises(ValueError, match=r"scores-00000-of-00001.parquet: the ids/logits do not"):
        CachedScores(tmp_path, ds, teacher=teacher)


def test_stray_duplicate_shard_is_caught(tmp_path):
    import shutil

    ds = _dataset()
    teacher = ModuleTeacher(_mlp(1))
    for rank in range(2):
        score(teacher, ds, tmp_path, rank=rank, world_size=2)
    stray = tmp_path / "scores-00002-of-00002.parquet"
    shutil.copy(tmp_path / "scores-00000-of-00002.parquet", stray)
    with pytest.raises(ValueError, match="holds shard 0 of 2 under another shard's name"):
        CachedScores(tmp_path, ds, teacher=teacher)
    stray.unlink()
    # a shard whose rows repeat rows of another shard (same name, content hash recomputed)
    import json

    import pyarrow.parquet as pq

    from distill.teachers.cache import fingerprint_content

    first = pq.read_table(tmp_path / "scores-00000-of-00002.parquet")
    second_file = tmp_path / "scores-00001-of-00002.parquet"
    meta = json.loads(pq.read_table(second_file).schema.metadata[b"distill.fingerprint"])
    ids = torch.tensor(first["id"].to_pylist())
    logits = torch.tensor(first["logits"].to_pylist(), dtype=torch.float32)
    meta["content"] = fingerprint_content(ids, logits)
    copy = first.replace_schema_metadata({b"distill.fingerprint": json.dumps(meta).encode()})
    pq.write_table(copy, second_file)
    with pytest.raises(ValueError, match=r"\(a stray shard\?\): id 100 occurs more than once"):
        CachedScores(tmp_path, ds, teacher=teacher)


def test_truncated_shard_is_named(tmp_path):
    ds = _dataset()
    teacher = ModuleTeacher(_mlp())
    file = score(teacher, ds, tmp_path)
    file.write_bytes(file.read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"scores-00000-of-00001.parquet: unreadable score shard"):
        CachedScores(tmp_path, ds, teacher=teacher)


@pytest.mark.parametrize("metadata", [b"{not json", b'{"teacher": "t"}', b"[1]"])
def test_damaged_fingerprint_metadata_is_named(tmp_path, metadata):
    import pyarrow.parquet as pq

    ds = _dataset()
    teacher = ModuleTeacher(_mlp())
    file = score(teacher, ds, tmp_path)
    table = pq.read_table(file)
    pq.write_table(table.replace_schema_metadata({b"distill.fingerprint": metadata}), file)
    with pytest.raises(ValueError, match=r"00001.parquet: damaged fingerprint metadata \(needs"):
        CachedScores(tmp_path, ds, teacher=teacher)
