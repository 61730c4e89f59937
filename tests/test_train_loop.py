import json

import pytest
import torch
import torch.nn.functional as F

from distill.data import Dataset
from distill.models import MLP, WideAndDeep
from distill.teachers import CachedScores, ModuleTeacher, score
from distill.train import (
    KDTerm,
    LabelsTerm,
    Objective,
    PairwiseTerm,
    PointwiseTerm,
    QuantileHeadsTerm,
    TrainOptions,
    fit,
    load_checkpoint,
    read_metrics,
    warmup_cosine_factor,
)


class CountingTeacher:
    """Stand-in teacher source: ``predict(features, ids)`` through a module, counting calls."""

    def __init__(self, module):
        self.module = module
        self.calls = []

    @torch.no_grad()
    def predict(self, features, ids):
        self.calls.append((tuple(features.shape), ids.clone()))
        return self.module(features)


def blobs(n=384, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=generator)
    centres = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    features = centres[labels] + 0.7 * torch.randn(n, 4, generator=generator)
    return Dataset(features, labels)


def options(**kwargs):
    base = {"max_steps": 30, "batch_size": 64, "lr": 2e-2, "device": "cpu", "log_every": 5}
    return TrainOptions(**{**base, **kwargs})


def test_fit_learns_and_writes_contract_lines(tmp_path):
    data = blobs()
    torch.manual_seed(0)
    result = fit(
        MLP(4, (16,), 3),
        data,
        objective=Objective([LabelsTerm("ce")]),
        options=options(eval_every=10, warmup_steps=3),
        valid=blobs(seed=1),
        run_dir=tmp_path,
    )
    assert result.best_metric > 0.85, result
    assert result.steps == 30 and result.stop_reason == "completed"
    assert result.history_path == tmp_path / "metrics.jsonl"
    records = read_metrics(result.history_path)
    train_lines = [r for r in records if r["split"] == "train"]
    valid_lines = [r for r in records if r["split"] == "valid"]
    assert [r["step"] for r in train_lines] == [5, 10, 15, 20, 25, 30]
    assert [r["step"] for r in valid_lines] == [10, 20, 30]
    assert set(train_lines[0]) >= {"variant", "step", "split", "phase", "loss", "loss/labels", "lr"}
    assert all(r["variant"] == "student" and r["phase"] is None for r in records)
    for record in train_lines:  # lr of the step = schedule factor before that step
        factor = warmup_cosine_factor(record["step"] - 1, warmup_steps=3, total_steps=30)
        assert record["lr"] == pytest.approx(2e-2 * factor)
    assert (tmp_path / "checkpoints" / "student" / "best.pt").is_file()


def test_same_seed_same_weights_and_different_seed_differs():
    def run(seed):
        torch.manual_seed(0)
        model = MLP(4, (16,), 3, dropout=0.3)
        fit(model, blobs(), objective=Objective([LabelsTerm("ce")]), options=options(seed=seed))
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_early_stopping_and_best_weights_restored(tmp_path):
    torch.manual_seed(0)
    result = fit(
        MLP(4, (16,), 3),
        blobs(),
        objective=Objective([LabelsTerm("ce")]),
        options=options(max_steps=400, lr=0.3, eval_every=5, patience=2, grad_clip=None),
        valid=blobs(seed=1),
        run_dir=tmp_path,
    )
    assert result.stop_reason == "early_stopping"
    assert result.steps < 400
    assert result.steps == result.best_step + 2 * 5  # two evaluations without improvement
    best = load_checkpoint(tmp_path / "checkpoints" / "student" / "best.pt")
    assert best["step"] == result.best_step
    for name, value in result.model.state_dict().items():
        assert torch.equal(value, best["model"][name])
    valid_lines = [r for r in read_metrics(result.history_path) if r["split"] == "valid"]
    assert max(r["accuracy"] for r in valid_lines) == result.best_metric
    assert result.metrics["accuracy"] == result.best_metric


def test_offline_teacher_costs_no_forward_online_one_per_step(tmp_path):
    data = blobs()
    torch.manual_seed(0)
    teacher_net = MLP(4, (16,), 3)
    forwards = []
    teacher_net.register_forward_hook(lambda *args: forwards.append(1))
    objective = Objective([KDTerm(temperature=2.0, alpha=0.7)])
    online = ModuleTeacher(teacher_net)
    fit(MLP(4, (8,), 3), data, objective=objective, options=options(), teacher=online)
    assert len(forwards) == 30  # one teacher forward per step
    score(online, data, tmp_path / "scores")
    offline = CachedScores(tmp_path / "scores", data, teacher=online)
    forwards.clear()
    fit(MLP(4, (8,), 3), data, objective=objective, options=options(), teacher=offline)
    assert forwards == []


