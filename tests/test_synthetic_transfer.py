"""Synthetic transfer rows (MUNGE, mixup, jitter) and their on-the-fly use in fit."""

import numpy as np
import pytest
import torch

from distill.data import Dataset
from distill.data import synthetic_transfer as G
from distill.models import MLP
from distill.train import KDTerm, LabelsTerm, Objective, TrainOptions, fit
from distill.train.batches import Batch
from distill.train.synthetic import SyntheticTransfer


def pool(seed=0, n=30, d=4):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_nearest_neighbours_against_loop():
    x = pool()
    expected = [
        min((j for j in range(len(x)) if j != i), key=lambda j: float(((x[i] - x[j]) ** 2).sum()))
        for i in range(len(x))
    ]
    assert G.nearest_neighbours(x).tolist() == expected


def test_munge_keeps_or_draws_around_the_neighbour():
    x = pool(1)
    neighbours = G.nearest_neighbours(x)
    rows = torch.tensor([3] * 20000)
    torch.manual_seed(0)
    assert torch.equal(G.munge(x, rows[:5], swap_prob=0.0), x[[3] * 5])
    out = G.munge(x, rows, swap_prob=1.0, spread=2.0).numpy()
    own, other = x[3].numpy(), x[neighbours[3]].numpy()
    np.testing.assert_allclose(out.mean(0), other, atol=0.02)
    np.testing.assert_allclose(out.std(0), np.abs(own - other) / 2.0, rtol=0.03)
    half = G.munge(x, rows, swap_prob=0.3).numpy()
    kept = np.isclose(half, own).mean()
    assert kept == pytest.approx(0.7, abs=0.02)
    with pytest.raises(ValueError, match="`swap_prob` must be in"):
        G.munge(x, rows, swap_prob=1.5)


def test_mixup_rows_are_convex_combinations_with_beta_weights():
    torch.manual_seed(2)
    x = pool(2, n=4000, d=3)
    out = G.mixup(x, alpha=0.5)
    # each output row lies on the segment from its own row to one other row
    lam_all = []
    for i in range(0, 4000, 400):
        direction = out[i] - x[i]
        residual = [
            torch.linalg.vector_norm(torch.linalg.cross(direction, x[j] - x[i]))
            for j in range(4000)
        ]
        j = int(torch.stack(residual).argmin())
        if j == i:
            continue
        lam_all.append(1 - float(direction @ (x[j] - x[i]) / ((x[j] - x[i]) @ (x[j] - x[i]))))
    assert all(-1e-9 <= lam <= 1 + 1e-9 for lam in lam_all)
    torch.manual_seed(3)
    ones = torch.zeros(20000, 1, dtype=torch.float64)
    ones[: len(ones) // 2] = 1.0  # row value = λ when the partner is a 0 row
    mixed = G.mixup(torch.cat([ones, 1 - ones], 1), alpha=0.5)
    assert float(mixed.mean()) == pytest.approx(0.5, abs=0.01)


def test_jitter_noise_and_clamp():
    torch.manual_seed(4)
    out = G.jitter(torch.full((20000, 2), 0.5), sigma=0.1)
    assert float(out.std()) == pytest.approx(0.1, rel=0.03)
    clamped = G.jitter(torch.zeros(100, 2, dtype=torch.float64), sigma=1.0, low=0.0, high=0.2)
    assert float(clamped.max()) == 0.2 and float(clamped.min()) == 0.0


def test_synthetic_transfer_batch_and_errors():
    x = pool(5).float()
    batch = Batch(x[:6], torch.arange(6) % 3, torch.arange(6))
    out = SyntheticTransfer(x, method="mixup", copies=3, alpha=0.3)(batch)
    assert out.features.shape == (24, 4)
    assert torch.equal(out.features[:6], batch.features)
    assert out.labels[6:].eq(-100).all() and out.ids[6:].eq(-1).all()
    with pytest.raises(ValueError, match="`method` must be one of"):
        SyntheticTransfer(x, method="smote")
    with pytest.raises(ValueError, match="`sigma` must be in"):
        SyntheticTransfer(x, method="jitter", sigma=-1.0)
    with pytest.raises(ValueError, match="need class labels"):
        SyntheticTransfer(x, method="jitter")(Batch(x[:2], torch.zeros(2), torch.arange(2)))


class SpyTeacher:
    """An online teacher recording the inputs it is asked about."""

    def __init__(self, module):
        self.module, self.seen = module, []

    def predict(self, features, ids):
        self.seen.append(features.clone())
        with torch.no_grad():
            return self.module(features)


def test_fit_teacher_and_student_see_the_same_generated_rows():
    torch.manual_seed(0)
    x, y = torch.rand(40, 4), torch.randint(0, 3, (40,))
    train = Dataset(x, y)
    teacher = SpyTeacher(MLP(4, (8,), out_features=3))
    student = MLP(4, (8,), out_features=3)
    inputs = []
    student.register_forward_hook(lambda module, args, output: inputs.append(args[0].clone()))
    options = TrainOptions(max_steps=3, batch_size=8, device="cpu", progress=False, log_every=100)
    objective = Objective([LabelsTerm("ce", weight=0.5), KDTerm(temperature=2.0)])
    transfer = SyntheticTransfer(x, method="munge", copies=2)
    fit(student, train, objective=objective, options=options, teacher=teacher, transfer=transfer)
    assert len(teacher.seen) == 3
    for seen, used in zip(teacher.seen, inputs[:3], strict=True):
        assert seen.shape == (24, 4)
        assert torch.equal(seen, used)  # consistent function matching


def test_fit_refuses_generated_rows_with_cached_teacher_scores(tmp_path):
    from distill.teachers import CachedScores, ModuleTeacher, score

    torch.manual_seed(0)
    train = Dataset(torch.rand(40, 4), torch.randint(0, 3, (40,)))
    teacher = ModuleTeacher(MLP(4, (8,), out_features=3))
    cache = score(teacher, train, tmp_path / "scores")
    options = TrainOptions(max_steps=2, batch_size=8, device="cpu", progress=False)
    with pytest.raises(ValueError, match="`transfer` adds generated rows that need an online"):
        fit(
            MLP(4, (8,), out_features=3),
            train,
            objective=Objective([KDTerm()]),
            options=options,
            teacher=CachedScores(cache.parent, train, teacher=teacher),
            transfer=SyntheticTransfer(train.features, method="jitter"),
        )
