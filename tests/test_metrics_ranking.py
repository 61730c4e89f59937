import math

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score
from torchmetrics.retrieval import RetrievalMRR, RetrievalNormalizedDCG

from distill.metrics import (
    mrr,
    mrr_per_group,
    ndcg,
    ndcg_per_group,
    pair_accuracy,
    pair_accuracy_per_group,
)
from distill.metrics._groups import _sort_parts


def _ragged(n_groups=40, max_size=12, levels=5, seed=0, tie_decimals=None):
    """Shuffled rows of ragged groups with sparse, unordered ids."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_size + 1, n_groups)
    ids = rng.choice(10_000, n_groups, replace=False) - 5_000
    groups = np.repeat(ids, sizes)
    labels = rng.integers(0, levels, len(groups))
    scores = rng.normal(size=len(groups)) + 0.5 * labels
    if tie_decimals is not None:
        scores = np.round(scores, tie_decimals)
    order = rng.permutation(len(groups))
    return (
        torch.tensor(scores[order], dtype=torch.float32),
        torch.tensor(labels[order]),
        torch.tensor(groups[order]),
    )


def _by_group(scores, labels, groups):
    rows = {}
    for s, y, g in zip(scores.tolist(), labels.tolist(), groups.tolist(), strict=True):
        rows.setdefault(g, []).append((s, y))
    return dict(sorted(rows.items()))


def _worst_case_order(rows):
    return [y for _, y in sorted(rows, key=lambda row: (-row[0], row[1]))]


def _naive_ndcg(rows, k, gain):
    g = (lambda y: 2.0**y - 1) if gain == "exp2" else float
    dcg = sum(g(y) / math.log2(r + 2) for r, y in enumerate(_worst_case_order(rows)[:k]))
    ideal = sorted((y for _, y in rows), reverse=True)[:k]
    idcg = sum(g(y) / math.log2(r + 2) for r, y in enumerate(ideal))
    return dcg / idcg if idcg > 0 else None


@pytest.mark.parametrize("gain", ["exp2", "linear"])
@pytest.mark.parametrize("k", [1, 3, 10, None])
def test_ndcg_matches_sklearn_per_group(gain, k):
    scores, labels, groups = _ragged(seed=1)
    result = ndcg_per_group(scores, labels, groups, k=k, gain=gain)
    values = dict(zip(result.groups.tolist(), result.per_group.tolist(), strict=True))
    checked = 0
    for group, rows in _by_group(scores, labels, groups).items():
        y_true = np.array([[y for _, y in rows]], dtype=float)
        if len(rows) < 2 or y_true.sum() == 0:
            continue
        y_true = 2**y_true - 1 if gain == "exp2" else y_true
        y_score = np.array([[s for s, _ in rows]])
        expected = ndcg_score(y_true, y_score, k=k, ignore_ties=True)
        assert values[group] == pytest.approx(expected, abs=1e-9)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("tie_decimals", [None, 0])
def test_ndcg_against_naive_loop_with_worst_case_ties(tie_decimals):
    scores, labels, groups = _ragged(seed=2, levels=3, tie_decimals=tie_decimals)
    result = ndcg_per_group(scores, labels, groups, k=5)
    expected = {
        g: _naive_ndcg(rows, 5, "exp2") for g, rows in _by_group(scores, labels, groups).items()
    }
    defined = [v for v in expected.values() if v is not None]
    assert result.groups.tolist() == list(expected)
    for value, want in zip(result.per_group.tolist(), expected.values(), strict=True):
        assert math.isnan(value) if want is None else value == pytest.approx(want, abs=1e-12)
    assert result.n_excluded == len(expected) - len(defined) > 0
    assert result.value == pytest.approx(sum(defined) / len(defined))
    assert ndcg(scores, labels, groups, k=5) == result.value


def test_ndcg_ties_are_pessimistic():
    scores, groups = torch.zeros(3), torch.zeros(3, dtype=torch.int64)
    worst = (1 / math.log2(4)) / 1.0  # the relevant item ranked last of three
    assert ndcg(scores, torch.tensor([1, 0, 0]), groups) == pytest.approx(worst)
    assert mrr(scores, torch.tensor([0, 1, 0]), groups) == pytest.approx(1 / 3)
    assert pair_accuracy(scores, torch.tensor([0, 1, 0]), groups) == 0.0


def test_ndcg_matches_torchmetrics_linear_gain():
    scores, labels, groups = _ragged(seed=4)
    metric = RetrievalNormalizedDCG(top_k=10, empty_target_action="skip")
    expected = metric(scores, labels, indexes=groups - int(groups.min()))
    assert ndcg(scores, labels, groups, k=10, gain="linear") == pytest.approx(
        float(expected), abs=1e-6
    )


def test_mrr_matches_torchmetrics_and_counts_excluded():
    scores, labels, groups = _ragged(seed=5, levels=2)
    scores = torch.sigmoid(scores)  # torchmetrics 1.9 drops hits whose score is <= 0
    metric = RetrievalMRR(empty_target_action="skip")
    expected = metric(scores, labels.bool(), indexes=groups - int(groups.min()))
    result = mrr_per_group(scores, labels, groups)
    assert result.value == pytest.approx(float(expected), abs=1e-6)
    empty = sum(all(y == 0 for _, y in rows) for rows in _by_group(scores, labels, groups).values())
    assert result.n_excluded == empty > 0
    assert result.n_groups + result.n_excluded == len(result.groups)


def _naive_pairs(rows):
    ordered = [(a, b) for a in rows for b in rows if a[1] > b[1]]
    return sum(a[0] > b[0] for a, b in ordered), len(ordered)


@pytest.mark.parametrize("tie_decimals", [None, 0])
def test_pair_accuracy_against_naive_pair_loop(tie_decimals):
    scores, labels, groups = _ragged(seed=6, tie_decimals=tie_decimals)
    counts = [_naive_pairs(rows) for rows in _by_group(scores, labels, groups).values()]
    shares = [correct / total for correct, total in counts if total]
    result = pair_accuracy_per_group(scores, labels, groups)
    assert result.value == pytest.approx(sum(shares) / len(shares), abs=1e-12)
    assert result.n_excluded == sum(total == 0 for _, total in counts)
    micro = sum(c for c, _ in counts) / sum(t for _, t in counts)
    assert pair_accuracy(scores, labels, groups, average="pair") == pytest.approx(micro, abs=1e-12)


def test_float_labels_and_float64_scores_use_general_paths():
    scores, labels, groups = _ragged(seed=7, n_groups=10)
    scores = scores.double() + 1e-12 * torch.arange(len(scores))  # not exact in float32
    labels = labels * 0.37 + 0.01  # non-integral grades: levels from torch.unique
    expected = {
        g: _naive_ndcg(rows, 4, "linear") for g, rows in _by_group(scores, labels, groups).items()
    }
    got = ndcg_per_group(scores, labels, groups, k=4, gain="linear").per_group.tolist()
    assert got == pytest.approx(list(expected.values()), abs=1e-12)
    counts = [_naive_pairs(rows) for rows in _by_group(scores, labels, groups).values()]
    shares = [c / t for c, t in counts if t]
    assert pair_accuracy(scores, labels, groups) == pytest.approx(sum(shares) / len(shares))


def test_continuous_labels_use_sorted_ideal_dcg():
    scores, _, groups = _ragged(seed=8, n_groups=60)
    labels = torch.rand(len(scores), dtype=torch.float64)  # every label distinct
    expected = [_naive_ndcg(r, 10, "exp2") for r in _by_group(scores, labels, groups).values()]
    got = ndcg_per_group(scores, labels, groups).per_group.tolist()
    assert got == pytest.approx(expected, abs=1e-12)


def test_single_sort_and_stable_sorts_agree():
    generator = torch.Generator().manual_seed(9)
    parts = [torch.randint(0, 50, (400,), generator=generator) for _ in range(3)]
    packed = _sort_parts(*((p.clone(), 6) for p in parts))
    lexsorted = _sort_parts(*((p.clone(), 30) for p in parts))  # 90 bits: stable sort per part
    assert packed.key is not None and lexsorted.key is None
    columns = [packed.part(i).tolist() for i in range(3)]
    assert columns == [lexsorted.part(i).tolist() for i in range(3)]
    assert list(zip(*columns, strict=True)) == sorted(
        zip(*(p.tolist() for p in parts), strict=True)
    )
    rows = torch.tensor([5, 0, 399])
    assert packed.part(1, rows).tolist() == [columns[1][5], columns[1][0], columns[1][399]]


def test_all_groups_excluded_gives_nan():
    result = ndcg_per_group(torch.rand(4), torch.zeros(4), torch.tensor([1, 1, 2, 2]))
    assert math.isnan(result.value) and result.n_groups == 0 and result.n_excluded == 2


def test_huge_sparse_group_ids_and_negative_zero():
    groups = torch.tensor([2**60, -(2**60), 2**60, -(2**60)])
    scores = torch.tensor([0.0, 1.0, -0.0, 2.0])
    result = ndcg_per_group(scores, torch.tensor([0, 1, 1, 0]), groups, k=None)
    assert result.groups.tolist() == [-(2**60), 2**60]
    assert result.per_group[1] == pytest.approx(1 / math.log2(3))  # 0.0 == -0.0: a tie


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s, y, g: ndcg(s, y - 1, g), ValueError, r"`labels` must be >= 0 for ndcg"),
        (lambda s, y, g: ndcg(s, y, g, k=0), ValueError, r"`k` must be >= 1, got 0"),
        (lambda s, y, g: ndcg(s, y, g, gain="log"), ValueError, r"`gain` must be one of"),
        (lambda s, y, g: ndcg(s, y[:2], g), ValueError, r"`labels` shape \(2,\) does not match"),
        (lambda s, y, g: mrr(s, y, g.float()), TypeError, r"`groups` must be an integer tensor"),
        (lambda s, y, g: mrr(s.long(), y, g), TypeError, r"`scores` must be a floating-point"),
        (lambda s, y, g: mrr(s[:0], y[:0], g[:0]), ValueError, r"non-empty 1-D tensor"),
        (
            lambda s, y, g: pair_accuracy(s, y, g, average="query"),
            ValueError,
            r"`average` must be one of 'group', 'pair'",
        ),
        (
            lambda s, y, g: pair_accuracy(
                torch.arange(300.0), torch.arange(300.0), g.new_zeros(300)
            ),
            ValueError,
            r"at most 256 distinct values for pair accuracy, got 300",
        ),
        (
            lambda s, y, g: ndcg(s / 0, y, g),
            ValueError,
            r"`scores` must be finite",
        ),
    ],
)
def test_ranking_metric_errors(call, error, match):
    scores, labels, groups = torch.rand(4), torch.tensor([0, 1, 2, 1]), torch.tensor([1, 1, 2, 2])
    with pytest.raises(error, match=match):
        call(scores, labels, groups)


def test_inputs_are_not_modified_and_inference_tensors_work():
    with torch.inference_mode():
        scores, labels, groups = _ragged(seed=10)
    copies = (scores.clone(), labels.clone(), groups.clone())
    expected = ndcg(*copies)
    assert ndcg(scores, labels, groups) == expected
    assert 0 <= pair_accuracy(scores, labels, groups) <= 1
    for tensor, copy in zip((scores, labels, groups), copies, strict=True):
        assert torch.equal(tensor, copy)
