"""Plain training options for :func:`distill.train.fit` (no pydantic: the config layer converts)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from distill._validation import check_choice, check_number, check_positive_int

Metric = Literal["accuracy", "nll", "auc", "ndcg@10"]
METRICS = ("accuracy", "nll", "auc", "ndcg@10")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainOptions:
    """Everything :func:`distill.train.fit` needs besides the model, data and objective.

    Args:
        epochs: passes over the training data (ignored when ``max_steps`` is set).
        max_steps: total optimiser steps; overrides ``epochs``.
        batch_size: rows per *global* batch (split across DDP ranks). For grouped data the
            batches hold whole groups: ``groups_per_batch`` groups when set, else groups are
            packed up to ``batch_size`` items.
        groups_per_batch: whole groups per global batch (ranking).
        lr, weight_decay, betas: AdamW.
        warmup_steps: linear LR warm-up from 0, then cosine decay to ``min_lr_ratio · lr``.
        min_lr_ratio: final LR as a fraction of ``lr``.
        grad_clip: max global gradient norm; ``None`` disables clipping.
        bf16: run forward passes under bf16 autocast (losses in float32).
        seed: data order uses ``seed``; weights/dropout use ``seed + rank``.
        deterministic: turn on ``torch.use_deterministic_algorithms`` during ``fit``.
        eval_every: validate every N steps (and at the end); ``None``: only at the end.
        metric: the track metric used for early stopping and the best checkpoint.
        patience: stop after this many evaluations without improvement; ``None``: never.
        min_delta: smallest improvement that resets ``patience``.
        stop_pair_agreement: stop once this share of the validation pairs agree with the
            teacher (US 2023/0252281 claim 1's stopping rule); needs grouped data and a teacher.
        pair_agreement_threshold: a pair agrees when ``|Δ_teacher − Δ_student|`` (logits) is
            at most this (``distill.ranking.pair_agreement``).
        checkpoint_every: write ``last.pt`` every N steps (and at the end); ``None``: only at
            evaluations and the end. Needs ``run_dir``.
        log_every: write a train line to ``metrics.jsonl`` every N steps.
        restore_best: load the best validated weights into the model at the end.
        progress: ``True``: a rich bar with ETA; ``False``: nothing; ``None``: the bar on a
            terminal, else a plain log line with step, ETA and loss every few seconds.
        tensorboard: also log to ``run_dir/tensorboard/<variant>`` (needs ``tensorboard``).
        device: ``"auto"`` picks CUDA when available (the local rank's GPU under DDP).
        eval_batch_size: rows per evaluation/teacher-scoring batch.
        sparse_embeddings: sparse gradients for the model's embedding tables, updated by lazy
            Adam (moments for touched rows only); AdamW for the other parameters
            (``distill.train.sparse.SplitOptimizer``, docs/streaming.md).
        student_features: columns the student sees (``Dataset.select_features`` spec, e.g.
            ``"0-9"``); the teacher always sees all features. ``None``: all.
        config: the resolved run config, stored in every checkpoint.

    Raises:
        TypeError / ValueError: a field of the wrong type or out of range, named in the message
            (e.g. ``"`lr` must be in (0, inf), got 0"``).

    Example:
        >>> options = TrainOptions(epochs=3, batch_size=64, eval_every=50, metric="auc")
        >>> options.total_steps(batches_per_epoch=10)
        30
    """

    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 256
    groups_per_batch: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    bf16: bool = False
    seed: int = 0
    deterministic: bool = True
    eval_every: int | None = None
    metric: Metric = "accuracy"
    patience: int | None = None
    min_delta: float = 0.0
    stop_pair_agreement: float | None = None
    pair_agreement_threshold: float = 0.1
    checkpoint_every: int | None = None
    log_every: int = 10
    restore_best: bool = True
    progress: bool | None = None
    tensorboard: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch_size: int = 4096
    sparse_embeddings: bool = False
    student_features: str | list[str | int] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("log_every", self.log_every)
        check_positive_int("eval_batch_size", self.eval_batch_size)
        check_positive_int("warmup_steps", self.warmup_steps, minimum=0)
        check_positive_int("seed", self.seed, minimum=0)
        for name in ("max_steps", "groups_per_batch", "eval_every", "checkpoint_every"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        if self.patience is not None:
            check_positive_int("patience", self.patience)
        finite = {"high": math.inf, "high_open": True}
        check_number("lr", self.lr, low=0.0, low_open=True, **finite)
        check_number("weight_decay", self.weight_decay, low=0.0, **finite)
        check_number("min_lr_ratio", self.min_lr_ratio, low=0.0, high=1.0)
        check_number("min_delta", self.min_delta, low=0.0)
        check_number("pair_agreement_threshold", self.pair_agreement_threshold, low=0.0)
        if self.grad_clip is not None:
            check_number("grad_clip", self.grad_clip, low=0.0, low_open=True, **finite)
        if self.stop_pair_agreement is not None:
            check_number("stop_pair_agreement", self.stop_pair_agreement, low=0.0, high=1.0)
        check_choice("metric", self.metric, METRICS)
        check_choice("device", self.device, DEVICES)

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger ``metric`` is an improvement (all but ``"nll"``)."""
        return self.metric != "nll"

    def total_steps(self, batches_per_epoch: int) -> int:
        """Optimiser steps of the whole run."""
        if self.max_steps is not None:
            return self.max_steps
        return self.epochs * max(batches_per_epoch, 1)

    def worst_metric(self) -> float:
        """The starting value of the best-metric tracker."""
        return -math.inf if self.higher_is_better else math.inf

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy (stored with checkpoints)."""
        return asdict(self)
