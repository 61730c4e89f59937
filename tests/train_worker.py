"""Subprocess worker for the training-engine tests (resume after SIGKILL, DDP under torchrun).

Usage:
    python tests/train_worker.py resume RUN_DIR [--slow]
    python -m torch.distributed.run --standalone --nproc-per-node 2 \
        tests/train_worker.py ddp RUN_DIR
Writes the final weights to ``RUN_DIR/final.pt``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from distill.data import Dataset
from distill.models import MLP
from distill.train import (
    LabelsTerm,
    Objective,
    TrainOptions,
    all_reduce_mean,
    fit,
    setup_distributed,
)


def classification_setup():
    """Tiny 3-class problem with dropout (so RNG state matters), 8 batches per epoch."""
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(256, 6, generator=generator)
    labels = (features[:, 0] > 0).long() + (features[:, 1] > 0.5).long()
    torch.manual_seed(2)
    model = MLP(6, (16,), 3, dropout=0.2)
    options = TrainOptions(
        max_steps=60,
        batch_size=32,
        lr=1e-2,
        warmup_steps=5,
        eval_every=10,
        checkpoint_every=7,
        log_every=1,
        metric="accuracy",
        device="cpu",
    )
    data = Dataset(features, labels)
    return model, data, data.subset(torch.arange(64)), Objective([LabelsTerm("ce")]), options


def grouped_setup():
    """Binary labels in 32 groups of 8 rows; 4 whole groups per global batch."""
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(256, 5, generator=generator)
    labels = (features[:, 0] + 0.3 * torch.randn(256, generator=generator) > 0).float()
    groups = torch.arange(32).repeat_interleave(8)
    torch.manual_seed(4)
    model = MLP(5, (8,), 1)
    options = TrainOptions(
        max_steps=12,
        batch_size=32,
        groups_per_batch=4,
        lr=1e-2,
        eval_every=4,
        log_every=1,
        metric="auc",
        device="cpu",
    )
    data = Dataset(features, labels, groups=groups)
    return model, data, data, Objective([LabelsTerm("bce")]), options


def _slow_down(module, inputs):
    time.sleep(0.02)


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    mode, run_dir = argv[0], Path(argv[1])
    if mode == "resume":
        model, train, valid, objective, options = classification_setup()
        if "--slow" in argv:
            model.register_forward_pre_hook(_slow_down)
        result = fit(
            model, train, objective=objective, options=options, valid=valid, run_dir=run_dir
        )
    else:
        model, train, valid, objective, options = grouped_setup()
        result = fit(
            model, train, objective=objective, options=options, valid=valid, run_dir=run_dir
        )
        context = setup_distributed("cpu")
        mean_rank = all_reduce_mean({"rank": float(context.rank)}, context)["rank"]
        if context.is_main:
            torch.save(
                {"mean_rank": mean_rank, "world_size": context.world_size}, run_dir / "ranks.pt"
            )
    if setup_distributed("cpu").is_main:
        torch.save(result.model.state_dict(), run_dir / "final.pt")


if __name__ == "__main__":
    main(sys.argv[1:])
