"""What ``distill export`` reads from a model directory or a training checkpoint: the models
to export, as an :class:`ExportSource`, and random example inputs for them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from distill import models
from distill.export._inputs import Inputs
from distill.export.table import Predict

SPEC_FILE = "model.json"
CONFIG_FILE = "config.toml"


@dataclass
class ExportSource:
    """Models to export and what measuring them needs.

    Attributes:
        path: where they came from.
        students: ``{name: model}`` to export.
        teacher: the reference row of the table, when known (a run's ``teacher/``).
        example_inputs: ``{name: inputs}`` for every student and the teacher (≥ 256 rows are
            not needed: rows are reused cyclically).
        evaluators: ``{name: evaluate(predict) -> float}`` on held-out data, or None.
        transfer_inputs: ``{name: inputs}`` of the training rows for low-rank recovery (every
            student, and the teacher when there is one), or None.
        metric: the evaluators' metric name.
    """

    path: Path
    students: dict[str, nn.Module]
    teacher: nn.Module | None = None
    example_inputs: dict[str, Inputs] = field(default_factory=dict)
    evaluators: dict[str, Callable[[Predict], float]] | None = None
    transfer_inputs: dict[str, Inputs] | None = None
    metric: str = "metric"


def single_source(path: Path, name: str, model: nn.Module) -> ExportSource:
    return ExportSource(path, {name: model}, example_inputs={name: random_inputs(model)})


def load_checkpoint_model(
    path: Path, spec: str | os.PathLike | None, *, trust: bool = False
) -> nn.Module:
    """Build the model of ``spec`` and load the checkpoint's ``"model"`` weights into it.

    The checkpoint is read with ``torch.load(weights_only=True)`` (no code runs). Quantile
    heads and a joint model's teacher tower are dropped first (:func:`_serving_state`).

    Raises:
        FileNotFoundError: no spec given or found next to a run checkpoint.
        ValueError: not a checkpoint, or weights that do not fit the spec.
    """
    spec_path = _spec_path(path, spec)
    spec_dict = json.loads(spec_path.read_text())["spec"]
    model = models.build(spec_dict, trust=trust)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise ValueError(f"{path}: not a distill checkpoint (no 'model' state dict)")
    state = payload["model"]
    if set(state) != set(model.state_dict()):
        state = _serving_state(state)
    _check_state(model, state, f"{path}: checkpoint does not match model spec {spec_path}")
    model.load_state_dict(state)
    return model.eval()


def _spec_path(path: Path, spec: str | os.PathLike | None) -> Path:
    if spec is not None:
        spec = Path(spec)
        return spec / SPEC_FILE if spec.is_dir() else spec
    run, variant = path.parent.parent.parent, path.parent.name  # run/checkpoints/<variant>/x.pt
    for candidate in (run / "students" / variant, run / variant):
        if (candidate / SPEC_FILE).is_file():
            return candidate / SPEC_FILE
    raise FileNotFoundError(
        f"{path}: no model spec found (looked for {run / 'students' / variant / SPEC_FILE}); "
        "pass --spec MODEL_DIR"
    )


_JOINT_TO_STUDENT = {"shared_bottom": "bottom", "student_tower": "tower", "teacher_tower": None}
_HEADS_TO_MODEL = {"model": "", "heads": None}
_PROJECTIONS_TO_MODEL = {"model": "", "projections": None}


def _serving_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The serving model's weights from a training state dict: ``model.*`` of a quantile-heads
    wrapper or of an intermediate-distillation wrapper (its projections dropped, if any);
    ``shared_bottom.*`` + ``student_tower.*`` of a joint model (as ``bottom.*`` and
    ``tower.*``, the keys of ``JointModel.student()``). Other state dicts pass unchanged."""
    prefixes = {key.split(".", 1)[0] for key in state}
    for renames in (_HEADS_TO_MODEL, _PROJECTIONS_TO_MODEL, _JOINT_TO_STUDENT):
        if prefixes == set(renames) or prefixes == {"model"} <= set(renames):
            return _renamed(state, renames)
    return state


def _renamed(state: dict[str, torch.Tensor], renames: dict) -> dict[str, torch.Tensor]:
    kept = {}
    for key, value in state.items():
        prefix, rest = key.split(".", 1)
        if renames[prefix] is not None:
            kept[f"{renames[prefix]}.{rest}".lstrip(".")] = value
    return kept


def _check_state(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        key, kind = (missing[0], "missing") if missing else (unexpected[0], "unexpected")
        raise ValueError(f"{what}: {kind} key {key!r}")
    for key, value in expected.items():
        if value.shape != state[key].shape:
            raise ValueError(
                f"{what}: key {key!r} has shape {tuple(state[key].shape)}, "
                f"the spec needs {tuple(value.shape)}"
            )


def random_inputs(model: nn.Module, rows: int = 256) -> Inputs:
    """Random inputs of the model's input sizes (for latency and the ONNX check without data):
    ``randn(rows, in_features)`` for dense models, random ids (and no values) for models with
    a ``FieldEmbedding`` bottom, random token ids ``(rows, num_fields)`` for token models
    (an ``nn.Embedding`` and a ``num_fields`` attribute, e.g. ``NextTokenLM``).

    Raises:
        ValueError: the input size cannot be read from the model.
    """
    generator = torch.Generator().manual_seed(0)
    embedding = next((m for m in model.modules() if isinstance(m, models.FieldEmbedding)), None)
    if embedding is not None:
        shape = (rows, embedding.num_fields)
        ids = torch.randint(1, embedding.num_embeddings, shape, generator=generator)
        if embedding.dense_features:
            dense = torch.randn(rows, embedding.dense_features, generator=generator)
            return ids, torch.ones(shape), dense
        return ids
    table = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    if table is not None and isinstance(getattr(model, "num_fields", None), int):
        shape = (rows, model.num_fields)
        return torch.randint(0, table.num_embeddings, shape, generator=generator)
    in_features = next((m.in_features for m in model.modules() if hasattr(m, "in_features")), None)
    if in_features is None:
        raise ValueError(
            f"cannot make an example input for {type(model).__name__}: export it from a run "
            "directory, whose data gives the inputs"
        )
    return torch.randn(rows, in_features, generator=generator)
