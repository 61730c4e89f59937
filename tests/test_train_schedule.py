import math

import pytest
import torch

from distill.train import TrainOptions, warmup_cosine, warmup_cosine_factor


def reference_lr(step, base, warmup, total, floor):
    """Independent closed form: linear ramp to ``base``, then half a cosine to ``floor·base``."""
    if step < warmup:
        return base * (step + 1) / (warmup + 1)
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    low = base * floor
    return low + (base - low) * (math.cos(math.pi * t) + 1) / 2


@pytest.mark.parametrize(("warmup", "total", "floor"), [(0, 10, 0.0), (3, 20, 0.1), (5, 5, 0.0)])
def test_scheduler_follows_warmup_then_cosine(warmup, total, floor):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=0.5)
    scheduler = warmup_cosine(optimizer, warmup_steps=warmup, total_steps=total, min_lr_ratio=floor)
    for step in range(total + 3):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            reference_lr(step, 0.5, warmup, total, floor)
        )
        optimizer.step()
        scheduler.step()


def test_factor_endpoints():
    assert warmup_cosine_factor(0, warmup_steps=0, total_steps=10) == 1.0
    assert warmup_cosine_factor(10, warmup_steps=0, total_steps=10) == pytest.approx(0.0)
    assert warmup_cosine_factor(
        50, warmup_steps=0, total_steps=10, min_lr_ratio=0.2
    ) == pytest.approx(0.2)
    ramp = [warmup_cosine_factor(s, warmup_steps=4, total_steps=10) for s in range(5)]
    assert ramp == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])


def test_factor_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"`min_lr_ratio` must be in \[0, 1\], got 2"):
        warmup_cosine_factor(0, warmup_steps=0, total_steps=5, min_lr_ratio=2.0)
    with pytest.raises(ValueError, match="`step` must be >= 0, got -1"):
        warmup_cosine_factor(-1, warmup_steps=0, total_steps=5)


def test_options_total_steps_and_direction():
    assert TrainOptions(epochs=3).total_steps(7) == 21
    assert TrainOptions(epochs=3, max_steps=5).total_steps(7) == 5
    assert TrainOptions(metric="auc").higher_is_better
    assert not TrainOptions(metric="nll").higher_is_better


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": 0.0}, ValueError, r"`lr` must be in \(0, inf\), got 0"),
        ({"metric": "f1"}, ValueError, "`metric` must be one of 'accuracy', 'nll', 'auc'"),
        ({"batch_size": 0}, ValueError, "`batch_size` must be >= 1, got 0"),
        ({"epochs": 1.5}, TypeError, "`epochs` must be an integer, got float"),
        ({"grad_clip": -1.0}, ValueError, r"`grad_clip` must be in \(0, inf\), got -1"),
        ({"stop_pair_agreement": 1.5}, ValueError, r"`stop_pair_agreement` must be in \[0, 1\]"),
        ({"device": "tpu"}, ValueError, "`device` must be one of 'auto', 'cpu', 'cuda'"),
    ],
)
def test_options_validate(kwargs, error, message):
    with pytest.raises(error, match=message):
        TrainOptions(**kwargs)
