"""``fit``: the one training loop — data → model → loop → eval → checkpoint."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distill._validation import NonFiniteError
from distill.data import Dataset
from distill.teachers import CachedScores, predict_dataset
from distill.train.batches import Batch, epoch_batches, make_batch
from distill.train.distributed import all_reduce_mean, setup_distributed
from distill.train.evaluation import evaluate
from distill.train.logging import ProgressBar
from distill.train.objective import Objective
from distill.train.options import TrainOptions
from distill.train.run_files import RunFiles
from distill.train.sparse import clip_grad_norm
from distill.train.state import TrainState
from distill.train.streaming import StreamTrainData, is_stream

NON_FINITE_HINT = (
    "look for NaN/inf in the features, labels or teacher scores, or lower `lr` (and keep "
    "`grad_clip` set); no checkpoint of this step was written"
)


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN/inf loss, loss term, gradient norm or loss input; the run stops."""


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model as passed in (training-only wrappers such as quantile heads
            removed); its weights are the best validated ones when ``restore_best`` applied.
        metric: the track metric's name.
        best_metric, best_step: the best validation value and its step (None without ``valid``).
        metrics: validation metrics of the returned weights (empty without ``valid``).
        last_train: the last step's training values (``loss``, ``loss/<term>``, ``lr``, ...).
        steps: optimiser steps taken in total (across resumes).
        stop_reason: ``"completed"``, ``"early_stopping"`` or ``"pair_agreement"``.
        wall_time_s: training wall time in seconds, summed across resumes.
        history_path: ``run_dir/metrics.jsonl`` (None without ``run_dir``).
        checkpoint_dir: ``run_dir/checkpoints/<variant>`` (None without ``run_dir``).
    """

    model: nn.Module
    metric: str
    best_metric: float | None
    best_step: int | None
    metrics: dict[str, float]
    last_train: dict[str, float]
    steps: int
    stop_reason: str
    wall_time_s: float
    history_path: Path | None = None
    checkpoint_dir: Path | None = None


def fit(
    model: nn.Module,
    train: Dataset,
    *,
    objective: Objective,
    options: TrainOptions,
    teacher: Any = None,
    valid: Dataset | None = None,
    run_dir: str | os.PathLike | None = None,
    variant: str = "student",
    resume: bool = False,
    transfer: Callable[[Batch], Batch] | None = None,
) -> FitResult:
    """Train ``model`` on ``train`` with ``objective``: AdamW, warm-up + cosine LR, clipping.

    Each step: teacher logits for the batch (when a term needs them) → forward (bf16 autocast
    if asked) → ``loss = Σ_k w_k · term_k`` → backward → clip → AdamW → LR schedule. Every
    ``eval_every`` steps the track metric is computed on ``valid``; the best weights are kept
    (``best.pt``), and ``patience`` / ``stop_pair_agreement`` can stop early. ``last.pt`` holds
    model, optimiser, scheduler, step, data position, per-rank RNG states and ``options.config``.

    Under ``torchrun`` the same call trains with DistributedDataParallel (gloo on CPU, nccl on
    GPU): every rank builds the same global batches and trains on its share (whole groups),
    logged values are averaged over ranks and only rank 0 writes files.

    Args:
        model: a module mapping features ``(B, D)`` (or ids ``(B, F)`` [+ values]) to scores
            ``(B,)`` / logits ``(B, C)``, or a tuple whose first item is the score.
        train: training data; grouped data keeps groups whole in every batch. A
            ``StreamingTable`` is read chunk by chunk (docs/streaming.md).
        objective: the weighted loss terms (:class:`~distill.train.objective.Objective`).
        options: :class:`~distill.train.options.TrainOptions`.
        teacher: a ``distill.teachers`` source with ``predict(features, ids) -> logits``;
            online (a module's forward per batch; the module must live on the training
            device) or offline (cached scores: no forward). It receives all feature columns
            (not ``student_features``). Required when a term needs teacher logits.
        valid: validation data for the metric, early stopping and the best checkpoint (a
            ``Dataset`` or a ``StreamingTable``).
        run_dir: where ``metrics.jsonl`` and ``checkpoints/<variant>/`` go; None: no files.
        variant: the model's name in logs and checkpoint paths.
        resume: continue from ``checkpoints/<variant>/last.pt`` when it exists (else start
            fresh); the continued run ends with the same weights as an uninterrupted one.
        transfer: a batch transform applied every step before the teacher and the student
            see the batch, e.g. :class:`~distill.train.synthetic.SyntheticTransfer` (generated
            unlabeled rows; needs an online teacher). It may draw from torch's global RNG.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: a teacher-based objective without ``teacher``; ``resume``, checkpoints or
            TensorBoard without ``run_dir``; pair-agreement stopping without ``valid``/teacher.
        NonFiniteLossError: a NaN/inf loss input (a model output or teacher score the loss
            refuses: named with the step, before that step's update), or a NaN/inf loss, term
            or gradient norm, checked at the logged and checkpointed steps, where the values
            are read on the host anyway (so no step pays an extra sync), before that step's
            checkpoint is written.

    Reference: Loshchilov & Hutter 2019 (AdamW); docs/guarantees.md (resume, checkpoints).

    Example:
        >>> result = fit(MLP(4, out_features=3), train, objective=Objective([LabelsTerm("ce")]),
        ...              options=TrainOptions(max_steps=100, metric="accuracy"), valid=valid)
        >>> result.best_metric  # doctest: +SKIP
    """
    _check_arguments(objective, options, teacher, valid, run_dir, resume)
    context = setup_distributed(options.device)
    with _deterministic(options.deterministic):
        _seed_everything(options.seed + context.rank)
        data = _train_data(train, valid, teacher, options, context, transfer)  # data
        net = objective.wrap_model(model).to(context.device)  # model
        state = TrainState.create(net, options, data.total_steps, context)
        files = RunFiles(run_dir, variant, options, context)
        files.start(state, resume=resume)
        _loop(state, data, objective, options, context, files)  # loop, eval, checkpoint
        files.finish()
        restored = options.restore_best and state.best_weights is not None
        if restored:
            net.load_state_dict(state.best_weights)
    return FitResult(
        model=model,
        metric=options.metric,
        best_metric=state.best_metric,
        best_step=state.best_step,
        metrics=state.best_metrics if restored else state.last_metrics,
        last_train=state.last_train,
        steps=state.step,
        stop_reason=state.stop_reason,
        wall_time_s=state.wall_time_s(),
        history_path=files.metrics.path,
        checkpoint_dir=files.checkpoint_dir,
    )


def _loop(state, data, objective, options, context, files) -> None:
    state.ddp_net.train()  # evaluation restores the mode it found
    with ProgressBar(
        data.total_steps, files.variant, enabled=context.is_main and options.progress
    ) as bar:
        while state.step < data.total_steps and state.stop_reason == "completed":
            for index in data.epoch_items(state.epoch, state.position):
                state.step += 1
                state.position += 1
                values = _train_step(state, data, index, objective, options)
                _after_step(state, values, data, objective, options, context, files)
                bar.update(state.step, {"loss": values["loss"], **state.last_metrics})
                if state.step >= data.total_steps or state.stop_reason != "completed":
                    return
            state.epoch += 1
            state.position = 0


def _train_step(
    state: TrainState, data: _TrainData, index: torch.Tensor, objective: Objective, options
) -> dict[str, torch.Tensor | float]:
    """One optimiser step; the logged values stay tensors (no host read until logged)."""
    batch = data.batch(index)
    teacher_logits = None
    if objective.needs_teacher(state.step):
        teacher_logits = data.teacher_logits(batch, index)
    device_type = batch.labels.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=options.bf16):
        outputs = _forward(state.ddp_net, batch)
    try:
        total, parts = objective(_as_float32(outputs), batch, teacher_logits, step=state.step)
    except NonFiniteError as error:
        raise NonFiniteLossError(f"step {state.step}: {error}; {NON_FINITE_HINT}") from error
    lr = state.scheduler.get_last_lr()[0]
    state.optimizer.zero_grad(set_to_none=True)
    total.backward()
    values = {"loss": total.detach(), **{k: v.detach() for k, v in parts.items()}}
    if options.grad_clip is not None:
        values["grad_norm"] = clip_grad_norm(state.net.parameters(), options.grad_clip)
    state.optimizer.step()
    state.scheduler.step()
    values["lr"] = lr
    return values


def _check_finite_step(step: int, values: dict[str, float]) -> None:
    """Stop on a NaN/inf loss, term or gradient norm (values already read on the host)."""
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if bad:
        name = next((n for n in bad if n.startswith("loss/")), bad[0])
        raise NonFiniteLossError(
            f"step {step}: {name} is {values[name]} (loss = {values['loss']}); {NON_FINITE_HINT}"
        )


def _after_step(state, values, data, objective, options, context, files) -> None:
    step = state.step
    phase = objective.phase(step)
    is_last = step == data.total_steps
    evaluated = data.valid is not None and (
        is_last or (options.eval_every is not None and step % options.eval_every == 0)
    )
    logged = step % options.log_every == 0 or is_last or evaluated
    periodic = options.checkpoint_every is not None and step % options.checkpoint_every == 0
    if logged or periodic:  # the values are read on the host only here
        host = {k: float(v) for k, v in values.items()}
        _check_finite_step(step, host)
    if logged:
        state.last_train = all_reduce_mean(host, context)
        files.log(step, "train", state.last_train, phase)
    if evaluated:
        metrics = evaluate(
            state.net,
            data.valid,
            metric=options.metric,
            context=context,
            score=objective.score,
            teacher_scores=data.valid_teacher_scores,
            agreement_threshold=options.pair_agreement_threshold,
            batch_size=options.eval_batch_size,
            bf16=options.bf16,
        )
        files.log(step, "valid", metrics, phase)
        if state.record_validation(metrics, options):
            files.save_best(state)
    if periodic or evaluated or is_last or state.stop_reason != "completed":
        files.save_last(state)


def _forward(module: nn.Module, batch: Batch) -> Any:
    if batch.feature_values is None:
        return module(batch.features)
    return module(batch.features, batch.feature_values)


def _as_float32(outputs: Any) -> Any:
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_as_float32(item) for item in outputs)
    return outputs.float() if outputs.is_floating_point() else outputs


class _TrainData:
    """The student/teacher views of the data, batching per epoch and validation targets."""

    def __init__(self, train, valid, teacher, options: TrainOptions, context, transfer) -> None:
        spec = options.student_features
        self.teacher_view = train
        self.student = train if spec is None else train.select_features(spec)
        self.valid = valid if valid is None or spec is None else valid.select_features(spec)
        self.options = options
        self.context = context
        self._epoch_batches: tuple[int, list[torch.Tensor]] | None = None
        self.teacher = teacher
        self.row_logits = _row_logits(teacher, train, context.device)
        self.transfer = transfer
        if transfer is not None and self.row_logits is not None:
            raise ValueError(
                "`transfer` adds generated rows that need an online teacher (a module), "
                "got cached scores"
            )
        batches_per_epoch = len(self.batches(0))
        if batches_per_epoch == 0:
            raise ValueError(
                f"`train` ({len(train)} rows) has fewer groups/rows than the "
                f"{context.world_size} processes; no batch can be formed"
            )
        self.total_steps = options.total_steps(batches_per_epoch)
        self.valid_teacher_scores = None
        if options.stop_pair_agreement is not None:
            self.valid_teacher_scores = predict_dataset(
                teacher, valid, batch_size=options.eval_batch_size
            )

    def batches(self, epoch: int) -> list[torch.Tensor]:
        """This rank's row positions per step of ``epoch`` (the last epoch's are kept)."""
        if self._epoch_batches is None or self._epoch_batches[0] != epoch:
            batches = epoch_batches(
                self.student,
                batch_size=self.options.batch_size,
                groups_per_batch=self.options.groups_per_batch,
                seed=self.options.seed,
                epoch=epoch,
                context=self.context,
            )
            self._epoch_batches = (epoch, batches)
        return self._epoch_batches[1]

    def epoch_items(self, epoch: int, start: int) -> list[torch.Tensor]:
        """This rank's row positions per step of ``epoch``, from the ``start``-th step on."""
        return self.batches(epoch)[start:]

    def batch(self, index: torch.Tensor) -> Batch:
        """The rows ``index`` on the training device (then through ``transfer``, if given)."""
        batch = make_batch(self.student, self.teacher_view, index, self.context.device)
        return batch if self.transfer is None else self.transfer(batch)

    def teacher_logits(self, batch: Batch, index: torch.Tensor) -> torch.Tensor:
        """The teacher's float32 logits for the batch: one gather from cached scores, else
        the teacher's forward on the full feature columns."""
        if self.row_logits is not None:
            return self.row_logits.index_select(0, index.to(self.row_logits.device))
        features, values = batch.teacher_inputs()
        return self.teacher.predict(features, batch.ids, **values).to(batch.labels.device).float()


