import json

import pytest
import safetensors.torch
import torch
from torch import nn

from distill.models import (
    MLP,
    DeepTower,
    WideAndDeep,
    build,
    ctr_joint_model,
    load,
    save,
)


def _dense_models():
    return [
        MLP(5, hidden=(7, 3), out_features=4, norm="batch", activation="gelu"),
        DeepTower(5, hidden=(8, 8)),
    ]


@pytest.mark.parametrize("model", _dense_models(), ids=["mlp", "deep_tower"])
def test_save_load_round_trip_dense(tmp_path, model):
    model.train()
    model(torch.randn(16, 5))  # moves batch-norm running statistics away from defaults
    model.eval()
    save(model, tmp_path / "m")
    loaded = load(tmp_path / "m")
    x = torch.randn(3, 5)
    assert type(loaded) is type(model) and not loaded.training
    torch.testing.assert_close(loaded(x), model(x))
    assert loaded.spec() == model.spec()


def test_save_load_joint_student_and_whole_joint(tmp_path):
    joint = ctr_joint_model(40, 3, embed_dim=4, student_hidden=(8,), teacher_hidden=(16,))
    ids = torch.randint(0, 40, (5, 3))
    save(joint.student(), tmp_path / "student")
    save(joint, tmp_path / "joint")
    student = load(tmp_path / "student")
    torch.testing.assert_close(student(ids), joint.student()(ids))
    stored = safetensors.torch.load_file(tmp_path / "student" / "model.safetensors")
    assert not any("teacher" in key for key in stored)
    for got, want in zip(load(tmp_path / "joint")(ids), joint(ids), strict=True):
        torch.testing.assert_close(got, want)


def test_joint_student_weights_load_into_wide_and_deep():
    joint = ctr_joint_model(40, 3, embed_dim=4, student_hidden=(8,))
    model = WideAndDeep(40, 3, embed_dim=4, hidden=(8,))
    model.load_state_dict(joint.student().state_dict())
    ids = torch.randint(0, 40, (4, 3))
    torch.testing.assert_close(model(ids), joint.student()(ids))


def test_model_json_layout_is_plain_json(tmp_path):
    save(MLP(3, hidden=(2,)), tmp_path)
    document = json.loads((tmp_path / "model.json").read_text())
    assert document["spec"]["name"] == "MLP" and document["spec"]["kwargs"]["hidden"] == [2]
    assert document["weights"] == "model.safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]


def test_load_keeps_stored_half_precision(tmp_path):
    model = MLP(3, hidden=(4,)).half()
    save(model, tmp_path)
    loaded = load(tmp_path)
    assert loaded.head.weight.dtype == torch.float16
    torch.testing.assert_close(loaded.head.weight, model.head.weight)


def test_build_import_path_and_save_with_explicit_spec(tmp_path):
    spec = {"name": "torch.nn:Linear", "kwargs": {"in_features": 3, "out_features": 2}}
    linear = build(spec, trust=True)
    assert isinstance(linear, nn.Linear) and linear.weight.shape == (2, 3)
    save(linear, tmp_path, spec=spec)
    torch.testing.assert_close(load(tmp_path, trust=True).weight, linear.weight)
    with pytest.raises(TypeError, match=r"`model` \(Linear\) has no spec\(\)"):
        save(linear, tmp_path)


