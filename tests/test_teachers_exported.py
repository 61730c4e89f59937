"""ONNX and TorchScript / torch.export teachers against the torch model they were made from."""

import pytest
import torch
from torch import nn

from distill import models
from distill.teachers import OnnxTeacher, TorchScriptTeacher, detect_kind, load_teacher


def _model(out_features=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, out_features)).eval()


def _export_onnx(model, path):
    torch.onnx.export(
        model,
        (torch.rand(2, 5),),
        str(path),
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
        dynamo=False,
    )


@pytest.mark.parametrize("out_features", [3, 1])
def test_onnx_teacher_equals_torch(tmp_path, out_features):
    model, x = _model(out_features), torch.randn(7, 5)
    _export_onnx(model, tmp_path / "teacher.onnx")
    teacher = load_teacher(tmp_path / "teacher.onnx")
    assert isinstance(teacher, OnnxTeacher)
    got = teacher.predict(x, torch.arange(7))
    with torch.no_grad():
        expected = model(x)
    expected = expected[:, 0] if out_features == 1 else expected  # (N, 1) is a score
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    size = teacher.size()
    assert size.params == models.count_parameters(model)
    assert size.size_bytes == (tmp_path / "teacher.onnx").stat().st_size


def test_onnx_feature_count_and_bad_file(tmp_path):
    _export_onnx(_model(), tmp_path / "teacher.onnx")
    with pytest.raises(ValueError, match=r"teacher.onnx: the ONNX model expects 5 features, "):
        load_teacher(tmp_path / "teacher.onnx").predict(torch.rand(2, 4), torch.arange(2))
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"bad.onnx: not an ONNX model"):
        load_teacher(tmp_path / "bad.onnx")


def test_torchscript_teacher_equals_torch(tmp_path):
    model, x = _model(), torch.randn(6, 5)
    torch.jit.save(torch.jit.script(model), tmp_path / "teacher.pt")
    assert detect_kind(tmp_path / "teacher.pt") == "torchscript"
    teacher = load_teacher(tmp_path / "teacher.pt")
    assert isinstance(teacher, TorchScriptTeacher)
    with torch.no_grad():
        torch.testing.assert_close(teacher.predict(x, torch.arange(6)), model(x))
    assert teacher.size().params == models.count_parameters(model)
    with pytest.raises(ValueError, match=r"teacher.pt: the model fails on features of shape"):
        teacher.predict(torch.rand(2, 4), torch.arange(2))


def test_torch_export_program_teacher_equals_torch(tmp_path):
    model, x = _model(), torch.randn(6, 5)
    program = torch.export.export(
        model, (torch.rand(4, 5),), dynamic_shapes=({0: torch.export.Dim("n")},)
    )
    torch.export.save(program, tmp_path / "teacher.pt2")
    teacher = load_teacher(tmp_path / "teacher.pt2")
    with torch.no_grad():
        torch.testing.assert_close(teacher.predict(x, torch.arange(6)), model(x))
    first = teacher.fingerprint()
    torch.export.save(torch.export.export(_model(seed=1), (torch.rand(4, 5),)), teacher.path)
    assert load_teacher(tmp_path / "teacher.pt2").fingerprint() != first


def test_pickled_module_is_not_torchscript(tmp_path):
    torch.save(_model(), tmp_path / "full.pt")
    assert detect_kind(tmp_path / "full.pt") == "distill"
    with pytest.raises(ValueError, match=r"kind = 'torchscript' expects a TorchScript archive"):
        load_teacher(tmp_path / "full.pt", kind="torchscript")
    (tmp_path / "x.pt2").write_bytes(b"not a program")
    with pytest.raises(ValueError, match=r"x.pt2: not a TorchScript archive or torch.export"):
        load_teacher(tmp_path / "x.pt2")


def test_nan_output_names_the_row(tmp_path):
    class Poisoned(nn.Module):
        def forward(self, x):
            return x[:, 0] / x[:, 1]

    torch.jit.save(torch.jit.script(Poisoned()), tmp_path / "nan.pt")
    x = torch.ones(4, 2)
    x[2] = 0.0
    with pytest.raises(ValueError, match=r"nan.pt: teacher score of row 2 \(id 12\) is nan"):
        load_teacher(tmp_path / "nan.pt").predict(x, torch.arange(10, 14))
