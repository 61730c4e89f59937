import math
import statistics

import pytest
import torch

from distill.data import load_builtin, split
from distill.metrics import auc
from distill.models import WideAndDeep, ctr_joint_model
from distill.teachers import CachedScores, ModuleTeacher, score
from distill.train import LabelsTerm, Objective, TrainOptions, fit, predict, read_metrics
from distill.train.batches import Batch
from distill.train.joint import JointObjective


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def bce(a, b):
    return -(a * math.log(b) + (1 - a) * math.log(1 - b))


class RecordingScores:
    """Stand-in static teacher (cached scores by id) that records every call."""

    def __init__(self, logits):
        self.logits = logits
        self.calls = []

    def predict(self, features, ids):
        self.calls.append(ids.clone())
        return self.logits[ids]


def student_loss(student, teacher, labels, w, t):
    student, teacher = student.detach(), teacher.detach()
    return sum(
        w * bce(sigmoid(float(v) / t), sigmoid(float(z)))
        + (1 - w) * bce(float(y), sigmoid(float(z)))
        for z, v, y in zip(student, teacher, labels, strict=True)
    ) / len(labels)


def test_phases_and_targets_static_then_dynamic():
    objective = JointObjective(soft_weight=0.3, temperature=2.0, warmup_steps=2)
    assert [objective.phase(s) for s in (1, 2, 3)] == ["static", "static", "dynamic"]
    assert [objective.needs_teacher(s) for s in (1, 2, 3)] == [True, True, False]
    tower = torch.nn.Linear(3, 1).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    teacher_logit = tower(x).squeeze(-1)
    student_logit = torch.randn(5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([1.0, 0, 1, 0, 0], dtype=torch.float64)
    cached = torch.randn(5, dtype=torch.float64) * 2
    batch = Batch(features=x, labels=labels, ids=torch.arange(5))

    _, static = objective((teacher_logit, student_logit), batch, cached, step=2)
    assert static["loss/student"].item() == pytest.approx(
        student_loss(student_logit, cached, labels, 0.3, 2.0)
    )
    _, dynamic = objective((teacher_logit, student_logit), batch, None, step=3)
    assert dynamic["loss/student"].item() == pytest.approx(
        student_loss(student_logit, teacher_logit, labels, 0.3, 2.0)
    )
    expected_teacher = sum(
        bce(float(y), sigmoid(float(v)))
        for v, y in zip(teacher_logit.detach(), labels, strict=True)
    )
    assert dynamic["loss/teacher"].item() == pytest.approx(expected_teacher / 5)
    dynamic["loss/student"].backward()
    assert tower.weight.grad is None  # the student never pulls the teacher
    assert student_logit.grad is not None


def test_joint_fit_switches_phase_at_warmup_end(tmp_path):
    data = load_builtin("synthetic_ctr", n_rows=600, fields=4, cardinality=10, seed=0)
    static_teacher = RecordingScores(torch.randn(len(data)))
    torch.manual_seed(0)
    model = ctr_joint_model(data.num_embeddings, 4, student_hidden=(4,), teacher_hidden=(8,))
    options = TrainOptions(max_steps=9, batch_size=100, log_every=1, metric="auc", device="cpu")
    result = fit(
        model,
        data,
        objective=JointObjective(soft_weight=0.5, warmup_steps=4),
        options=options,
        teacher=static_teacher,
        valid=data,
        run_dir=tmp_path,
        variant="joint",
    )
    assert len(static_teacher.calls) == 4  # fixed teacher labels only in the static phase
    train_lines = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["split"] == "train"]
    assert [r["phase"] for r in train_lines] == ["static"] * 4 + ["dynamic"] * 5
    assert {"loss/teacher", "loss/student"} <= set(train_lines[0])
    assert result.model is model and 0.0 <= result.metrics["auc"] <= 1.0
    student = model.student()  # serving path: no teacher-tower parameters
    assert not any(name.startswith("teacher") for name, _ in student.named_parameters())