def test_kd_step_uses_teacher_logits_of_the_batch_rows():
    data = blobs(64)
    torch.manual_seed(0)
    teacher = CountingTeacher(MLP(4, (16,), 3))
    student = MLP(4, (8,), 3)
    start = {k: v.clone() for k, v in student.state_dict().items()}
    fit(
        student,
        data,
        objective=Objective([KDTerm(temperature=3.0, alpha=0.5)]),
        options=options(max_steps=1, batch_size=64, grad_clip=None, weight_decay=0.0),
        teacher=teacher,
    )
    _, ids = teacher.calls[0]
    assert sorted(ids.tolist()) == list(range(64))
    reference = MLP(4, (8,), 3)
    reference.load_state_dict(start)
    x, y = data.features[ids], data.labels[ids]
    soft = F.kl_div(
        F.log_softmax(reference(x) / 3, -1),
        F.softmax(teacher.module(x).detach() / 3, -1),
        reduction="batchmean",
    )
    loss = 0.5 * 9 * soft + 0.5 * F.cross_entropy(reference(x), y)
    optimizer = torch.optim.AdamW(reference.parameters(), lr=2e-2, weight_decay=0.0)
    loss.backward()
    optimizer.step()
    for a, b in zip(student.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_student_features_teacher_sees_all_columns():
    data = blobs()
    teacher = CountingTeacher(MLP(4, (8,), 1))
    fit(
        MLP(2, (8,), 1),
        Dataset(data.features, data.labels.float()),
        objective=Objective([PointwiseTerm(penalty="squared")]),
        options=options(max_steps=3, student_features="1-2", metric="auc"),
        teacher=teacher,
    )
    assert {shape[1] for shape, _ in teacher.calls} == {4}


def test_grouped_batches_keep_groups_whole():
    groups = torch.arange(40).repeat_interleave(torch.randint(1, 7, (40,)))
    features = torch.randn(len(groups), 3)
    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 1)

        def forward(self, x):
            if self.training:
                seen.append(x.clone())
            return self.linear(x).squeeze(-1)

    data = Dataset(features, (features[:, 0] > 0).float(), groups=groups)
    fit(
        Recorder(),
        data,
        objective=Objective([LabelsTerm("bce")]),
        options=options(epochs=1, max_steps=None, batch_size=20, metric="auc"),
    )
    row_of = {tuple(row.tolist()): i for i, row in enumerate(features)}
    batch_groups = [set(groups[[row_of[tuple(r.tolist())] for r in x]].tolist()) for x in seen]
    for i, first in enumerate(batch_groups):
        for second in batch_groups[i + 1 :]:
            assert not first & second
    assert sum(len(x) for x in seen) == len(groups)


def test_bf16_autocast_trains():
    torch.manual_seed(0)
    result = fit(
        MLP(4, (16,), 3),
        blobs(),
        objective=Objective([LabelsTerm("ce")]),
        options=options(bf16=True, eval_every=30),
        valid=blobs(seed=1),
    )
    assert result.best_metric > 0.8
    assert torch.isfinite(torch.tensor(result.last_train["loss"]))


def test_tensorboard_needs_the_package(tmp_path):
    pytest.importorskip("torch")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="TensorBoard logging needs the `tensorboard`"):
            fit(
                MLP(4, (8,), 3),
                blobs(),
                objective=Objective([LabelsTerm("ce")]),
                options=options(tensorboard=True),
                run_dir=tmp_path,
            )
    else:
        fit(
            MLP(4, (8,), 3),
            blobs(),
            objective=Objective([LabelsTerm("ce")]),
            options=options(tensorboard=True),
            run_dir=tmp_path,
        )
        assert any((tmp_path / "tensorboard" / "student").iterdir())


def test_argument_errors(tmp_path):
    data = blobs(32)
    model = MLP(4, (8,), 3)
    with pytest.raises(ValueError, match=r"objective terms \['kd'\] need teacher logits"):
        fit(model, data, objective=Objective([KDTerm()]), options=options())
    with pytest.raises(ValueError, match="`resume`, `checkpoint_every` and `tensorboard` need"):
        fit(model, data, objective=Objective([LabelsTerm()]), options=options(), resume=True)
    with pytest.raises(ValueError, match="`patience` .* needs `valid` data"):
        fit(model, data, objective=Objective([LabelsTerm()]), options=options(patience=2))
    with pytest.raises(TypeError, match="`options` must be a TrainOptions, got dict"):
        fit(model, data, objective=Objective([LabelsTerm()]), options={"lr": 1.0})


