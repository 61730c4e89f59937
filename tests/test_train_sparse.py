"""Sparse embedding gradients: lazy Adam = torch's SparseAdam, state grows with rows touched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distill.data import Dataset
from distill.models import WideAndDeep
from distill.train import LabelsTerm, Objective, TrainOptions, fit
from distill.train.sparse import LazyAdam, SplitOptimizer, clip_grad_norm, touched_rows


def steps(optimizer_factory, batches, *, rows=50, dim=4):
    torch.manual_seed(0)
    table = nn.Embedding(rows, dim, sparse=True)
    head = torch.randn(dim)
    optimizer = optimizer_factory(table.parameters())
    for ids in batches:
        optimizer.zero_grad()
        (table(ids) @ head).square().sum().backward()
        optimizer.step()
    return table.weight.detach(), optimizer


def test_lazy_adam_matches_torch_sparse_adam():
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, 50, (12,), generator=generator) for _ in range(20)]
    ours, _ = steps(lambda p: LazyAdam(p, lr=0.05, betas=(0.8, 0.99)), batches)
    reference, _ = steps(lambda p: torch.optim.SparseAdam(p, lr=0.05, betas=(0.8, 0.99)), batches)
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-7)


def test_lazy_adam_equals_dense_adam_when_every_row_is_touched():
    # SparseAdam adds eps to sqrt(v) before bias correction, Adam after: equal when eps -> 0
    batches = [torch.arange(50)] * 10
    ours, _ = steps(lambda p: LazyAdam(p, lr=0.05, eps=1e-30), batches)

    torch.manual_seed(0)
    table = nn.Embedding(50, 4)
    head = torch.randn(4)
    adam = torch.optim.Adam(table.parameters(), lr=0.05, eps=1e-30)
    for ids in batches:
        adam.zero_grad()
        (table(ids) @ head).square().sum().backward()
        adam.step()
    torch.testing.assert_close(ours, table.weight.detach(), rtol=1e-5, atol=1e-6)


def test_state_grows_with_rows_touched_not_table_size():
    batches = [torch.tensor([3, 7, 7]), torch.tensor([7, 11]), torch.tensor([3])]
    weight, optimizer = steps(lambda p: LazyAdam(p, lr=0.1), batches, rows=100_000)
    assert touched_rows(optimizer) == 3
    state = next(iter(optimizer.state.values()))
    assert state["exp_avg"].shape[0] <= 6  # capacity at most doubles
    assert state["exp_avg"].shape[1:] == state["exp_avg_sq"].shape[1:] == (4,)
    assert state["slot"].dtype == torch.int32  # 4 bytes a table row; dense Adam: 32
    untouched = torch.ones(100_000, dtype=torch.bool)
    untouched[[3, 7, 11]] = False
    torch.manual_seed(0)
    initial = nn.Embedding(100_000, 4).weight.detach()
    assert torch.equal(weight[untouched], initial[untouched])


def test_dense_gradient_is_refused():
    layer = nn.Linear(2, 1)
    layer(torch.ones(1, 2)).sum().backward()
    with pytest.raises(ValueError, match="LazyAdam takes sparse gradients"):
        LazyAdam(layer.parameters()).step()
    with pytest.raises(ValueError, match="`sparse_embeddings` needs a model with nn.Embedding"):
        SplitOptimizer(layer, lr=0.1)


def test_clip_grad_norm_with_sparse_gradients_matches_the_dense_norm():
    torch.manual_seed(0)
    sparse, dense = nn.Embedding(20, 3, sparse=True), nn.Embedding(20, 3)
    dense.load_state_dict(sparse.state_dict())
    ids = torch.tensor([1, 4, 4, 9])
    for table in (sparse, dense):
        (table(ids) * 5).sum().backward()
    expected = torch.nn.utils.clip_grad_norm_(dense.parameters(), 0.5)
    found = clip_grad_norm(sparse.parameters(), 0.5)
    torch.testing.assert_close(found, expected)
    torch.testing.assert_close(sparse.weight.grad.to_dense(), dense.weight.grad)


def test_fit_with_sparse_embeddings_learns_and_checkpoints(tmp_path):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 200, (2000, 3), generator=generator)
    labels = ((ids[:, 0] % 2) == 0).float()  # learnable from field 0
    data = Dataset(ids, labels, num_embeddings=200)
    torch.manual_seed(0)
    model = WideAndDeep(200, 3, embed_dim=4, hidden=(8,))
    options = TrainOptions(
        epochs=5, batch_size=100, lr=0.05, device="cpu", sparse_embeddings=True, metric="auc"
    )
    result = fit(
        model,
        data,
        objective=Objective([LabelsTerm("bce")]),
        options=options,
        valid=data,
        run_dir=tmp_path,
        resume=True,
    )
    assert result.best_metric > 0.9
    assert model.bottom.embedding.sparse and model.tower.wide.sparse
    payload = torch.load(tmp_path / "checkpoints" / "student" / "last.pt", weights_only=True)
    assert set(payload["optimizer"]) == {"sparse", "dense"}
