import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score
from torchmetrics.functional.classification import (
    binary_calibration_error,
    multiclass_calibration_error,
)

from distill.metrics import accuracy, auc, ece, nll


def test_accuracy_multiclass_and_binary_against_loops():
    logits = torch.randn(50, 4)
    labels = torch.randint(0, 4, (50,))
    expected = sum(
        max(range(4), key=lambda c, row=row: logits[row, c]) == labels[row] for row in range(50)
    )
    assert accuracy(logits, labels) == pytest.approx(expected / 50)
    scores = torch.randn(40)
    clicks = torch.randint(0, 2, (40,)).float()
    expected = sum((float(s) > 0) == bool(y) for s, y in zip(scores, clicks, strict=True)) / 40
    assert accuracy(scores, clicks) == pytest.approx(expected)


def test_nll_against_sklearn_log_loss():
    logits = torch.randn(60, 5, dtype=torch.float64) * 3
    labels = torch.randint(0, 5, (60,))
    probs = torch.softmax(logits, dim=1).numpy()
    assert nll(logits, labels) == pytest.approx(log_loss(labels.numpy(), probs, labels=range(5)))
    scores = torch.randn(60, dtype=torch.float64) * 3
    clicks = torch.randint(0, 2, (60,))
    assert nll(scores, clicks) == pytest.approx(
        log_loss(clicks.numpy(), torch.sigmoid(scores).numpy())
    )


def test_nll_is_stable_for_extreme_logits():
    value = nll(torch.tensor([1e4, -1e4, 1e4]), torch.tensor([1, 0, 0]))
    assert value == pytest.approx(1e4 / 3)
    value = nll(torch.tensor([[1e4, -1e4], [0.0, 0.0]], dtype=torch.float16), torch.tensor([1, 0]))
    assert math.isfinite(value)


def _naive_ece(confidence, correct, n_bins):
    total = 0.0
    for b in range(n_bins):
        members = [
            i
            for i, c in enumerate(confidence)
            if b / n_bins <= c < (b + 1) / n_bins or (b == n_bins - 1 and c == 1.0)
        ]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            conf = sum(confidence[i] for i in members) / len(members)
            total += len(members) / len(confidence) * abs(acc - conf)
    return total


def test_ece_multiclass_against_torchmetrics_and_loop():
    logits = torch.randn(200, 3, dtype=torch.float64) * 2
    labels = torch.randint(0, 3, (200,))
    probs = torch.softmax(logits, 1)
    reference = multiclass_calibration_error(probs, labels, num_classes=3, n_bins=10)
    assert ece(logits, labels, n_bins=10) == pytest.approx(float(reference), abs=1e-6)
    assert ece(probs, labels, n_bins=10) == pytest.approx(float(reference), abs=1e-6)
    confidence, predicted = probs.max(1)
    correct = (predicted == labels).tolist()
    assert ece(probs, labels, n_bins=7) == pytest.approx(
        _naive_ece(confidence.tolist(), correct, 7)
    )


def test_ece_binary_calibration_of_click_rate():
    probs = torch.rand(300, dtype=torch.float64) * 0.999
    clicks = (torch.rand(300, dtype=torch.float64) < probs).long()
    reference = binary_calibration_error(probs, clicks, n_bins=15)
    assert ece(probs, clicks) == pytest.approx(float(reference), abs=1e-6)
    logits = torch.logit(probs)
    assert ece(logits, clicks, kind="logits") == pytest.approx(ece(probs, clicks))
    assert ece(torch.ones(4), torch.tensor([1, 0, 1, 1])) == pytest.approx(0.25)


def test_ece_errors():
    with pytest.raises(ValueError, match="`n_bins` must be >= 1, got 0"):
        ece(torch.rand(3), torch.tensor([0, 1, 1]), n_bins=0)
    with pytest.raises(ValueError, match="`kind` must be one of 'probs', 'logits', got 'p'"):
        ece(torch.rand(3), torch.tensor([0, 1, 1]), kind="p")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] when kind='probs'"):
        ece(torch.tensor([0.5, 2.0]), torch.tensor([0, 1]), kind="probs")


@pytest.mark.parametrize("tied", [False, True])
def test_auc_against_sklearn(tied):
    generator = np.random.default_rng(3)
    labels = generator.integers(0, 2, 500)
    scores = generator.normal(size=500) + labels
    if tied:
        scores = np.round(scores)  # many ties: sklearn gives them half credit
    expected = roc_auc_score(labels, scores)
    assert auc(torch.tensor(scores), torch.tensor(labels)) == pytest.approx(expected, abs=1e-12)
    assert auc(torch.tensor(scores, dtype=torch.float32), torch.tensor(labels).bool()) == (
        pytest.approx(roc_auc_score(labels, scores.astype(np.float32)), abs=1e-9)
    )


def test_auc_all_tied_is_half_and_perfect_is_one():
    assert auc(torch.zeros(6), torch.tensor([0, 1, 0, 1, 1, 0])) == pytest.approx(0.5)
    assert auc(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1])) == 1.0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: auc(torch.rand(3), torch.ones(3)), ValueError, "both classes 0 and 1"),
        (lambda: auc(torch.rand(3), torch.tensor([0, 1, 2])), ValueError, r"must be 0 or 1"),
        (lambda: auc(torch.rand(3, 2), torch.tensor([0, 1, 1])), ValueError, r"shape \(N,\)"),
        (
            lambda: accuracy(torch.rand(3, 2), torch.tensor([0, 1, 2])),
            ValueError,
            r"`labels` must be class indices in \[0, 2\), got values in \[0, 2\]",
        ),
        (
            lambda: accuracy(torch.rand(3, 2), torch.tensor([0, 1])),
            ValueError,
            r"`labels` must have shape \(3,\), got \(2,\)",
        ),
        (
            lambda: nll(torch.tensor([1, 2]), torch.tensor([0, 1])),
            TypeError,
            "`logits` must be a floating-point tensor",
        ),
        (
            lambda: nll(torch.tensor([0.0, float("nan")]), torch.tensor([0, 1])),
            ValueError,
            r"`logits` must be finite, got 1 NaN/inf value\(s\), first at index \(1,\)",
        ),
        (
            lambda: accuracy(torch.rand(2), torch.tensor([0.5, 1.0])),
            ValueError,
            r"`labels` must be 0 or 1, got values in \[0.5, 1\]",
        ),
    ],
)
def test_classification_metric_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_metrics_take_tensors_that_require_grad_without_warnings(recwarn):
    logits = torch.randn(20, 3, requires_grad=True)
    labels = torch.randint(0, 3, (20,))
    values = [metric(logits, labels) for metric in (accuracy, nll, ece)]
    values.append(auc(logits[:, 0], labels.clamp(max=1)))
    assert all(isinstance(value, float) for value in values)
    assert not recwarn.list
