import pytest
import torch

from distill._reduce import reduce_loss
from distill._validation import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_number,
    check_pair,
    value_range,
)


def test_number_interval_messages():
    with pytest.raises(ValueError, match=r"`tau` must be in \(0, 1\), got 1.2"):
        check_number("tau", 1.2, low=0, high=1, low_open=True, high_open=True)
    with pytest.raises(ValueError, match=r"`alpha` must be in \[0, 1\], got -0.5"):
        check_number("alpha", -0.5, low=0, high=1)
    with pytest.raises(ValueError, match=r"`beta` must be in \(0, inf\), got nan"):
        check_number("beta", float("nan"), low=0, low_open=True)
    with pytest.raises(TypeError, match="`beta` must be a number, got str"):
        check_number("beta", "1")


def test_tensor_checks():
    msg = "`logits` must be a floating-point tensor, got dtype torch.int64"
    with pytest.raises(TypeError, match=msg):
        check_float_tensor("logits", torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"`b` shape \(6, 4\) does not match `a` shape \(6, 5\)"):
        check_pair("b", torch.zeros(6, 4), "a", torch.zeros(6, 5))
    with pytest.raises(TypeError, match="`b` has dtype torch.float64 but `a` has torch.float32"):
        check_pair("b", torch.zeros(2, dtype=torch.float64), "a", torch.zeros(2))
    with pytest.raises(ValueError, match=r"2 NaN/inf value\(s\), first at index \(1,\)"):
        check_finite("x", torch.tensor([0.0, float("nan"), float("inf")]))
    with pytest.raises(ValueError, match="`mode` must be one of 'a', 'b', got 'c'"):
        check_choice("mode", "c", ("a", "b"))


def test_reduce_none_sums_to_sum_and_empty_is_zero():
    x = torch.arange(6.0).reshape(2, 3)
    assert reduce_loss(x, "none").sum() == reduce_loss(x, "sum") == 15.0
    assert reduce_loss(x, "mean") == 2.5
    assert reduce_loss(x, "mean", count=2) == 7.5
    empty = torch.zeros(0, requires_grad=True)
    out = reduce_loss(empty, "mean")
    out.backward()
    assert out.item() == 0.0 and torch.isfinite(empty.grad).all()


def test_value_range_matches_python_min_max():
    values = [7, -3, 12, 0, -3]
    assert value_range(torch.tensor(values)) == (min(values), max(values))
    floats = torch.tensor([[0.5, -1.25], [2.0, 0.0]])
    assert value_range(floats) == (-1.25, 2.0)
