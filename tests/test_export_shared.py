"""Shared factorisation of an embedding and an output layer, against NumPy's SVD."""

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from distill import models
from distill.export import CompressedModel, recover, share_embeddings
from distill.export.formats import wrap_compressed
from distill.models import MLP, NextTokenLM


@pytest.fixture
def lm():
    torch.manual_seed(0)
    model = NextTokenLM(40, 3, 40, embedding_dim=6, hidden=(12,))
    with torch.no_grad():  # an output layer on another scale than the embedding, as trained
        model.head.weight.mul_(0.2)
    return model.eval()


def _tokens(n=32, vocab=40, context=3):
    return torch.randint(0, vocab, (n, context), generator=torch.Generator().manual_seed(1))


def _matrices(model):
    return (
        model.embedding.weight.detach().double().numpy(),
        model.head.weight.detach().double().numpy(),
    )


def _reconstructed(shared):
    basis = shared.embedding.basis.detach().double()
    table = basis @ shared.embedding.projection.detach().double()
    weight = basis @ shared.head.projection.detach().double()
    return table.numpy(), weight.numpy()


def _scales(table, weight, weighting):
    if weighting == "none":
        return 1.0, 1.0
    return 1 / np.linalg.norm(table), 1 / np.linalg.norm(weight)


@pytest.mark.parametrize("weighting", ["balanced", "none"])
def test_full_rank_reproduces_the_model(lm, weighting):
    shared, layers = share_embeddings(lm, rank=12, weighting=weighting)  # min(V, 2d) = 12
    assert layers == {"embedding": "embedding", "output": "head", "rank": 12}
    x = _tokens()
    torch.testing.assert_close(shared(x), lm(x), atol=1e-5, rtol=1e-5)
    assert type(lm.embedding) is nn.Embedding  # the input model is left unchanged


@pytest.mark.parametrize("weighting", ["balanced", "none"])
@pytest.mark.parametrize("rank", [1, 3, 7])
def test_rank_r_error_is_the_eckart_young_optimum(lm, weighting, rank):
    table, weight = _matrices(lm)
    alpha, beta = _scales(table, weight, weighting)
    singular = np.linalg.svd(np.hstack([alpha * table, beta * weight]), compute_uv=False)
    optimum = float(np.sum(singular[rank:] ** 2))
    shared, _ = share_embeddings(lm, rank=rank, weighting=weighting)
    got_table, got_weight = _reconstructed(shared)
    error = alpha**2 * np.sum((table - got_table) ** 2) + beta**2 * np.sum(
        (weight - got_weight) ** 2
    )
    assert error == pytest.approx(optimum, rel=1e-4, abs=1e-9)
    basis = shared.embedding.basis.detach().double().numpy()
    np.testing.assert_allclose(basis.T @ basis, np.eye(rank), atol=1e-5)  # orthonormal U
    # no other rank-r shared basis does better (each with its best projections, Q Qᵀ M)
    scaled = np.hstack([alpha * table, beta * weight])
    generator = np.random.default_rng(0)
    for _ in range(20):
        other, _ = np.linalg.qr(generator.standard_normal((40, rank)))
        assert error <= np.sum((scaled - other @ (other.T @ scaled)) ** 2) + 1e-9


def test_energy_rank_keeps_the_asked_share(lm):
    table, weight = _matrices(lm)
    alpha, beta = _scales(table, weight, "balanced")
    mass = np.linalg.svd(np.hstack([alpha * table, beta * weight]), compute_uv=False) ** 2
    _, layers = share_embeddings(lm, rank=0.8)
    kept = np.cumsum(mass) / mass.sum()
    assert kept[layers["rank"] - 1] >= 0.8 > kept[layers["rank"] - 2]


def test_basis_is_stored_once_and_reloads(lm, tmp_path):
    shared, layers = share_embeddings(lm, rank=4)
    saved = wrap_compressed(lm, shared, shared=layers)
    models.save(saved, tmp_path / "m")
    tensors = safetensors.torch.load_file(tmp_path / "m" / "model.safetensors")
    assert [k for k, v in tensors.items() if v.shape == (40, 4)] == ["model.embedding.basis"]
    loaded = models.load(tmp_path / "m")
    assert isinstance(loaded, CompressedModel) and loaded.spec()["kwargs"]["shared"] == layers
    x = _tokens()
    torch.testing.assert_close(loaded(x), shared(x))
    count = sum(p.numel() for p in shared.parameters())
    assert count == models.count_parameters(lm) - 2 * 40 * 6 + 40 * 4 + 2 * 4 * 6


def test_recovery_trains_the_one_shared_basis(lm):
    shared, _ = share_embeddings(lm, rank=3)
    before = shared.embedding.basis.detach().clone()
    x = _tokens(256)
    losses = recover(shared, lm, x, steps=30, lr=1e-2, batch_size=64)
    assert losses[-1] < losses[0]
    basis = shared.embedding.basis
    assert not torch.equal(basis.detach(), before) and shared.head.shared.basis is basis


class _Pair(nn.Module):
    def __init__(self, vocab=10, width=4, out=10, extra=False):
        super().__init__()
        self.table = nn.Embedding(vocab, width)
        self.out = nn.Linear(width, out)
        self.other = nn.Linear(width, out) if extra else None

    def forward(self, ids):
        return self.out(self.table(ids).mean(1))


def test_bad_input_is_refused_with_the_argument_named(lm):
    with pytest.raises(ValueError, match=r"no embedding/output pair in MLP"):
        share_embeddings(MLP(4, (8,), 3), rank=2)
    with pytest.raises(ValueError, match=r"V mismatch: `embedding` 'table' has V = 10 rows, "):
        share_embeddings(_Pair(out=12), rank=2, embedding="table", output="out")
    with pytest.raises(ValueError, match=r"d mismatch: `embedding` 'table' has width 4"):
        share_embeddings(_Width(), rank=2, embedding="table", output="out")
    with pytest.raises(ValueError, match=r"`output` 'body' is not an nn.Linear layer"):
        share_embeddings(lm, rank=2, output="body")
    with pytest.raises(ValueError, match=r"several embedding/output pairs \(table \+ out; table"):
        share_embeddings(_Pair(extra=True), rank=2)
    with pytest.raises(ValueError, match=r"`rank` must be in \[1, 12\] .*, got 13"):
        share_embeddings(lm, rank=13)
    with pytest.raises(ValueError, match=r"`rank` must be in \[1, 12\] .*, got 0"):
        share_embeddings(lm, rank=0)
    with pytest.raises(ValueError, match=r"energy fraction in \(0, 1\], got 1.5"):
        share_embeddings(lm, rank=1.5)
    with pytest.raises(ValueError, match=r"`weighting` must be one of"):
        share_embeddings(lm, rank=2, weighting="equal")


class _Width(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(10, 4)
        self.out = nn.Linear(5, 10)
