"""Int8 dynamic quantisation of Linear layers, stored without pickle.

Choice of path (torch 2.13): ``torch.ao.quantization.quantize_dynamic`` is deprecated in favour
of torchao, but torchao's int8 dynamic-activation path falls back to an int32 ``matmul`` on CPU
(slower than float32), while the fbgemm/x86 kernel behind ``torch.ops.quantized.linear_dynamic``
is still shipped and fast. So :class:`Int8Linear` keeps plain tensors as its state (int8 weights
and float32 per-channel scales, safetensors-friendly) and packs them for that kernel; no new
dependency, no ``torch.ao`` module tree and no pickled packed parameters in the files.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from distill._validation import check_float_tensor

_QUANTIZED_TENSOR_WARNING = ".*quantized tensor creation functions.*deprecated.*"


class Int8Linear(nn.Module):
    """A Linear layer with int8 weights and dynamically quantised activations.

    Weights are quantised once, symmetrically per output channel:
    ``s_j = max_k |W_jk| / 127``, ``Ŵ_jk = s_j · round(W_jk / s_j)``. At each call the input
    batch is quantised to 7-bit unsigned affine integers over ``[min(x, 0), max(x, 0)]`` of the
    whole batch (``reduce_range=True``, torch's default dynamic qconfig for x86/fbgemm), the
    product is accumulated in int32 and rescaled to float32: ``y ≈ x Ŵᵀ + b``.
    Per output: ``|y − (x Wᵀ + b)| ≤ (s_j / 2)·Σ_k |x_k| + s_x·Σ_k |Ŵ_jk|``, ``s_x`` being the
    activation step. Because ``s_x`` is per batch, one row's output depends slightly on the
    other rows of its batch.

    Args:
        in_features: input width D.
        out_features: output width O.
        bias: whether the layer has a float32 bias.

    Shapes: input ``(..., D)`` float32, output ``(..., O)`` float32.

    Reference: Jacob et al. 2018 (integer-arithmetic-only inference); torch dynamic
    quantisation (``quantized::linear_dynamic``).

    Example:
        >>> layer = Int8Linear.from_linear(nn.Linear(8, 4))
        >>> layer(torch.randn(2, 8)).shape
        torch.Size([2, 4])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer(
            "weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8)
        )
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        self._packed = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module._pack())
        self._pack()

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        """Quantise a float Linear layer (per-channel symmetric int8 weights)."""
        weight = linear.weight.detach().float()
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        scale = weight.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127.0
        layer.weight_int8.copy_(torch.round(weight / scale[:, None]).clamp(-127, 127))
        layer.weight_scale.copy_(scale)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach())
        layer._pack()
        return layer

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight ``Ŵ`` that the int8 values represent, ``(O, D)``."""
        return self.weight_int8.float() * self.weight_scale[:, None]

    def _pack(self) -> None:
        zero_points = torch.zeros(self.out_features, dtype=torch.long)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_QUANTIZED_TENSOR_WARNING)
            qweight = torch._make_per_channel_quantized_tensor(
                self.weight_int8, self.weight_scale.double(), zero_points, 0
            )
        self._packed = torch.ops.quantized.linear_prepack(qweight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor("x", x)
        flat = x.reshape(-1, self.in_features).float().contiguous()
        out = torch.ops.quantized.linear_dynamic(flat, self._packed, True)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, weight=int8 per-channel"
        )


class Int8Embedding(nn.Module):
    """An embedding table stored as int8 with one float32 scale per row.

    ``s_i = max_k |E_ik| / 127``, ``Ê_ik = s_i · round(E_ik / s_i)``, so every entry is within
    ``s_i / 2`` of the original; a zero row (padding) stays exactly zero. Lookups return
    float32 rows ``Ê[ids]``. Only the table is carried over (not ``max_norm`` or sparse
    gradients: this is an inference layer).

    Args:
        num_embeddings: rows V.
        embedding_dim: row width d.

    Shapes: ids int64 ``(...)`` → ``(..., d)`` float32.

    Reference: int8 row-wise embedding quantisation as in DLRM/fbgemm (Guan et al. 2019,
    "Post-training 4-bit quantization on embedding tables").

    Example:
        >>> table = Int8Embedding.from_embedding(nn.Embedding(10, 4, padding_idx=0))
        >>> table(torch.tensor([[0, 3]])).shape
        torch.Size([1, 2, 4])
    """

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        weight = torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8)
        self.register_buffer("weight_int8", weight)
        self.register_buffer("weight_scale", torch.ones(num_embeddings))

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding) -> Int8Embedding:
        """Quantise a float ``nn.Embedding`` row by row."""
        weight = embedding.weight.detach().float()
        table = cls(embedding.num_embeddings, embedding.embedding_dim)
        scale = weight.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127.0
        table.weight_int8.copy_(torch.round(weight / scale[:, None]).clamp(-127, 127))
        table.weight_scale.copy_(scale)
        return table

    @property
    def weight(self) -> torch.Tensor:
        """The float32 table ``Ê`` (built on each access: O(V·d); lookups do not use it)."""
        return self.weight_int8.float() * self.weight_scale[:, None]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = nn.functional.embedding(ids, self.weight_int8).float()
        return rows * self.weight_scale[ids].unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, weight=int8 per-row"


MIN_EMBEDDING_DIM = 4
"""Narrower tables stay float32: a float32 scale per row would outweigh the int8 savings."""


def linear_layer_names(model: nn.Module) -> list[str]:
    """Names of every ``nn.Linear`` submodule of ``model``, in module order."""
    return [name for name, module in model.named_modules() if type(module) is nn.Linear]


def int8_layer_names(model: nn.Module) -> list[str]:
    """Names of the layers :func:`quantize_int8` converts: every ``nn.Linear`` and every
    ``nn.Embedding`` at least :data:`MIN_EMBEDDING_DIM` wide, in module order."""
    return [name for name, module in model.named_modules() if _quantizable(module)]


def _quantizable(module: nn.Module) -> bool:
    if type(module) is nn.Embedding:
        return module.embedding_dim >= MIN_EMBEDDING_DIM
    return type(module) is nn.Linear


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Swap the submodule at dotted path ``name`` for ``new`` in place."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def quantize_int8(model: nn.Module) -> nn.Module:
    """Return a copy of ``model`` with int8 weights in its Linear and Embedding layers.

    ``nn.Linear`` → :class:`Int8Linear` (int8 weights, dynamically quantised activations);
    ``nn.Embedding`` of width ≥ :data:`MIN_EMBEDDING_DIM` → :class:`Int8Embedding` (the
    tables that dominate CTR models). Norms, biases and activations stay float32. The result
    is for inference (no gradients).

    Args:
        model: a float module (any dtype; weights are read as float32).

    Returns:
        A new module in eval mode; ``model`` is left unchanged.

    Raises:
        ValueError: if ``model`` has no layer to quantise.

    Reference: Jacob et al. 2018; torch dynamic quantisation; row-wise embedding quantisation.

    Example:
        >>> q = quantize_int8(nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1)))
        >>> type(q[0]).__name__
        'Int8Linear'
    """
    names = int8_layer_names(model)
    if not names:
        raise ValueError(
            f"`model` must contain an nn.Linear or nn.Embedding layer to quantise, got {model!r}"
        )
    quantized = _float32_copy(model)
    for name in names:
        replace_module(quantized, name, _quantized_layer(quantized.get_submodule(name)))
    return quantized.eval()


def _quantized_layer(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.Embedding):
        return Int8Embedding.from_embedding(module)
    return Int8Linear.from_linear(module)


def int8_structure(model: nn.Module, names: list[str]) -> nn.Module:
    """Swap the named layers for empty int8 layers of the same shape (before loading)."""
    for name in names:
        layer = model.get_submodule(name)
        if isinstance(layer, nn.Embedding):
            empty = Int8Embedding(layer.num_embeddings, layer.embedding_dim)
        else:
            empty = Int8Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        replace_module(model, name, empty)
    return model.eval()


def _float32_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).float()
