"""ONNX export: dynamic batch, onnxruntime agreement ≤ 1e-4, atomic failure."""

from pathlib import Path

import pytest
import torch

from distill.export import OnnxModel, compression_table, export_model, export_onnx, onnx_export
from distill.models import MLP, WideAndDeep


def test_mlp_onnx_matches_torch_at_any_batch_size(tmp_path):
    torch.manual_seed(0)
    model = MLP(10, (16,), 3).eval()
    result = export_model(model, tmp_path / "onnx", format="onnx", example_input=torch.randn(8, 10))
    assert result.details["max_abs_diff"] <= 1e-4
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == ["export.json", "model.onnx"]
    assert (
        str(Path(__file__).parent.parent).encode()
        not in (tmp_path / "onnx" / "model.onnx").read_bytes()
    )  # no stack traces
    graph = OnnxModel(tmp_path / "onnx" / "model.onnx")
    for batch in (1, 5, 300):
        x = torch.randn(batch, 10)
        with torch.no_grad():
            assert (graph(x) - model(x)).abs().max() <= 1e-4
    rows = compression_table({"torch": model, "onnx": result}, example_input=x, repeats=1)
    assert rows[1].format == "onnx" and rows[1].params >= rows[0].params == 10 * 16 + 16 + 51
    assert rows[1].bytes == (tmp_path / "onnx" / "model.onnx").stat().st_size


def test_wide_and_deep_onnx_with_ids_and_values(tmp_path):
    torch.manual_seed(0)
    model = WideAndDeep(50, 3, embed_dim=4, hidden=(8,)).eval()
    ids, values = torch.randint(0, 50, (6, 3)), torch.rand(6, 3)
    result = export_model(model, tmp_path / "onnx", format="onnx", example_input=(ids, values))
    assert result.details["max_abs_diff"] <= 1e-4 and result.details["exporter"] == "dynamo"
    ids, values = torch.randint(0, 50, (40, 3)), torch.rand(40, 3)
    with torch.no_grad():
        assert (result.model(ids, values) - model(ids, values)).abs().max() <= 1e-4
    with pytest.raises(ValueError, match=r"the ONNX graph takes 2 input\(s\)"):
        result.model(ids)


class _CheckedScorer(torch.nn.Module):
    """A forward with a data-dependent Python check, which torch.export cannot capture."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x):
        if float(x.abs().max()) > 1e6:
            raise ValueError("input out of range")
        return self.linear(x).squeeze(-1)


def test_data_dependent_checks_fall_back_to_the_tracer(tmp_path):
    torch.manual_seed(0)
    model = _CheckedScorer().eval()
    check = export_onnx(model, tmp_path / "m.onnx", torch.randn(6, 4))
    assert check.exporter == "torchscript" and check.max_abs_diff <= 1e-4
    x = torch.randn(3, 4)
    with torch.no_grad():
        assert (OnnxModel(tmp_path / "m.onnx")(x) - model(x)).abs().max() <= 1e-4


def test_a_difference_above_atol_raises_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "_max_difference", lambda *args: 0.5)
    with pytest.raises(ValueError, match=r"differs from the torch model by 0.5 .* `atol` 0.0001"):
        export_onnx(torch.nn.Linear(4, 1), tmp_path / "m.onnx", torch.randn(3, 4))
    assert list(tmp_path.iterdir()) == []


def test_example_input_errors(tmp_path):
    with pytest.raises(TypeError, match="`example_input` must be a tensor or a non-empty tuple"):
        export_onnx(torch.nn.Linear(4, 1), tmp_path / "m.onnx", [])
    with pytest.raises(ValueError, match="`example_input` has 2 tensors but forward takes 1"):
        export_onnx(torch.nn.Linear(4, 1), tmp_path / "m.onnx", (torch.ones(2, 4),) * 2)
    with pytest.raises(ValueError, match="`example_input` must have at least 2 rows"):
        export_onnx(torch.nn.Linear(4, 1), tmp_path / "m.onnx", torch.ones(1, 4))
    assert list(tmp_path.iterdir()) == []
