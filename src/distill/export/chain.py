"""The compression chain: shared factorisation, low rank, then 16-bit (or int8) weights, each
step starting from the previous step's model, with a saved model and a table row per step.

The keyboard example of Yu et al. 2018 (docs/compression.md#the-chain)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from distill import models
from distill._io import write_atomic
from distill._validation import check_positive_int
from distill.export._files import MARKER
from distill.export._inputs import Inputs
from distill.export.formats import serving_module, wrap_compressed
from distill.export.int8 import int8_layer_names, quantize_int8
from distill.export.lowrank import check_rank, low_rank, recover
from distill.export.shared_factorisation import check_share, share_embeddings
from distill.models._spec import module_spec

FACTORISATIONS = ("share", "low-rank")
QUANTISATIONS = ("fp16", "bf16", "int8")
CHAIN_STEPS: tuple[str, ...] = (*FACTORISATIONS, *QUANTISATIONS)
ORIGINAL = "original"
_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


@dataclass
class ChainSettings:
    """How each step runs.

    Attributes:
        share_rank: rank (int) or kept energy (float) of the shared embedding/output basis.
        rank: rank or energy of the low-rank step (every Linear layer it makes smaller).
        embedding, output: the layers to share (``None``: found automatically).
        recover_steps: recovery distillation steps after each factorisation step (0: none).
        recover_inputs: the transfer rows of the student (needed when ``recover_steps > 0``).
        reference: the recovery teacher (default: the uncompressed model).
        reference_inputs: the reference's inputs for the same rows, when they differ.
        recover_options: further :func:`~distill.export.lowrank.recover` keywords (lr, ...).
    """

    share_rank: int | float = 0.9
    rank: int | float = 0.9
    embedding: str | None = None
    output: str | None = None
    recover_steps: int = 0
    recover_inputs: Inputs | None = None
    reference: nn.Module | None = None
    reference_inputs: Inputs | None = None
    recover_options: dict[str, Any] = field(default_factory=dict)


def check_chain(steps: Sequence[str], model: nn.Module, settings: ChainSettings) -> list[str]:
    """Validate the chain against ``model`` before anything is computed or written.

    Rules: steps from :data:`CHAIN_STEPS`, each at most once, factorisations in the order
    share → low-rank, at most one quantisation and only as the last step; a shareable pair
    and a rank in range for ``share`` (an int rank must make the pair smaller; the rank an
    energy fraction picks is checked when the step runs); a valid rank for ``low-rank``;
    recovery inputs when ``recover_steps > 0``.

    Returns:
        The steps as a list.

    Raises:
        ValueError: the first rule broken, naming the argument and the value.
        TypeError: a model without ``spec()`` (the saved steps are rebuilt from it).
    """
    steps = list(steps)
    if not steps:
        raise ValueError("`steps` must name at least one step, got none")
    unknown = [step for step in steps if step not in CHAIN_STEPS]
    if unknown:
        raise ValueError(
            f"`steps` entry {unknown[0]!r} is not a chain step (choose from "
            f"{', '.join(CHAIN_STEPS)})"
        )
    order = [CHAIN_STEPS.index(step) for step in steps]
    quantised = [step for step in steps if step in QUANTISATIONS]
    if order != sorted(set(order)) or len(quantised) > 1:
        raise ValueError(
            "`steps` must run share, then low-rank, then one of fp16/bf16/int8, each at most "
            f"once; got {','.join(steps)}"
        )
    if "share" in steps:
        pair = check_share(
            model,
            rank=settings.share_rank,
            embedding=settings.embedding,
            output=settings.output,
            rank_name="share_rank",
        )
        if isinstance(settings.share_rank, int):
            _check_shrinks(model, pair, settings.share_rank, settings.share_rank)
    if "low-rank" in steps:
        check_rank(settings.rank)
    check_positive_int("recover_steps", settings.recover_steps, minimum=0)
    if settings.recover_steps and settings.recover_inputs is None:
        raise ValueError("`recover_inputs` must be given when `recover_steps` > 0")
    module_spec("model", model)  # every step is saved with the model's spec
    return steps


@dataclass
class _State:
    """The model between steps: the float module and the structure that rebuilds it."""

    module: nn.Module
    structure: dict[str, Any] = field(default_factory=dict)
    settings: str = "float32"


def run_chain(
    model: nn.Module,
    steps: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    settings: ChainSettings | None = None,
) -> dict[str, Path]:
    """Apply ``steps`` in order and save the model after each one (and the original first).

    Each step starts from the previous step's model. ``share`` replaces the embedding and
    output layer by one shared basis (:func:`~distill.export.share_embeddings`), ``low-rank``
    factorises the remaining Linear layers (:func:`~distill.export.low_rank`); after each of
    the two, ``recover_steps`` of distillation from the reference
    (:func:`~distill.export.recover`) win back what the factorisation lost. ``fp16`` /
    ``bf16`` halve the weights, ``int8`` quantises the Linear layers.

    Args:
        model: the trained model (its serving part, :func:`~distill.export.serving_module`).
        steps: names from :data:`CHAIN_STEPS` (see :func:`check_chain`).
        out_dir: an existing directory; ``out_dir/<step>/`` is written for ``"original"`` and
            every step (``distill.models.save`` layout plus ``export.json``).
        settings: a :class:`ChainSettings` (default: energy 0.9 for both ranks, no recovery).

    Returns:
        ``{step: directory}`` in chain order, ``"original"`` first.

    Raises:
        ValueError: see :func:`check_chain` (raised before anything is written).

    Reference: Yu et al. 2018 (shared factorisation → low rank with re-training → 16 bit);
    docs/compression.md.

    Example:
        >>> from distill.models import NextTokenLM
        >>> run_chain(NextTokenLM(50, 2, 50), ["share", "fp16"], "out")  # doctest: +SKIP
    """
    settings = settings or ChainSettings()
    serving = copy.deepcopy(serving_module(model)).float().eval()  # ``model`` stays as it is
    steps = check_chain(steps, serving, settings)
    reference = serving if settings.reference is None else settings.reference
    state = _State(serving)
    out_dir = Path(out_dir)
    written = {ORIGINAL: _save(serving, state, out_dir / ORIGINAL, [ORIGINAL])}
    for index, step in enumerate(steps, start=1):
        state = _STEPS[step](state, settings, step)
        if step in FACTORISATIONS and settings.recover_steps:
            _recover(state, reference, settings)
        written[step] = _save(serving, state, out_dir / step, steps[:index])
    return written


def _share(state: _State, settings: ChainSettings, step: str) -> _State:
    module, shared = share_embeddings(
        state.module, rank=settings.share_rank, embedding=settings.embedding, output=settings.output
    )
    pair = (shared["embedding"], shared["output"])
    _check_shrinks(state.module, pair, shared["rank"], settings.share_rank)
    text = f"{shared['embedding']} + {shared['output']} share rank {shared['rank']}"
    return _State(module, {**state.structure, "shared": shared}, text)


def _check_shrinks(model: nn.Module, pair: Sequence[str], rank: int, setting: Any) -> None:
    """The shared rank gives fewer weights than the embedding and output layer it replaces:
    ``V·r + 2·r·d < 2·V·d``, i.e. ``r < 2Vd / (V + 2d)``."""
    table = model.get_submodule(pair[0])
    vocab, width = table.num_embeddings, table.embedding_dim
    limit = (2 * vocab * width - 1) // (vocab + 2 * width)
    if rank > limit:
        shared = vocab * rank + 2 * rank * width
        raise ValueError(
            f"`share_rank` {setting!r} gives rank {rank}: V·r + 2·r·d = {shared:,} weights, not "
            f"fewer than the 2·V·d = {2 * vocab * width:,} of {pair[0]} + {pair[1]}; ranks up "
            f"to {limit} make them smaller"
        )


def _low_rank(state: _State, settings: ChainSettings, step: str) -> _State:
    module, ranks = low_rank(state.module, settings.rank)
    text = ", ".join(f"{name} r={value}" for name, value in ranks.items())
    return _State(module, {**state.structure, "ranks": ranks}, text)


def _half(state: _State, settings: ChainSettings, step: str) -> _State:
    return _State(state.module, {**state.structure, "dtype": _DTYPES[step]}, _DTYPES[step])


def _int8(state: _State, settings: ChainSettings, step: str) -> _State:
    names = int8_layer_names(state.module)
    structure = {**state.structure, "int8_layers": names}
    return _State(quantize_int8(state.module), structure, f"int8: {', '.join(names)}")


_STEPS: dict[str, Callable[[_State, ChainSettings, str], _State]] = {
    "share": _share,
    "low-rank": _low_rank,
    "fp16": _half,
    "bf16": _half,
    "int8": _int8,
}


def _recover(state: _State, reference: nn.Module, settings: ChainSettings) -> None:
    recover(
        state.module,
        reference,
        settings.recover_inputs,
        reference_inputs=settings.reference_inputs,
        steps=settings.recover_steps,
        **settings.recover_options,
    )
    state.settings += f"; {settings.recover_steps} recovery steps"


def _save(serving: nn.Module, state: _State, directory: Path, done: Sequence[str]) -> Path:
    if state.structure:
        saved: nn.Module = wrap_compressed(serving, state.module, **state.structure)
    else:
        saved = state.module
    models.save(saved, directory)
    details = {"format": done[-1], "chain": list(done), "settings": state.settings}
    details["weights_file"] = models.registry.WEIGHTS_FILE
    write_atomic(directory / MARKER, json.dumps({**details, **state.structure}, indent=2) + "\n")
    return directory
