"""The joint model's input gate (scheduled or learned) and the gated-experts teacher tower."""

import math

import numpy as np
import pytest
import torch

from distill import models
from distill.data import load_builtin
from distill.models import GatedExpertTower, ctr_joint_model
from distill.models.ctr import FieldEmbedding
from distill.train import TrainOptions, fit
from distill.train.batches import Batch
from distill.train.joint import JointObjective
from test_train_joint import RecordingScores


def np_bce(target, prob):
    return -(target * np.log(prob) + (1 - target) * np.log(1 - prob))


def sig(x):
    return 1 / (1 + np.exp(-x))


def test_gate_schedules():
    switch = JointObjective(warmup_steps=10)
    assert [switch.gate_value(s) for s in (1, 10, 11)] == [0.0, 0.0, 1.0]
    linear = JointObjective(warmup_steps=10, gate="linear", gate_steps=20)
    cosine = JointObjective(warmup_steps=10, gate="cosine", gate_steps=20)
    for step in (5, 10, 15, 20, 30, 45):
        progress = min(max((step - 10) / 20, 0), 1)
        assert linear.gate_value(step) == pytest.approx(progress)
        assert cosine.gate_value(step) == pytest.approx(0.5 - 0.5 * math.cos(math.pi * progress))
    assert [linear.needs_teacher(s) for s in (30, 31)] == [True, False]
    assert JointObjective(gate="learned").needs_teacher(10**6)
    assert JointObjective(gate="learned").uses_teacher
    with pytest.raises(ValueError, match="`gate_steps` must be >= 1 for gate 'linear'"):
        JointObjective(gate="linear")
    with pytest.raises(ValueError, match="`gate` must be one of"):
        JointObjective(gate="soft")


def batch_of(labels):
    n = len(labels)
    return Batch(torch.zeros(n, 1), torch.tensor(labels, dtype=torch.float64), torch.arange(n))


def test_scheduled_gate_loss_is_the_mixed_target_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    teacher, student, static = (torch.randn(6, generator=gen, dtype=torch.float64) for _ in "abc")
    labels = [1, 0, 0, 1, 1, 0]
    w, t = 0.7, 2.0
    objective = JointObjective(
        soft_weight=w, temperature=t, warmup_steps=4, gate="linear", gate_steps=8
    )
    total, parts = objective((teacher, student), batch_of(labels), static, step=7)
    g = 3 / 8
    mixed = g * sig(teacher.numpy() / t) + (1 - g) * sig(static.numpy() / t)
    target = w * mixed + (1 - w) * np.array(labels)  # H is linear in its target
    expected = np_bce(target, sig(student.numpy())).mean()
    assert parts["loss/student"].item() == pytest.approx(expected)
    teacher_bce = np_bce(np.array(labels), sig(teacher.numpy())).mean()
    assert float(total) == pytest.approx(expected + teacher_bce)


def test_learned_gate_loss_and_gradients():
    gen = torch.Generator().manual_seed(1)
    teacher, student, static, gate = (
        torch.randn(5, generator=gen, dtype=torch.float64).requires_grad_(True) for _ in "abcd"
    )
    labels = [1, 0, 1, 1, 0]
    objective = JointObjective(soft_weight=0.5, gate="learned")
    total, parts = objective((teacher, student, gate), batch_of(labels), static, step=3)
    g = sig(gate.detach().numpy())
    p_dyn, p_static = sig(teacher.detach().numpy()), sig(static.detach().numpy())
    gate_loss = np_bce(np.array(labels), g * p_dyn + (1 - g) * p_static).mean()
    assert parts["loss/gate"].item() == pytest.approx(gate_loss)
    target = 0.5 * (g * p_dyn + (1 - g) * p_static) + 0.5 * np.array(labels)
    expected = np_bce(target, sig(student.detach().numpy())).mean()
    assert parts["loss/student"].item() == pytest.approx(expected)
    (gate_grad,) = torch.autograd.grad(total, gate, retain_graph=True)
    (only_gate,) = torch.autograd.grad(parts["loss/gate"], gate, retain_graph=True)
    torch.testing.assert_close(gate_grad, only_gate)  # the student term does not move the gate
    (static_grad,) = torch.autograd.grad(total, static, allow_unused=True)
    assert static_grad is None or float(static_grad.abs().sum()) == 0.0


