"""Tang et al. (2020) teacher transforms against their formulas and autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distill import teacher_transforms as TT
from distill.config import Objective
from distill.experiment.setup import fit_objective
from distill.temperature import smooth_labels, top_k_probs
from distill.train.batches import Batch


def probs_and_target(seed, n=7, k=5):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=gen, dtype=torch.float64) * 2
    target = torch.randint(0, k, (n,), generator=gen)
    return torch.softmax(logits, 1), target


def test_reweighting_targets_formula():
    p, y = probs_and_target(0)
    q = TT.reweighting_targets(p, y).numpy()
    for row in range(len(y)):
        true = float(p[row, y[row]])
        for k in range(p.shape[1]):
            expected = true if k == y[row] else (1 - true) / (p.shape[1] - 1)
            assert q[row, k] == pytest.approx(expected)


def test_similarity_targets_formula():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 3, 3, 1])
    unit = w.numpy() / np.linalg.norm(w.numpy(), axis=1, keepdims=True)
    cos = unit @ unit.T
    plain = TT.similarity_targets(w, y, temperature=0.5).numpy()
    fixed = TT.similarity_targets(w, y, temperature=0.5, true_prob=0.8).numpy()
    for row, label in enumerate(y.tolist()):
        e = np.exp(cos[label] / 0.5)
        np.testing.assert_allclose(plain[row], e / e.sum())
        others = np.delete(np.arange(5), label)
        np.testing.assert_allclose(fixed[row, others], 0.2 * e[others] / e[others].sum())
        assert fixed[row, label] == pytest.approx(0.8)
    np.testing.assert_allclose(fixed[1], fixed[2])  # same class, same target: no re-weighting


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_rescaling_is_ratio_of_autograd_gradients(seed):
    p, y = probs_and_target(seed)
    z = torch.randn(p.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    z.requires_grad_(True)
    kd = -(p * torch.log_softmax(z, 1)).sum()  # soft cross-entropy at T = 1
    (kd_grad,) = torch.autograd.grad(kd, z)
    (label_grad,) = torch.autograd.grad(F.cross_entropy(z, y, reduction="sum"), z)
    rows = torch.arange(len(y))
    ratio = kd_grad[rows, y] / label_grad[rows, y]
    w = TT.gradient_rescaling(p, torch.softmax(z.detach(), 1), y)
    torch.testing.assert_close(w, ratio)
    q_true = torch.softmax(z.detach(), 1)[rows, y]
    order = torch.argsort(p[rows, y])  # for a fixed student, w grows with the teacher's p_y
    same = TT.gradient_rescaling(p, torch.full_like(p, 1 / p.shape[1]), y)
    assert bool((same[order].diff() >= 0).all()) and bool((q_true < 1).all())


def test_get_transforms_and_call():
    p, y = probs_and_target(3)
    w = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(TT.get("reweight")(p, y), TT.reweighting_targets(p, y))
    torch.testing.assert_close(TT.get({"name": "top_k", "k": 2})(p, y), top_k_probs(p, 2))
    smooth = TT.get({"name": "label_smoothing", "epsilon": 0.3})(p, y)
    torch.testing.assert_close(smooth, smooth_labels(y, 5, 0.3, dtype=torch.float64))
    sim = TT.get({"name": "similarity", "true_prob": 0.7})(p, y, w)
    torch.testing.assert_close(sim, TT.similarity_targets(w, y, true_prob=0.7))
    assert TT.get({"name": "similarity"}).params == {"temperature": 1.0, "true_prob": None}


def test_errors():
    p, y = probs_and_target(4)
    with pytest.raises(ValueError, match="`teacher_transform` must be one of"):
        TT.get("smoothing")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['eps'\]"):
        TT.get({"name": "label_smoothing", "eps": 0.1})
    with pytest.raises(ValueError, match="needs key 'k'"):
        TT.get("top_k")
    with pytest.raises(ValueError, match="`true_prob` must be in"):
        TT.get({"name": "similarity", "true_prob": 1.0})
    with pytest.raises(ValueError, match="needs the teacher's `class_vectors`"):
        TT.get("similarity")(p, y)
    with pytest.raises(ValueError, match=r"`target` values must be in \[0, 5\)"):
        TT.reweighting_targets(p, torch.full_like(y, -100))
    with pytest.raises(ValueError, match="has no nn.Linear"):
        TT.logit_layer_vectors(torch.nn.ReLU())


def test_kd_config_term_with_transform():
    p, y = probs_and_target(5)
    teacher_logits = torch.log(p) * 2.0  # softmax at T = 2 gives p back
    student = torch.randn(p.shape, dtype=torch.float64)
    spec = {"temperature": 2.0, "alpha": 1.0, "teacher_transform": "reweight"}
    (term,) = fit_objective(Objective(kd=spec), "classification").terms
    batch = Batch(features=torch.zeros(len(y), 1), labels=y, ids=torch.arange(len(y)))
    q = TT.reweighting_targets(p, y)
    expected = 4.0 * (q * (q.log() - torch.log_softmax(student / 2.0, 1))).sum(1).mean()
    torch.testing.assert_close(term(student, batch, teacher_logits), expected)
    with pytest.raises(ValueError, match="teacher_transform"):
        Objective(kd={"teacher_transform": {"name": "top_k", "k": 0}})
