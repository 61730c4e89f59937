"""Sparse embedding gradients: lazy Adam for the tables, AdamW for the dense rest.

With ``TrainOptions.sparse_embeddings`` every ``nn.Embedding``/``nn.EmbeddingBag`` of the model
produces sparse gradients (only the rows of the batch's ids) and :class:`LazyAdam` keeps Adam
moments only for the rows ever touched, so optimiser state grows with the rows seen, not the
table size. See docs/streaming.md (big embeddings).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


class LazyAdam(torch.optim.Optimizer):
    """Adam over sparse row gradients with moments stored for touched rows only.

    For the rows ``r`` in a step's gradient ``g`` (``step`` counts the optimiser's steps):
    ``m_r ← β₁ m_r + (1−β₁) g_r``, ``v_r ← β₂ v_r + (1−β₂) g_r²``,
    ``θ_r ← θ_r − lr · √(1−β₂^step)/(1−β₁^step) · m_r / (√v_r + ε)``; other rows keep their
    weights and moments. This is ``torch.optim.SparseAdam``'s update, whose moments are dense
    ``2 × table`` tensors; here they are ``(rows touched, …)`` tensors plus an int32 row→slot
    map (4 bytes per table row).

    Args:
        params: parameters with sparse gradients (embedding tables, rows on dim 0).
        lr, betas, eps: Adam's.

    Raises:
        ValueError: a dense gradient (use AdamW for it).

    Reference: Kingma & Ba 2015 (Adam); ``torch.optim.SparseAdam`` (lazy sparse update).

    Example:
        >>> table = nn.Embedding(1000, 8, sparse=True)
        >>> optimizer = LazyAdam(table.parameters(), lr=1e-2)
    """

    def __init__(self, params, *, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        """One update of the rows in every parameter's sparse gradient."""
        loss = None if closure is None else closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise ValueError(
                        f"LazyAdam takes sparse gradients (nn.Embedding(sparse=True)), got a dense "
                        f"one of shape {tuple(param.shape)}"
                    )
                state = self.state[param]
                grad = param.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                slots = _slots(state, param, rows)
                state["step"] = state.get("step", 0) + 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m[slots] = beta1 * m[slots] + (1 - beta1) * values
                v[slots] = beta2 * v[slots] + (1 - beta2) * values.square()
                step = state["step"]
                size = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                param.index_add_(0, rows, -size * m[slots] / (v[slots].sqrt() + group["eps"]))
        return loss


def _slots(state: dict, param: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Storage rows of ``rows`` in the moment tensors, giving new rows a zeroed slot."""
    if "slot" not in state:
        state["slot"] = torch.full((param.shape[0],), -1, dtype=torch.int32, device=param.device)
        state["rows"] = 0
        state["exp_avg"] = param.new_zeros((0, *param.shape[1:]))
        state["exp_avg_sq"] = param.new_zeros((0, *param.shape[1:]))
    new = rows[state["slot"][rows] < 0]
    if len(new):
        used = state["rows"]
        state["slot"][new] = torch.arange(used, used + len(new), dtype=torch.int32).to(param.device)
        state["rows"] = used + len(new)
        if state["rows"] > len(state["exp_avg"]):  # grow geometrically: amortised O(1) a row
            capacity = max(state["rows"], 2 * len(state["exp_avg"]))
            for name in ("exp_avg", "exp_avg_sq"):
                grown = param.new_zeros((capacity, *param.shape[1:]))
                grown[:used] = state[name][:used]
                state[name] = grown
    return state["slot"][rows].long()


def touched_rows(optimizer: torch.optim.Optimizer) -> int:
    """Rows holding lazy-Adam moments, summed over the tables (0 for other optimisers)."""
    states = optimizer.state.values()
    return sum(state.get("rows", 0) for state in states if isinstance(state, dict))


class SplitOptimizer(torch.optim.Optimizer):
    """:class:`LazyAdam` for the embedding tables and AdamW for every other parameter.

    The two share one ``param_groups`` list (tables first), so an LR scheduler drives both;
    ``state_dict`` holds both optimisers' states.

    Args:
        net: the model; its ``nn.Embedding``/``nn.EmbeddingBag`` modules are switched to sparse
            gradients.
        lr, betas, weight_decay: AdamW's (the tables take no weight decay).

    Raises:
        ValueError: a model without embedding tables.

    Example:
        >>> optimizer = SplitOptimizer(WideAndDeep(10_000, 39), lr=1e-3)
    """

    def __init__(self, net: nn.Module, *, lr: float, betas=(0.9, 0.999), weight_decay=0.0):
        tables = sparse_tables(net)
        if not tables:
            raise ValueError("`sparse_embeddings` needs a model with nn.Embedding tables, got none")
        dense = [p for p in net.parameters() if all(p is not t for t in tables)]
        self.sparse = LazyAdam(tables, lr=lr, betas=betas)
        self.dense = torch.optim.AdamW(dense, lr=lr, betas=betas, weight_decay=weight_decay)
        super().__init__(net.parameters(), {"lr": lr})
        self.param_groups = self.sparse.param_groups + self.dense.param_groups
        self.state = self.sparse.state

    @torch.no_grad()
    def step(self, closure=None):
        """One LazyAdam step on the tables and one AdamW step on the rest."""
        loss = None if closure is None else closure()
        self.sparse.step()
        self.dense.step()
        return loss

    def state_dict(self) -> dict:
        """Both optimisers' states."""
        return {"sparse": self.sparse.state_dict(), "dense": self.dense.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.sparse.load_state_dict(state_dict["sparse"])
        self.dense.load_state_dict(state_dict["dense"])
        self.param_groups = self.sparse.param_groups + self.dense.param_groups
        self.state = self.sparse.state


def sparse_tables(net: nn.Module) -> list[torch.Tensor]:
    """Switch ``net``'s embedding tables to sparse gradients; returns their weights."""
    tables = []
    for module in net.modules():
        if isinstance(module, _EMBEDDINGS):
            module.sparse = True
            tables.append(module.weight)
    return tables


def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` that also takes sparse gradients (global L2 norm).

    Returns:
        The norm before clipping.
    """
    parameters = [p for p in parameters if p.grad is not None]
    if not any(p.grad.is_sparse for p in parameters):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    for param in parameters:  # once here; the optimiser then finds them coalesced
        if param.grad.is_sparse:
            param.grad = param.grad.coalesce()
    squares = [(p.grad.values() if p.grad.is_sparse else p.grad).square().sum() for p in parameters]
    total = torch.stack(squares).sum().sqrt()
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for param in parameters:
        param.grad = param.grad * scale
    return total
