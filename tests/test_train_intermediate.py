"""IntermediateObjective: loss parts vs an oracle, the two stages, checkpoints/export, configs."""

import json

import numpy as np
import pytest
import torch

from distill import data
from distill.config import ConfigError, parse_config
from distill.experiment.runner import run_experiment
from distill.export.model_source import load_checkpoint_model
from distill.models import TransformerClassifier
from distill.train import (
    IntermediateObjective,
    IntermediateStudent,
    KDTerm,
    LabelsTerm,
    TrainOptions,
    fit,
)
from distill.train.batches import Batch


def _models(seed=0):
    torch.manual_seed(seed)
    teacher = TransformerClassifier(64, 10, d_model=32, num_layers=4, num_heads=2)
    student = TransformerClassifier(64, 10, d_model=16, num_layers=2, num_heads=2)
    return teacher, student


def _np(x):
    return x.detach().double().numpy()


def test_loss_parts_match_a_numpy_oracle():
    teacher, student = _models()
    x, labels = torch.rand(5, 64), torch.randint(0, 10, (5,))
    objective = IntermediateObjective(
        teacher, sample=x[:2], terms=[KDTerm(alpha=1.0, temperature=2.0)], embedding=0.5
    )
    wrapped = objective.wrap_model(student)
    assert isinstance(wrapped, IntermediateStudent)
    assert sorted(objective.projections) == ["embedding", "hidden_1", "hidden_2"]
    outputs = wrapped(x)
    batch = Batch(features=x, labels=labels, ids=torch.arange(5))
    total, parts = objective(outputs, batch, None, step=1)

    hidden_s, hidden_t = {}, {}
    for _name, store, model in (("s", hidden_s, student), ("t", hidden_t, teacher)):
        model.eval()
        for key in ["embedding", *[f"blocks.{i}" for i in range(len(model.blocks))]]:
            model.get_submodule(key).register_forward_hook(
                lambda m, i, o, key=key, store=store: store.__setitem__(key, o)
            )
        store["logits"] = model(x)
    student.train()

    def projected(key, proj):
        w = objective.projections[proj]
        return _np(hidden_s[key]) @ _np(w.weight).T + _np(w.bias)

    embedding = ((projected("embedding", "embedding") - _np(hidden_t["embedding"])) ** 2).mean()
    hidden = sum(
        (
            (projected(f"blocks.{m - 1}", f"hidden_{m}") - _np(hidden_t[f"blocks.{2 * m - 1}"]))
            ** 2
        ).mean()
        for m in (1, 2)
    )
    assert parts["loss/embedding"].item() == pytest.approx(embedding, rel=1e-4)
    assert parts["loss/hidden"].item() == pytest.approx(hidden, rel=1e-4)
    # KD at alpha = 1: T²·KL(softmax(v/T) ‖ softmax(z/T)), batch mean
    p = torch.softmax(hidden_t["logits"].detach().double() / 2, -1).numpy()
    q = torch.softmax(hidden_s["logits"].detach().double() / 2, -1).numpy()
    kd = 4 * np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))
    assert parts["loss/kd"].item() == pytest.approx(kd, rel=1e-4)
    expected = 0.5 * embedding + hidden + parts["loss/attention"].item() + kd
    assert total.item() == pytest.approx(expected, rel=1e-4)
    total.backward()
    assert objective.projections["hidden_1"].weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


def test_two_stages_switch_terms_and_phases():
    teacher, student = _models()
    x = torch.rand(4, 64)
    objective = IntermediateObjective(
        teacher, sample=x, terms=[LabelsTerm()], intermediate_steps=3, attention_kind="kl"
    )
    wrapped = objective.wrap_model(student)
    batch = Batch(features=x, labels=torch.zeros(4, dtype=torch.long), ids=torch.arange(4))
    parts = []
    for step in (3, 4):  # every parameter gets a gradient in both stages (as DDP needs)
        wrapped.zero_grad(set_to_none=True)
        total, part = objective(wrapped(x), batch, None, step=step)
        total.backward()
        assert all(p.grad is not None for p in wrapped.parameters())
        parts.append(part)
    first, second = parts
    assert set(first) == {"loss/hidden", "loss/attention"}
    assert set(second) == {"loss/labels"}
    assert (objective.phase(3), objective.phase(4)) == ("intermediate", "prediction")
    assert not objective.uses_teacher and not objective.needs_teacher(1)
    assert wrapped.eval()(x).shape == (4, 10)  # eval: the student's own output