def test_fresh_run_replaces_old_lines_of_its_variant(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps({"variant": "student", "step": 99, "split": "train"})
        + "\n"
        + json.dumps({"variant": "teacher", "step": 99, "split": "train"})
        + "\n"
    )
    fit(
        MLP(4, (8,), 3),
        blobs(),
        objective=Objective([LabelsTerm("ce")]),
        options=options(max_steps=5),
        run_dir=tmp_path,
    )
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [(r["variant"], r["step"]) for r in records] == [("teacher", 99), ("student", 5)]


def test_ranking_fit_with_heads_stops_on_pair_agreement(tmp_path):
    generator = torch.Generator().manual_seed(0)
    groups = torch.arange(60).repeat_interleave(6)
    features = torch.randn(360, 5, generator=generator)
    teacher_net = torch.nn.Linear(5, 1)
    with torch.no_grad():
        teacher_net.weight.copy_(torch.tensor([[1.5, -1.0, 0.5, 0.0, 0.0]]))
    scores = teacher_net(features).squeeze(-1).detach()
    labels = torch.bucketize(scores, torch.tensor([-1.0, 0.0, 1.0])).float()
    data = Dataset(features, labels, groups=groups)
    teacher = ModuleTeacher(torch.nn.Sequential(teacher_net, torch.nn.Flatten(0)))
    objective = Objective(
        [PairwiseTerm(penalty="absolute"), QuantileHeadsTerm(taus=[0.25, 0.75], weight=0.5)]
    )
    torch.manual_seed(0)
    model = MLP(5, (16,), 1)
    result = fit(
        model,
        data,
        objective=objective,
        teacher=teacher,
        valid=data,
        run_dir=tmp_path,
        options=options(
            max_steps=300,
            groups_per_batch=10,
            metric="ndcg@10",
            eval_every=10,
            stop_pair_agreement=0.8,
            pair_agreement_threshold=0.5,
        ),
    )
    assert result.stop_reason == "pair_agreement", result
    assert result.steps < 300
    valid_lines = [r for r in read_metrics(result.history_path) if r["split"] == "valid"]
    assert valid_lines[-1]["pair_agreement"] >= 0.8 > valid_lines[0]["pair_agreement"]
    assert result.metrics["ndcg@10"] > 0.9
    assert result.model is model and model(features).shape == (360,)  # heads were training-only


def test_progress_off_a_terminal_is_log_lines_and_progress_false_is_silent(capsys):
    fit(MLP(4, (8,), 3), blobs(), objective=Objective([LabelsTerm("ce")]), options=options())
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("student  step 30/30 (100%)  elapsed ") and "ETA" in lines[-1]
    objective = Objective([LabelsTerm("ce")])
    fit(MLP(4, (8,), 3), blobs(), objective=objective, options=options(progress=False))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    fit(
        MLP(4, (8,), 3),
        blobs(),
        objective=Objective([LabelsTerm("ce")]),
        options=options(progress=True),
    )
    assert "loss=" in capsys.readouterr().out


def test_nll_metric_keeps_the_lowest_value(tmp_path):
    torch.manual_seed(0)
    result = fit(
        MLP(4, (16,), 3),
        blobs(),
        objective=Objective([LabelsTerm("ce")]),
        options=options(max_steps=40, eval_every=5, metric="nll"),
        valid=blobs(seed=1),
        run_dir=tmp_path,
    )
    values = [r["nll"] for r in read_metrics(result.history_path) if r["split"] == "valid"]
    assert result.best_metric == min(values) and result.best_metric < values[0]
    assert result.metrics == {"nll": result.best_metric}


def test_online_teacher_gets_the_values_of_weighted_sparse_rows(tmp_path):
    """Oracle: the score cache, which passes ``values=`` to the teacher (checked here)."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 40, (256, 5), generator=generator)
    values = torch.rand(256, 5, generator=generator) * 3
    labels = (values.sum(1) > 7.5).float()
    data = Dataset(ids, labels, feature_values=values)
    torch.manual_seed(0)
    teacher = ModuleTeacher(WideAndDeep(40, 5, embed_dim=4, hidden=(8,)))
    assert not torch.equal(
        teacher.predict(ids, data.ids), teacher.predict(ids, data.ids, values=values)
    )
    objective = Objective([PointwiseTerm(penalty="squared")])
    trained = []
    score(teacher, data, tmp_path / "scores")
    for source in (teacher, CachedScores(tmp_path / "scores", data, teacher=teacher)):
        torch.manual_seed(1)
        student = WideAndDeep(40, 5, embed_dim=4, hidden=(4,))
        fit(
            student,
            data,
            objective=objective,
            options=options(max_steps=4, metric="auc"),
            teacher=source,
        )
        trained.append(student.state_dict())
    for name, weight in trained[0].items():
        torch.testing.assert_close(weight, trained[1][name])
