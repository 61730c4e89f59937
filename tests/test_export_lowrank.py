"""Low-rank factorisation (SVD oracle from NumPy, Eckart–Young error) and recovery."""

import numpy as np
import pytest
import torch
from torch import nn

from distill.export import energy_rank, factorize_linear, low_rank, recover


def _low_rank_mlp(seed: int = 0, width: int = 48) -> nn.Sequential:
    """An MLP whose hidden weights have a fast-decaying spectrum (as trained weights do)."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(32, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
    model.append(nn.Linear(width, 1))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            out_dim, in_dim = layer.weight.shape
            u = torch.linalg.qr(torch.randn(out_dim, out_dim, generator=generator))[0]
            v = torch.linalg.qr(torch.randn(in_dim, in_dim, generator=generator))[0]
            decay = 0.6 ** torch.arange(min(out_dim, in_dim), dtype=torch.float32)
            layer.weight.copy_(u[:, : decay.numel()] * decay @ v[:, : decay.numel()].T)
    return model


def test_energy_rank_matches_a_naive_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        values = np.sort(rng.exponential(size=12))[::-1]
        energy = float(rng.uniform(0.05, 1.0))
        total, kept, expected = (values**2).sum(), 0.0, 0
        while kept < energy * total - 1e-12:
            kept += values[expected] ** 2
            expected += 1
        assert energy_rank(torch.tensor(values.copy()), energy) == max(expected, 1)


def test_factorize_linear_is_the_truncated_svd():
    torch.manual_seed(0)
    layer = nn.Linear(20, 12)
    weight = layer.weight.detach().double().numpy()
    singular = np.linalg.svd(weight, compute_uv=False)
    for rank in (1, 5, 12):
        first, second = factorize_linear(layer, rank)
        product = (second.weight @ first.weight).detach().double().numpy()
        error = np.linalg.norm(weight - product)  # Eckart–Young: the discarded mass
        assert error == pytest.approx(np.sqrt((singular[rank:] ** 2).sum()), abs=1e-5)
        assert first.bias is None and torch.equal(second.bias, layer.bias)


def test_full_rank_factorisation_reproduces_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 24), nn.Tanh(), nn.Linear(24, 16))
    factorised, ranks = low_rank(model, 16, layers=["0", "2"])
    assert ranks == {"0": 16, "2": 16}
    x = torch.randn(50, 16)
    assert torch.allclose(factorised(x), model(x), atol=1e-5)


def test_energy_selection_keeps_the_output_close_and_shrinks_the_model():
    torch.manual_seed(0)
    model = _low_rank_mlp()
    factorised, ranks = low_rank(model, 0.9)
    assert set(ranks) == {"0", "2"} and all(r <= 5 for r in ranks.values())  # 0.6^k decay
    size = sum(p.numel() for p in factorised.parameters())
    assert size < 0.5 * sum(p.numel() for p in model.parameters())
    x = torch.randn(200, 32)
    relative = (factorised(x) - model(x)).norm() / model(x).norm()
    assert relative < 0.25, float(relative)


def test_default_selection_skips_layers_that_would_grow():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    _, ranks = low_rank(model, 8)
    assert ranks == {"0": 8}  # the (1, 64) head cannot get smaller


def test_low_rank_errors_are_clear():
    model = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))
    with pytest.raises(ValueError, match=r"`rank` 40 exceeds the largest rank 16 of layer `0`"):
        low_rank(model, 40, layers=["0"])
    with pytest.raises(ValueError, match=r"`layers` entry '1' is not an nn.Linear layer"):
        low_rank(model, 4, layers=["1"])
    with pytest.raises(ValueError, match=r"`rank` 11 is too large: no Linear layer gets smaller"):
        low_rank(model, 11)
    with pytest.raises(ValueError, match=r"largest useful rank here is 10, in `0`"):
        low_rank(model, 11)
    with pytest.raises(ValueError, match=r"`rank` must be in \(0, 1\], got 1.5"):
        low_rank(model, 1.5)
    with pytest.raises(ValueError, match="`rank` must be >= 1, got 0"):
        low_rank(model, 0)
    with pytest.raises(TypeError, match="`rank` must be a number, got bool"):
        low_rank(model, True)


def test_recover_distils_the_factorised_model_back_toward_the_reference():
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
    reference.append(nn.Linear(32, 1))
    inputs = torch.randn(512, 16)
    factorised, _ = low_rank(reference, 2)
    x = torch.randn(256, 16)
    with torch.no_grad():
        before = float(((factorised(x) - reference(x)) ** 2).mean())
    losses = recover(factorised, reference, inputs, steps=150, lr=3e-3, batch_size=64)
    with torch.no_grad():
        after = float(((factorised(x) - reference(x)) ** 2).mean())
    assert len(losses) == 150 and not factorised.training
    assert after < 0.5 * before, (before, after)


def test_recover_with_kd_on_class_logits_and_errors():
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 5))
    factorised, _ = low_rank(reference, 2)
    losses = recover(factorised, reference, torch.randn(128, 12), steps=60, loss="kd", lr=3e-3)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    with pytest.raises(ValueError, match="`loss` must be one of 'logit_matching', 'kd'"):
        recover(factorised, reference, torch.randn(8, 12), loss="mse")
    with pytest.raises(ValueError, match="`steps` must be >= 1, got 0"):
        recover(factorised, reference, torch.randn(8, 12), steps=0)
    with pytest.raises(ValueError, match=r"`inputs` tensors must share the first axis length"):
        recover(factorised, reference, (torch.randn(8, 12), torch.randn(7, 12)))


def test_recover_from_a_teacher_that_sees_more_columns():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 1))
    student = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    factorised, _ = low_rank(student, 2)
    rows = torch.randn(256, 20)
    with torch.no_grad():
        before = float(((factorised(rows[:, :10]) - teacher(rows)) ** 2).mean())
    recover(factorised, teacher, rows[:, :10], reference_inputs=rows, steps=100, lr=3e-3)
    with torch.no_grad():
        after = float(((factorised(rows[:, :10]) - teacher(rows)) ** 2).mean())
    assert after < before
    with pytest.raises(ValueError, match="`reference_inputs` must have the 256 rows of `inputs`"):
        recover(factorised, teacher, rows[:, :10], reference_inputs=rows[:5], steps=1)