def test_errors_before_training():
    teacher, student = _models()
    x = torch.rand(2, 64)
    with pytest.raises(ValueError, match="did you mean 'blocks.1'"):
        names = {"hidden": ["block.1"]}
        IntermediateObjective(teacher, sample=x, attention=0.0, student_layers=names).wrap_model(
            student
        )
    wide = TransformerClassifier(64, 10, d_model=16, num_layers=2, num_heads=4)
    with pytest.raises(ValueError, match=r"equal shapes, got \(2, 4, 8, 8\) and \(2, 2, 8, 8\)"):
        IntermediateObjective(teacher, sample=x).wrap_model(wide)
    with pytest.raises(ValueError, match="needs num_student <= num_teacher"):
        IntermediateObjective(student, sample=x).wrap_model(teacher)
    with pytest.raises(ValueError, match="needs prediction-layer `terms` for stage 2"):
        IntermediateObjective(teacher, sample=x, intermediate_steps=5)
    with pytest.raises(
        TypeError, match=r"\(Linear\) has no layer_names\(\); pass `teacher_layers`"
    ):
        IntermediateObjective(torch.nn.Linear(64, 10), sample=x)
    with pytest.raises(ValueError, match="the hidden weight > 0 needs hidden layer names"):
        IntermediateObjective(teacher, sample=x, student_layers={"attention": []}).wrap_model(
            student
        )
    with pytest.raises(ValueError, match="`student_layers` keys must be among"):
        IntermediateObjective(teacher, sample=x, student_layers={"hiden": []}).wrap_model(student)


def test_fit_saves_projections_in_checkpoints_and_exports_the_bare_student(tmp_path):
    teacher, student = _models()
    digits = data.load_builtin("digits")
    train = data.Dataset(features=digits.features[:96], labels=digits.labels[:96], meta=digits.meta)
    objective = IntermediateObjective(
        teacher, sample=train.features[:4], terms=[KDTerm(alpha=0.5)], intermediate_steps=2
    )
    options = TrainOptions(max_steps=4, batch_size=32, metric="accuracy", progress=False)
    result = fit(student, train, objective=objective, options=options, run_dir=tmp_path)
    assert result.model is student
    checkpoint = torch.load(result.checkpoint_dir / "last.pt", weights_only=True)
    assert any(key.startswith("projections.hidden_1") for key in checkpoint["model"])
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"spec": student.spec()}))
    exported = load_checkpoint_model(result.checkpoint_dir / "last.pt", spec)
    x = train.features[:3]
    torch.testing.assert_close(exported(x), student.eval()(x))
    log = [json.loads(line) for line in result.history_path.read_text().splitlines()]
    assert {row.get("phase") for row in log if row["split"] == "train"} >= {"prediction"}


def _config(tmp_path, **train):
    model = {"name": "TransformerClassifier", "kwargs": {"d_model": 16, "num_heads": 2}}
    teacher = {
        "name": "TransformerClassifier",
        "kwargs": {"d_model": 32, "num_layers": 4, "num_heads": 2},
    }
    return {
        "run": {"name": "tiny", "track": "classification", "out_dir": str(tmp_path)},
        "data": {"name": "digits", "split": [0.2, 0.1, 0.7]},
        "teacher": {"model": teacher, "train": {"max_steps": 6, "batch_size": 64}},
        "student": {"model": model},
        "train": {"max_steps": 6, "batch_size": 64, "log_every": 1, **train},
        "variants": [
            {
                "name": "tinybert",
                "objective": {
                    "kd": {"alpha": 1.0},
                    "intermediate": {
                        "layer_map": [[1, 2], [2, 4]],
                        "embedding": 1.0,
                        "intermediate_steps": 3,
                    },
                },
            }
        ],
    }


def test_config_runs_the_intermediate_term_end_to_end(tmp_path):
    results = run_experiment(parse_config(_config(tmp_path, teacher_mode="online")))
    row = results["variants"][0]
    assert row["name"] == "tinybert" and 0.0 <= row["metrics"]["accuracy"] <= 1.0
    assert row["params"] == sum(
        p.numel() for p in TransformerClassifier(64, 10, d_model=16, num_heads=2).parameters()
    )
    log = (tmp_path / "tiny" / "metrics.jsonl").read_text()
    assert '"loss/attention"' in log and '"loss/embedding"' in log and '"loss/kd"' in log


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="set train.teacher_mode = 'online'"):
        parse_config(_config(tmp_path))
    raw = _config(tmp_path, teacher_mode="online")
    raw["variants"][0]["objective"]["intermediate"]["layer_map"] = [[1, 2, 3]]
    with pytest.raises(ConfigError, match="layer_map"):
        parse_config(raw)