def _train_data(train, valid, teacher, options, context, transfer):
    """The in-memory data, or the stream of a ``StreamingTable``."""
    if is_stream(train):
        return StreamTrainData(train, valid, teacher, options, context, transfer)
    if hasattr(teacher, "batch_logits"):
        raise TypeError(f"{teacher!r} serves streamed rows only; `train` must be a StreamingTable")
    return _TrainData(train, valid, teacher, options, context, transfer)


def _row_logits(teacher: Any, train: Dataset, device: torch.device) -> torch.Tensor | None:
    """Cached teacher scores aligned with the training rows (looked up once), else None."""
    if not isinstance(teacher, CachedScores):
        return None
    return teacher.predict(train.features, train.ids).to(device).float()


def _check_arguments(objective, options, teacher, valid, run_dir, resume) -> None:
    if not isinstance(options, TrainOptions):
        raise TypeError(f"`options` must be a TrainOptions, got {type(options).__name__}")
    if objective.uses_teacher and teacher is None:
        names = [term.name for term in objective.terms if term.needs_teacher]
        raise ValueError(f"objective terms {names} need teacher logits; pass `teacher`")
    if teacher is not None and not any(
        callable(getattr(teacher, name, None)) for name in ("predict", "batch_logits")
    ):
        raise TypeError(f"`teacher` must have predict(features, ids), got {type(teacher).__name__}")
    if run_dir is None and (resume or options.checkpoint_every or options.tensorboard):
        raise ValueError("`resume`, `checkpoint_every` and `tensorboard` need a `run_dir`")
    if options.stop_pair_agreement is not None and (valid is None or teacher is None):
        raise ValueError("`stop_pair_agreement` needs `valid` data and a `teacher`")
    if options.patience is not None and valid is None:
        raise ValueError("`patience` (early stopping) needs `valid` data")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    if torch.accelerator.is_available():
        torch.manual_seed(seed)
    else:  # the same CPU seed, without queueing seeds for accelerators that are not there
        torch.default_generator.manual_seed(seed)


@contextmanager
def _deterministic(enabled: bool):
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