def test_build_nested_spec():
    joint = ctr_joint_model(30, 2, teacher_hidden=(4,))
    rebuilt = build(json.loads(json.dumps(joint.spec())))
    assert rebuilt.spec() == joint.spec()
    assert rebuilt.state_dict().keys() == joint.state_dict().keys()


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ({"name": "Transformer", "kwargs": {}}, ValueError, r"unknown model 'Transformer': use"),
        ({"name": "nope.mod:X", "kwargs": {}}, ValueError, r"cannot import model 'nope.mod:X'"),
        ({"name": "torch:tensor", "kwargs": {}}, TypeError, r"must be an nn.Module subclass"),
        ({"name": "MLP", "kwargs": {"width": 3}}, ValueError, r"cannot build 'MLP' from kwargs"),
        ({"kwargs": {}}, TypeError, r"`spec` must be a dict with keys 'name' and 'kwargs'"),
        ({"name": "MLP", "kwargs": [3]}, TypeError, r"a dict 'kwargs', got str and list"),
    ],
)
def test_build_errors(spec, error, match):
    with pytest.raises(error, match=match):
        build(spec, trust=True)


def test_load_missing_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model directory .*nowhere does not exist"):
        load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"model.json not found"):
        load(tmp_path)
    save(MLP(2), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model.safetensors not found"):
        load(tmp_path)


def test_load_invalid_json_names_file_and_line(tmp_path):
    save(MLP(2), tmp_path)
    (tmp_path / "model.json").write_text('{\n  "format": "distill-model/1",\n  "spec": ,\n}')
    with pytest.raises(ValueError, match=r"model.json:3: invalid JSON"):
        load(tmp_path)
    (tmp_path / "model.json").write_text('{"spec": {"name": "MLP", "kwargs": {}}}')
    with pytest.raises(ValueError, match=r"not a distill model file"):
        load(tmp_path)


def test_load_corrupt_weights(tmp_path):
    save(MLP(2), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"model.safetensors: unreadable safetensors file"):
        load(tmp_path)


def _rewrite_weights(path, change):
    tensors = safetensors.torch.load_file(path / "model.safetensors")
    change(tensors)
    safetensors.torch.save_file(tensors, path / "model.safetensors")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda t: t.pop("head.bias"), r"spec 'MLP': missing key 'head.bias'"),
        (lambda t: t.update(extra=torch.zeros(2)), r"spec 'MLP': unexpected key 'extra'"),
        (
            lambda t: t.update({"head.weight": torch.zeros(1, 5)}),
            r"key 'head.weight' has shape \(1, 5\), the spec needs \(1, 4\)",
        ),
    ],
)
def test_load_spec_weights_mismatch_names_key(tmp_path, change, match):
    save(MLP(3, hidden=(4,)), tmp_path)
    _rewrite_weights(tmp_path, change)
    with pytest.raises(ValueError, match=match):
        load(tmp_path)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    save(MLP(2), tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("distill.models.registry.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        save(MLP(2, hidden=(3,)), tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]


def test_save_rejects_non_json_spec(tmp_path):
    with pytest.raises(TypeError, match="`spec` must be JSON-serialisable"):
        save(MLP(2), tmp_path, spec={"name": "MLP", "kwargs": {"x": object()}})


EVIL_MODULE = """
import pathlib
pathlib.Path(__file__).with_name("imported.txt").write_text("code ran")
import torch
class Thing(torch.nn.Linear):
    pass
"""


def test_import_path_in_model_json_needs_trust(tmp_path, monkeypatch):
    (tmp_path / "evilmod_reliability.py").write_text(EVIL_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = save(MLP(3, hidden=(4,)), tmp_path / "teacher")
    document = json.loads((folder / "model.json").read_text())
    document["spec"] = {"name": "evilmod_reliability:Thing", "kwargs": {}}
    (folder / "model.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"model.json: model 'evilmod_reliability:Thing' is an "):
        load(folder)
    with pytest.raises(ValueError, match="is an import path, .*trust=True"):
        build(document["spec"])
    assert not (tmp_path / "imported.txt").exists()  # nothing was imported
    assert isinstance(build({"name": "MLP", "kwargs": {"in_features": 2}}), MLP)  # builtins
    with pytest.raises(ValueError, match="cannot build"):  # trusted: imported, then
        load(folder, trust=True)  # built (this class needs kwargs the spec lacks)
    assert (tmp_path / "imported.txt").read_text() == "code ran"
