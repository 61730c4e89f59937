"""`distill export` on a model directory, a checkpoint and a run directory; usage errors."""

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from distill import models
from distill.cli.export import export
from distill.export import read_export
from distill.export.sources import ExportSource, export_source
from distill.models import MLP
from distill.ranking.heads import with_quantile_heads

app = typer.Typer()
app.command()(export)
app.command("other")(lambda: None)  # two commands: `export` is then a named sub-command
runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, ["export", *map(str, args)])


def _text(result) -> str:
    """The output with rich panel borders and line wrapping removed."""
    return " ".join(result.output.replace("│", " ").split())


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    return models.save(MLP(8, (32, 16), 3), tmp_path / "student")


def test_model_directory_to_several_formats(tmp_path, model_dir):
    out = tmp_path / "out"
    result = _invoke(model_dir, "--format", "fp16,int8", "-f", "safetensors", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "student").iterdir()) == ["fp16", "int8", "safetensors"]
    original = models.load(model_dir)
    x = torch.randn(16, 8)
    for fmt, tolerance in (("safetensors", 0.0), ("fp16", 1e-2), ("int8", 5e-2)):
        got = read_export(out / "student" / fmt).model(x)
        assert (got - original(x)).abs().max() <= tolerance * original(x).abs().max()
    table = (out / "compression.md").read_text()
    assert "| student/int8 | int8 |" in table and "| student | torch |" in table
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["formats"] == ["fp16", "int8", "safetensors"]
    assert "student/int8" in _text(result)


def test_usage_errors_exit_2(tmp_path, model_dir):
    result = _invoke(model_dir, "--format", "fp16,tflite", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "unknown format 'tflite'" in _text(result)
    result = _invoke(model_dir, "--low-rank", "1.5", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "fraction in (0, 1], got 1.5" in _text(result)
    result = _invoke(model_dir, "--recover-steps", "5", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "only applies to the low-rank format" in _text(result)
    result = _invoke(model_dir, "--recover-from", "oracle", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "must be 'student' or 'teacher', got 'oracle'" in _text(result)
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_force(tmp_path, model_dir):
    out = tmp_path / "out"
    assert _invoke(model_dir, "--out", out, "--repeats", "1").exit_code == 0
    result = _invoke(model_dir, "--format", "bf16", "--out", out)
    assert result.exit_code == 2 and "already exists; add --force" in _text(result)
    result = _invoke(model_dir, "--format", "bf16", "--out", out, "--force", "--repeats", "1")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "student").iterdir()) == ["bf16"]


def test_rank_too_large_and_recovery_without_data_fail_cleanly(tmp_path, model_dir):
    result = _invoke(model_dir, "--low-rank", "40", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "`rank` 40 is too large" in _text(result)
    result = _invoke(model_dir, "--low-rank", "4", "--recover-steps", "3", "--out", tmp_path / "o")
    assert result.exit_code == 1 and "needs training data" in _text(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"]  # nothing half-written


def test_checkpoint_with_its_run_spec_and_with_a_wrong_spec(tmp_path):
    torch.manual_seed(0)
    run = tmp_path / "run"
    student = MLP(8, (16,), 1)
    models.save(student, run / "students" / "kd")
    (run / "checkpoints" / "kd").mkdir(parents=True)
    torch.save({"model": student.state_dict(), "step": 3}, run / "checkpoints" / "kd" / "best.pt")
    result = _invoke(
        run / "checkpoints" / "kd" / "best.pt", "--out", tmp_path / "a", "--repeats", 1
    )
    assert result.exit_code == 0, result.output
    x = torch.randn(4, 8)
    assert torch.equal(read_export(tmp_path / "a" / "kd" / "safetensors").model(x), student(x))
    other = models.save(MLP(8, (32,), 1), tmp_path / "other")
    best = run / "checkpoints" / "kd" / "best.pt"
    result = _invoke(best, "--spec", other, "--out", tmp_path / "b")
    assert result.exit_code == 1
    assert "checkpoint does not match model spec" in _text(result)
    assert "'body.0.0.weight' has shape (16, 8), the spec needs (32, 8)" in _text(result)


def test_joint_and_quantile_head_checkpoints_load_their_serving_part(tmp_path):
    torch.manual_seed(0)
    joint = models.ctr_joint_model(30, 3, student_hidden=(8,), teacher_hidden=(16,))
    heads = with_quantile_heads(MLP(6, (8,), 1), [0.1, 0.5, 0.9], "linear")
    cases = [
        ("joint", joint, joint.student(), (torch.randint(0, 30, (5, 3)),)),
        ("qr", heads, heads.model, (torch.randn(5, 6),)),
    ]
    for name, trained, serving, inputs in cases:
        models.save(serving, tmp_path / "run" / "students" / name)
        checkpoint = tmp_path / "run" / "checkpoints" / name / "last.pt"
        checkpoint.parent.mkdir(parents=True)
        torch.save({"model": trained.state_dict()}, checkpoint)
        result = _invoke(checkpoint, "--out", tmp_path / name, "--repeats", 1)
        assert result.exit_code == 0, result.output
        exported = read_export(tmp_path / name / name / "safetensors").model
        assert torch.equal(exported(*inputs), serving.eval()(*inputs))


def test_run_directory_with_teacher_metric_and_recovery(tmp_path):
    torch.manual_seed(0)
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(
        '[run]\nname = "tiny"\ntrack = "classification"\nseed = 0\n'
        '[data]\nsource = "builtin"\nname = "digits"\nsplit = [0.6, 0.2, 0.2]\n'
        '[teacher.model]\nname = "MLP"\nkwargs = { hidden = [64] }\n'
        '[student.model]\nname = "MLP"\nkwargs = { hidden = [32] }\n'
        '[[variants]]\nname = "labels"\n[variants.objective.labels]\n'
    )
    models.save(MLP(64, (64,), 10), run / "teacher")
    models.save(MLP(64, (32,), 10), run / "students" / "labels")
    out = tmp_path / "shipped"
    result = _invoke(
        run, "--low-rank", "8", "--recover-steps", 20, "--recover-from", "teacher", "--out", out
    )
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads((out / "compression.json").read_text())["rows"]}
    assert list(rows) == ["teacher", "labels", "labels/low-rank"]
    assert all(0.0 <= row["metric"] <= 1.0 for row in rows.values())
    assert json.loads((out / "compression.json").read_text())["metric"] == "accuracy"
    assert rows["labels/low-rank"]["params"] < rows["labels"]["params"] < rows["teacher"]["params"]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["exports"]["labels/low-rank"]["ranks"] == {"body.0.0": 8}
    assert manifest["recovery"] == {
        "steps": 20,
        "from": "teacher",
        "loss": "logit_matching",
        "temperature": 4.0,
        "lr": 1e-3,
    }
    result = _invoke(run, "--variant", "kd", "--out", tmp_path / "none")
    assert (
        result.exit_code == 1
        and "no saved student 'kd' (students in this run: labels)" in _text(result)
    )


def test_recovery_from_a_missing_teacher_is_refused(tmp_path):
    x = torch.randn(8, 8)
    source = ExportSource(
        tmp_path, {"s": MLP(8, (16,), 1)}, example_inputs={"s": x}, transfer_inputs={"s": x}
    )
    with pytest.raises(ValueError, match="`--recover-from teacher` needs a saved teacher"):
        export_source(
            source, tmp_path / "o", formats=["low-rank"], recover_steps=1, recover_from="teacher"
        )
    assert not (tmp_path / "o").exists()