def test_static_phase_reads_the_cached_scores_of_the_batch_rows(tmp_path):
    data = load_builtin("synthetic_ctr", n_rows=400, fields=4, cardinality=10, seed=1)
    train, _ = split(data, (0.5, 0.5), seed=3)
    assert not torch.equal(train.ids, torch.arange(len(train)))  # ids are not row positions
    torch.manual_seed(0)
    teacher = ctr_joint_model(data.num_embeddings, 4, teacher_hidden=(8,)).teacher().eval()
    score(ModuleTeacher(teacher), train, tmp_path / "scores")
    cached = CachedScores(tmp_path / "scores", train, teacher=ModuleTeacher(teacher))
    served = []

    class CheckedScores:
        def predict(self, features, ids):
            with torch.no_grad():
                assert torch.allclose(cached.predict(features, ids), teacher(features))
            served.append(len(ids))
            return cached.predict(features, ids)

    joint = ctr_joint_model(data.num_embeddings, 4, student_hidden=(4,), teacher_hidden=(8,))
    options = TrainOptions(max_steps=6, batch_size=50, device="cpu", progress=False)
    objective = JointObjective(warmup_steps=4)
    fit(joint, train, objective=objective, options=options, teacher=CheckedScores())
    assert served == [50] * 4


def test_joint_objective_validates():
    with pytest.raises(ValueError, match=r"`soft_weight` must be in \[0, 1\], got 1.5"):
        JointObjective(soft_weight=1.5)
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, inf\), got 0"):
        JointObjective(temperature=0.0)
    with pytest.raises(ValueError, match="`warmup_steps` must be >= 0, got -1"):
        JointObjective(warmup_steps=-1)
    assert not JointObjective(warmup_steps=0).uses_teacher


@pytest.mark.slow
def test_joint_student_beats_label_only_student_on_synthetic_ctr():
    """Where the deep teacher tower beats the student alone, the joint student gains too.

    Data with enough rows per id (80k rows, 8 fields of 30 values, 30 % clicks) and converged
    training (lr 1e-2): the teacher tower then has an edge, and sharing its embedding plus the
    dynamic targets (W 0.5, T 1) lift the Wide & Deep student. Mean over 3 dataset seeds, each
    with its own split; same initial student, step budget and best-validation checkpoint.
    """
    joint_auc, alone_auc, teacher_auc = [], [], []
    for seed in (0, 1, 2):
        data = load_builtin(
            "synthetic_ctr", n_rows=80_000, fields=8, cardinality=30, click_rate=0.3, seed=seed
        )
        train, valid, test = split(data, (0.7, 0.15, 0.15), seed=seed)
        options = TrainOptions(
            epochs=4, batch_size=256, lr=1e-2, metric="auc", eval_every=50, seed=seed, device="cpu"
        )
        torch.manual_seed(seed + 1)
        joint = ctr_joint_model(data.num_embeddings, 8, student_hidden=(8,))
        alone = WideAndDeep(data.num_embeddings, 8, hidden=(8,))
        alone.load_state_dict(joint.student().state_dict())  # the same initial student
        objective = JointObjective(soft_weight=0.5, temperature=1.0)
        fit(joint, train, objective=objective, options=options, valid=valid)
        joint_auc.append(auc(predict(joint.student(), test), test.labels))
        teacher_auc.append(auc(predict(joint.teacher(), test), test.labels))
        fit(alone, train, objective=Objective([LabelsTerm("bce")]), options=options, valid=valid)
        alone_auc.append(auc(predict(alone, test), test.labels))
    gains = [j - a for j, a in zip(joint_auc, alone_auc, strict=True)]
    summary = (
        f"joint student AUC {joint_auc} vs label-only {alone_auc} (teacher tower {teacher_auc});"
        f" gain {statistics.mean(gains):.4f} ± {statistics.stdev(gains):.4f} over 3 data seeds"
    )
    assert statistics.mean(teacher_auc) > statistics.mean(alone_auc), summary  # the premise
    assert statistics.mean(gains) > 0.001, summary
