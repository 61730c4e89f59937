"""The mutable state of one training run and its (de)serialisation for checkpoints."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from distill.train.distributed import DistributedContext, wrap_ddp
from distill.train.options import TrainOptions
from distill.train.schedule import warmup_cosine
from distill.train.sparse import SplitOptimizer

_COUNTERS = (
    "step",
    "epoch",
    "position",
    "best_metric",
    "best_step",
    "best_metrics",
    "bad_evals",
    "last_metrics",
    "last_train",
    "stop_reason",
)


@dataclass
class TrainState:
    """Model, optimiser, schedule and counters; ``position`` = batches done in ``epoch``."""

    net: nn.Module
    ddp_net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: int = 0
    epoch: int = 0
    position: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_weights: dict[str, torch.Tensor] | None = None
    bad_evals: int = 0
    last_metrics: dict[str, float] = field(default_factory=dict)
    last_train: dict[str, float] = field(default_factory=dict)
    stop_reason: str = "completed"
    previous_wall_time_s: float = 0.0
    started_at: float = field(default_factory=time.perf_counter)

    @classmethod
    def create(
        cls, net: nn.Module, options: TrainOptions, total_steps: int, context: DistributedContext
    ) -> TrainState:
        """AdamW over ``net``'s parameters (lazy Adam for its embedding tables with
        ``options.sparse_embeddings``) with the warm-up + cosine schedule."""
        if options.sparse_embeddings:
            optimizer = SplitOptimizer(
                net, lr=options.lr, betas=options.betas, weight_decay=options.weight_decay
            )
        else:
            optimizer = torch.optim.AdamW(  # foreach: the same updates, fewer kernel calls
                net.parameters(),
                lr=options.lr,
                betas=options.betas,
                weight_decay=options.weight_decay,
                foreach=True,
            )
        scheduler = warmup_cosine(
            optimizer,
            warmup_steps=options.warmup_steps,
            total_steps=total_steps,
            min_lr_ratio=options.min_lr_ratio,
        )
        return cls(net, wrap_ddp(net, context), optimizer, scheduler)

    def wall_time_s(self) -> float:
        """Training seconds so far, including runs before a resume."""
        return self.previous_wall_time_s + time.perf_counter() - self.started_at

    def record_validation(self, metrics: dict[str, float], options: TrainOptions) -> bool:
        """Track the best metric and the stopping rules; True when ``metrics`` improved."""
        value = metrics[options.metric]
        self.last_metrics = dict(metrics)
        gain = value - self.best_metric if self.best_metric is not None else None
        if gain is not None and not options.higher_is_better:
            gain = -gain
        improved = gain is None or gain > options.min_delta
        if improved:
            self.best_metric, self.best_step, self.bad_evals = value, self.step, 0
            self.best_metrics = dict(metrics)
            self.best_weights = _cpu_copy(self.net.state_dict())
        else:
            self.bad_evals += 1
        if options.patience is not None and self.bad_evals >= options.patience:
            self.stop_reason = "early_stopping"
        threshold = options.stop_pair_agreement
        if threshold is not None and metrics["pair_agreement"] >= threshold:
            self.stop_reason = "pair_agreement"
        return improved

    def checkpoint(self, rng_states: list[dict], options: TrainOptions) -> dict[str, Any]:
        """Everything needed to resume, as plain data (``torch.load(weights_only=True)``)."""
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **{name: getattr(self, name) for name in _COUNTERS},
            "wall_time_s": self.wall_time_s(),
            "rng": rng_states,
            "config": options.config,
            "options": options.to_dict(),
        }

    def load_checkpoint(self, payload: dict[str, Any]) -> None:
        """Restore what :meth:`checkpoint` returned (RNG states are restored by the caller)."""
        self.net.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        for name in _COUNTERS:
            setattr(self, name, payload[name])
        self.previous_wall_time_s = payload["wall_time_s"]
        self.started_at = time.perf_counter()

    def best_checkpoint(self) -> dict[str, Any]:
        """The content of ``best.pt``: best weights, step and metrics."""
        return {"model": self.best_weights, "step": self.best_step, "metrics": self.best_metrics}


def _cpu_copy(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state_dict.items()}
