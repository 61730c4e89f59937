"""What ``fit`` writes under ``run_dir``: ``metrics.jsonl`` and ``checkpoints/<variant>/``."""

from __future__ import annotations

import os
from pathlib import Path

from distill.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from distill.train.distributed import DistributedContext, all_gather_objects
from distill.train.logging import MetricsLog
from distill.train.options import TrainOptions
from distill.train.state import TrainState


class RunFiles:
    """Logs and checkpoints of one variant; every rank calls it, only rank 0 writes.

    Layout: ``run_dir/metrics.jsonl``, ``run_dir/checkpoints/<variant>/last.pt`` and
    ``best.pt``, ``run_dir/tensorboard/<variant>/`` (optional).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None,
        variant: str,
        options: TrainOptions,
        context: DistributedContext,
    ) -> None:
        self.variant = variant
        self.options = options
        self.context = context
        self.checkpoint_dir = None if run_dir is None else Path(run_dir) / "checkpoints" / variant
        writes = run_dir is not None and context.is_main
        self.metrics = MetricsLog(
            run_dir if writes else None, variant, tensorboard=writes and options.tensorboard
        )

    @property
    def last_path(self) -> Path | None:
        """``checkpoints/<variant>/last.pt``."""
        return None if self.checkpoint_dir is None else self.checkpoint_dir / "last.pt"

    def start(self, state: TrainState, *, resume: bool) -> None:
        """Resume from ``last.pt`` when asked and present; drop log lines after that step.

        Temp files of checkpoint writes cut short by a kill are removed.
        """
        if self.checkpoint_dir is not None and self.context.is_main:
            for leftover in self.checkpoint_dir.glob(".*.pt.*.tmp"):
                leftover.unlink(missing_ok=True)
        if resume and self.last_path.is_file():
            payload = load_checkpoint(self.last_path)
            state.load_checkpoint(payload)
            rng_states = payload["rng"]
            set_rng_state(rng_states[min(self.context.rank, len(rng_states) - 1)])
            best_path = self.checkpoint_dir / "best.pt"
            if best_path.is_file():
                state.best_weights = load_checkpoint(best_path)["model"]
        self.metrics.truncate_after(state.step)

    def log(self, step: int, split: str, values: dict[str, float], phase: str | None) -> None:
        """One ``metrics.jsonl`` line (rank 0)."""
        self.metrics.log(step, split, values, phase)

    def save_last(self, state: TrainState) -> None:
        """Write ``last.pt`` (collective under DDP: RNG states of all ranks are gathered)."""
        rng_states = all_gather_objects(rng_state(), self.context)
        if self.last_path is not None and self.context.is_main:
            save_checkpoint(self.last_path, state.checkpoint(rng_states, self.options))

    def save_best(self, state: TrainState) -> None:
        """Write ``best.pt`` (rank 0)."""
        if self.checkpoint_dir is not None and self.context.is_main:
            save_checkpoint(self.checkpoint_dir / "best.pt", state.best_checkpoint())

    def finish(self) -> None:
        """Close the logs."""
        self.metrics.close()