def test_gated_expert_tower_against_loop_and_round_trip(tmp_path):
    torch.manual_seed(0)
    tower = GatedExpertTower(3, embed_dim=4, experts=3, hidden=(5,))
    embedded = FieldEmbedding(20, 3, embed_dim=4)(torch.randint(1, 20, (7, 3)))
    flat = embedded.vectors.flatten(1)
    weights = torch.softmax(flat @ tower.gate.weight.T + tower.gate.bias, dim=1)
    expected = sum(weights[:, k] * tower.experts[k](embedded) for k in range(3))
    torch.testing.assert_close(tower(embedded), expected)
    joint = ctr_joint_model(20, 3, embed_dim=4, teacher_experts=3, gate_hidden=(4,))
    models.save(joint, tmp_path / "joint")
    loaded = models.load(tmp_path / "joint")
    ids = torch.randint(0, 20, (4, 3))
    for mine, theirs in zip(joint(ids), loaded(ids), strict=True):
        torch.testing.assert_close(mine, theirs)


def test_fit_with_learned_gate_and_experts_reads_static_labels_every_step():
    data = load_builtin("synthetic_ctr", n_rows=600, fields=4, cardinality=10, seed=0)
    static_teacher = RecordingScores(torch.randn(len(data)))
    torch.manual_seed(0)
    model = ctr_joint_model(
        data.num_embeddings, 4, student_hidden=(4,), teacher_hidden=(8,), teacher_experts=2,
        gate_hidden=(4,),
    )  # fmt: skip
    options = TrainOptions(max_steps=5, batch_size=100, metric="auc", device="cpu", progress=False)
    gate_before = model.gate.deep.head.weight.detach().clone()
    result = fit(
        model, data, objective=JointObjective(gate="learned"), options=options,
        teacher=static_teacher, valid=data,
    )  # fmt: skip
    assert len(static_teacher.calls) == 5
    assert not torch.equal(model.gate.deep.head.weight.detach(), gate_before)
    assert 0.0 <= result.metrics["auc"] <= 1.0


@pytest.mark.parametrize(
    "joint",
    [
        {"warmup_steps": 2, "gate": "cosine", "gate_steps": 4, "teacher_experts": 2},
        {"gate": "learned", "gate_hidden": [4]},
    ],
)
def test_joint_gate_from_a_config(tmp_path, joint):
    from distill.config import ConfigError, parse_config
    from distill.experiment.runner import run_experiment

    raw = {
        "run": {"name": "ctr", "track": "ctr", "out_dir": str(tmp_path)},
        "data": {"name": "synthetic_ctr", "options": {"n_rows": 1500, "fields": 4}},
        "teacher": {
            "model": {"name": "WideAndDeep", "kwargs": {"hidden": [16]}},
            "train": {"max_steps": 5, "batch_size": 128},
        },
        "student": {"model": {"name": "WideAndDeep", "kwargs": {"hidden": [4]}}},
        "train": {"max_steps": 8, "batch_size": 128},
        "variants": [{"name": "alone", "objective": {"labels": {}}}],
        "joint": {"teacher_hidden": [16], **joint},
    }
    alone, row = run_experiment(parse_config(raw))["variants"]
    assert row["name"] == "joint" and row["params"] == alone["params"]  # served student only
    assert 0.0 <= row["metrics"]["auc"] <= 1.0
    raw["joint"] = {"gate": "linear"}
    with pytest.raises(ConfigError, match=r"joint.gate_steps: must be >= 1 for gate = 'linear'"):
        parse_config(raw)
