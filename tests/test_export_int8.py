"""Int8 Linear layers: error bound derived independently, pickle-free round trip, errors."""

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from distill.export import Int8Embedding, Int8Linear, quantize_int8


def _float_reference(layer: nn.Linear, x: torch.Tensor) -> np.ndarray:
    weight = layer.weight.detach().double().numpy()
    return x.double().numpy() @ weight.T + layer.bias.detach().double().numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_linear_error_within_derived_bound(seed):
    # Per output j: |x̂ŵ − xw| ≤ (s_w/2)·Σ|x| + (s_x/2)·Σ|ŵ|, with s_w = max|W_j|/127 and the
    # 7-bit activation step s_x = (max(x, 0) − min(x, 0))/127 over the batch.
    torch.manual_seed(seed)
    layer = nn.Linear(48, 24)
    x = torch.randn(33, 48) * 3 + 1
    quantized = Int8Linear.from_linear(layer)
    x_np = x.double().numpy()
    weight_step = np.abs(layer.weight.detach().double().numpy()).max(axis=1) / 127
    act_step = (max(x_np.max(), 0) - min(x_np.min(), 0)) / 127
    scale = quantized.weight_scale.double().numpy()[:, None]
    w_hat = quantized.weight_int8.double().numpy() * scale
    bound = np.abs(x_np).sum(1, keepdims=True) * weight_step / 2
    bound = bound + act_step / 2 * np.abs(w_hat).sum(1)
    error = np.abs(quantized(x).double().numpy() - _float_reference(layer, x))
    assert (error <= bound).all(), float((error / bound).max())
    assert error.max() > 0  # it really is quantised


def test_int8_weights_are_per_channel_symmetric():
    torch.manual_seed(0)
    layer = nn.Linear(10, 4)
    quantized = Int8Linear.from_linear(layer)
    assert quantized.weight_int8.dtype == torch.int8
    assert quantized.weight_int8.abs().amax(1).tolist() == [127] * 4
    reconstructed = quantized.dequantized_weight()
    step = layer.weight.detach().abs().amax(1, keepdim=True) / 127
    assert ((reconstructed - layer.weight.detach()).abs() <= step / 2 + 1e-7).all()


def test_int8_layer_state_round_trips_through_safetensors():
    torch.manual_seed(0)
    source = Int8Linear.from_linear(nn.Linear(16, 8))
    blob = safetensors.torch.save(dict(source.state_dict()))
    target = Int8Linear(16, 8)
    target.load_state_dict(safetensors.torch.load(blob))
    x = torch.randn(5, 16)
    assert torch.equal(target(x), source(x))  # the post-load hook repacked the kernel weights


def test_int8_layer_without_bias_and_leading_axes():
    torch.manual_seed(0)
    layer = nn.Linear(6, 3, bias=False)
    quantized = Int8Linear.from_linear(layer)
    x = torch.randn(2, 4, 6)
    assert quantized(x).shape == (2, 4, 3)
    assert "bias" not in quantized.state_dict()
    assert torch.allclose(quantized(x), layer(x), atol=0.05)


def test_quantize_int8_replaces_every_linear_and_keeps_the_source():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    quantized = quantize_int8(model)
    assert [type(m).__name__ for m in quantized] == ["Int8Linear", "ReLU", "Int8Linear"]
    assert type(model[0]) is nn.Linear
    x = torch.randn(64, 8)
    relative = (quantized(x) - model(x)).abs().max() / model(x).abs().max()
    assert relative < 0.05


def test_quantize_int8_errors():
    with pytest.raises(ValueError, match="`model` must contain an nn.Linear or nn.Embedding layer"):
        quantize_int8(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="`x` must be a floating-point tensor"):
        Int8Linear(4, 2)(torch.ones(1, 4, dtype=torch.long))


def test_int8_embedding_rows_within_half_a_step_and_padding_stays_zero():
    torch.manual_seed(0)
    table = nn.Embedding(30, 6, padding_idx=0)
    quantized = Int8Embedding.from_embedding(table)
    ids = torch.randint(0, 30, (7, 5))
    step = table.weight.detach().abs().amax(1) / 127  # per-row scale, computed here
    error = (quantized(ids) - table(ids)).abs()
    assert (error <= step[ids].unsqueeze(-1) / 2 + 1e-7).all() and error.max() > 0
    assert torch.equal(quantized(torch.zeros(2, 3, dtype=torch.long)), torch.zeros(2, 3, 6))
    assert quantized.weight_int8.dtype == torch.int8


def test_quantize_int8_converts_wide_embeddings_only():
    model = nn.Sequential(nn.Embedding(20, 8), nn.Embedding(20, 1))
    quantized = quantize_int8(model)
    assert [type(m).__name__ for m in quantized] == ["Int8Embedding", "Embedding"]
