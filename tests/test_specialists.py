"""Specialists (Hinton et al. 2015 §5) against loops and numerical minimisation."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from distill import specialists as S


def test_clusters_recover_confused_classes():
    gen = torch.Generator().manual_seed(0)
    rows = []
    for group in ([0, 1], [2, 3, 4], [5]):  # rows spread mass inside one group
        for _ in range(60):
            p = torch.zeros(6)
            p[group] = torch.rand(len(group), generator=gen) + 0.1
            rows.append(p / p.sum())
    clusters = S.confusable_clusters(torch.stack(rows), 3, seed=1)
    assert clusters == [[0, 1], [2, 3, 4], [5]]
    with pytest.raises(ValueError, match="`n_clusters` must be <= the number of classes 6"):
        S.confusable_clusters(torch.stack(rows), 7)


def test_specialist_labels_loop():
    labels = torch.tensor([0, 5, 3, 9, -100, 3])
    classes = [3, 9]
    expected = [
        2 if y not in classes and y != -100 else (y if y == -100 else classes.index(y))
        for y in labels.tolist()
    ]
    assert S.specialist_labels(labels, classes, 10).tolist() == expected
    with pytest.raises(ValueError, match="`classes` must be distinct"):
        S.specialist_labels(labels, [3, 3], 10)


def test_specialist_from_copies_rows_and_folds_the_rest():
    torch.manual_seed(0)
    generalist = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 6))
    x = torch.randn(4, 5)
    classes = [4, 1]
    model = S.specialist_from(generalist, classes)
    with torch.no_grad():
        full, special = generalist(x), model(x)
        head = generalist[2]
        others = [0, 2, 3, 5]
        dustbin = x.new_tensor(0)
        hidden = generalist[1](generalist[0](x))
        dustbin = hidden @ head.weight[others].mean(0) + head.bias[others].mean() + np.log(4)
    assert special.shape == (4, 3) and full.shape == (4, 6)  # generalist untouched
    torch.testing.assert_close(special[:, :2], full[:, classes])
    torch.testing.assert_close(special[:, 2], dustbin)
    with pytest.raises(ValueError, match="has no nn.Linear"):
        S.specialist_from(torch.nn.ReLU(), [0])


def test_enriched_rows_half_special_and_correction():
    labels = torch.tensor([0] * 10 + [1] * 30 + [2] * 50)
    rows, shift = S.enriched_rows(labels, [1], generator=torch.Generator().manual_seed(0))
    picked = labels[rows]
    assert (picked == 1).sum() == 30 and (picked != 1).sum() == 30
    assert len(set(rows.tolist())) == 60
    assert shift == pytest.approx(np.log(60 / 30))
    model = S.specialist_from(torch.nn.Linear(3, 4), [0, 1])
    before = model.bias.detach().clone()
    S.shift_dustbin(model, shift)
    torch.testing.assert_close(model.bias.detach() - before, torch.tensor([0.0, 0.0, shift]))


def numpy_objective(z, p_general, specialist_probs, class_sets, active):
    log_q = z - np.log(np.exp(z - z.max()).sum()) - z.max()
    q = np.exp(log_q)
    value = -(p_general * log_q).sum()
    for probs, classes, on in zip(specialist_probs, class_sets, active, strict=True):
        if on:
            others = [k for k in range(len(z)) if k not in classes]
            folded = np.append(q[classes], q[others].sum())
            value -= (probs * np.log(folded)).sum()
    return value


def test_combine_matches_numerical_minimisation():
    gen = torch.Generator().manual_seed(3)
    general = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    sets = [[0, 1], [2, 3, 4]]
    special = [torch.randn(4, len(c) + 1, generator=gen, dtype=torch.float64) * 2 for c in sets]
    z = S.combine_specialists(general, special, sets, top_n=6, steps=200)
    for row in range(4):
        p_general = torch.softmax(general[row], 0).numpy()
        probs = [torch.softmax(s[row], 0).numpy() for s in special]
        best = minimize(
            numpy_objective,
            general[row].numpy(),
            args=(p_general, probs, sets, [True, True]),
            method="BFGS",
            options={"gtol": 1e-10},
        )
        q_best = np.exp(best.x - best.x.max())
        np.testing.assert_allclose(
            torch.softmax(z[row], 0).numpy(), q_best / q_best.sum(), atol=2e-4
        )


def test_combine_without_active_specialists_and_consistent_specialists():
    general = torch.tensor([[3.0, 0.0, -1.0, 0.5], [0.0, 2.0, 0.1, -3.0]], dtype=torch.float64)
    sets = [[2, 3]]  # never in the top 1 of either row: inactive
    special = [torch.randn(2, 3, dtype=torch.float64)]
    z = S.combine_specialists(general, special, sets, top_n=1, steps=50)
    torch.testing.assert_close(torch.softmax(z, 1), torch.softmax(general, 1))
    log_p = torch.log_softmax(general, 1)  # a specialist that agrees with the generalist
    folded = torch.cat([log_p[:, [0, 1]], torch.logsumexp(log_p[:, [2, 3]], 1, keepdim=True)], 1)
    z = S.combine_specialists(general, [folded], [[0, 1]], top_n=1, steps=50)
    torch.testing.assert_close(torch.softmax(z, 1), torch.softmax(general, 1), atol=1e-6, rtol=0)
    assert S.active_specialists(general, [[1], [0, 2]], top_n=1).tolist() == [
        [False, True],
        [True, False],
    ]
    with pytest.raises(ValueError, match=r"`specialist_logits\[0\]` must have shape \(2, 3\)"):
        S.combine_specialists(general, [torch.zeros(2, 4, dtype=torch.float64)], [[0, 1]])
