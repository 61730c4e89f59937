"""Issue 8 item 6: one KD training epoch, ``distill.train.fit`` vs torchdistill, side by side.

Both train the same student MLP (64-64-10) from the same frozen teacher MLP (64-512-512-10) on
``digits`` tiled to 18k rows, batch 256, AdamW (lr 1e-3, weight decay 0.01), gradient clipping
at 1.0, Hinton KD with T = 4 and soft weight 0.9 (torchdistill's ``KDLoss`` weights the CE term
by ``alpha``, so it gets alpha = 0.1, beta = 0.9). Ours: ``fit`` with an online
``ModuleTeacher`` and ``KDTerm``. Theirs: a ``DistillationBox`` built from a config dict, run
with the pre/post epoch and forward processes of torchdistill's example training loop. Each
timed run includes its setup (``fit``'s, or building the box). Target: ours ÷ theirs ≤ 1.0.

torchdistill lives in the benchmark venv only, installed with ``--no-deps`` (it would replace
torch). torchvision cannot load there (the PyPI wheel needs CUDA libraries), and torchdistill
imports a few torchvision model classes at import time only, so those names are stubbed.

Run: ``.venv-bench/bin/python -m benchmarks.vs_torchdistill [--quick] [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from benchmarks._common import (
    markdown_table,
    parse_args,
    publish,
    time_interleaved,
    train_model,
    write_results,
)
from distill.data import Dataset, load_builtin
from distill.models import MLP
from distill.teachers import ModuleTeacher
from distill.train import KDTerm, Objective

NAME = "vs_torchdistill"
TITLE = "KD epoch time against torchdistill"
BATCH_SIZE, LR, WEIGHT_DECAY, CLIP = 256, 1e-3, 0.01, 1.0  # CLIP: fit's default grad_clip
TEMPERATURE, SOFT_WEIGHT = 4.0, 0.9


def stub_torchvision() -> None:
    """Stand-ins for the torchvision names torchdistill imports (used by its CNN zoo only)."""
    if "torchvision" in sys.modules:
        return
    names = {
        "torchvision": {},
        "torchvision.models": {},
        "torchvision.datasets": {},
        "torchvision.models.densenet": {"_DenseBlock": nn.Module, "_Transition": nn.Module},
        "torchvision.models.resnet": {"BasicBlock": nn.Module, "conv1x1": nn.Identity},
    }
    for name, attributes in names.items():
        module = types.ModuleType(name)
        module.__path__ = []
        module.__dict__.update(attributes)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


def import_torchdistill() -> Any:
    """torchdistill's ``get_distillation_box``, or the reason it cannot be used."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # a broken wheel raises OSError/RuntimeError, not only ImportError
        for name in [n for n in sys.modules if n.startswith("torchvision")]:
            del sys.modules[name]
        stub_torchvision()
    try:
        import torchdistill
        from torchdistill.core.distillation import get_distillation_box
    except ImportError as error:
        return f"torchdistill is not importable here ({error}); run with .venv-bench/bin/python"
    get_distillation_box.version = torchdistill.__version__
    return get_distillation_box


def box_config() -> dict[str, Any]:
    """torchdistill train config: one epoch of KD, AdamW, clipping, no scheduler."""
    hooks = {"input": [], "output": []}
    kd = {
        "student_module_path": ".",
        "student_module_io": "output",
        "teacher_module_path": ".",
        "teacher_module_io": "output",
        "temperature": TEMPERATURE,
        "alpha": 1.0 - SOFT_WEIGHT,
        "beta": SOFT_WEIGHT,
    }
    return {
        "num_epochs": 1,
        "train_data_loader": {
            "dataset_id": "train",
            "sampler": {"class_or_func": torch.utils.data.RandomSampler, "kwargs": {}},
            "kwargs": {"batch_size": BATCH_SIZE, "num_workers": 0},
        },
        "teacher": {"forward_proc": "forward_batch_only", "forward_hook": hooks},
        "student": {"forward_proc": "forward_batch_only", "forward_hook": hooks},
        "optimizer": {
            "key": "AdamW",
            "kwargs": {"lr": LR, "weight_decay": WEIGHT_DECAY},
            "max_grad_norm": CLIP,
        },
        "criterion": {
            "key": "WeightedSumLoss",
            "kwargs": {
                "sub_terms": {"kd": {"criterion": {"key": "KDLoss", "kwargs": kd}, "weight": 1.0}}
            },
        },
    }


def theirs(get_box: Any, data: Dataset, teacher: nn.Module) -> Callable[[], None]:
    """One torchdistill epoch (their example loop), box construction included."""
    dataset = {"train": torch.utils.data.TensorDataset(data.features, data.labels)}
    teacher.requires_grad_(False)

    def run() -> None:
        torch.manual_seed(0)
        box = get_box(teacher, MLP(64, (64,), 10), dataset, box_config(), torch.device("cpu"),
                      None, False, 1)  # fmt: skip
        box.pre_epoch_process(epoch=0)
        for sample_batch, targets, supp_dict in box.train_data_loader:
            box.pre_forward_process(sample_batch=sample_batch, targets=targets, supp_dict=supp_dict)
            loss = box.forward_process(sample_batch, targets, supp_dict)
            box.post_forward_process(loss=loss)
        box.post_epoch_process()

    return run


def ours(data: Dataset, teacher: nn.Module) -> Callable[[], None]:
    """One ``fit`` epoch with the same settings (online teacher)."""
    source = ModuleTeacher(teacher)
    objective = Objective([KDTerm(temperature=TEMPERATURE, alpha=SOFT_WEIGHT)])

    def run() -> None:
        torch.manual_seed(0)
        options = {"batch_size": BATCH_SIZE, "lr": LR, "weight_decay": WEIGHT_DECAY}
        student = MLP(64, (64,), 10)
        train_model(student, data, objective=objective, teacher=source, epochs=1, **options)

    return run


def report(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md section body."""
    if "skipped" in result:
        return f"Not measured: {result['skipped']}."
    times = result["times"]
    ratio = result["ratio"]
    verdict = "met" if ratio <= 1.0 else "MISSED"
    rows = [
        ["distill `fit`", f"{times['distill']['median_s']:.3f}"],
        [
            f"torchdistill {result['torchdistill']} `DistillationBox`",
            f"{times['torchdistill']['median_s']:.3f}",
        ],
    ]
    return f"""Median seconds of one KD epoch ({result["rows"]} rows, batch {BATCH_SIZE}, one
thread) over {result["repeats"]} interleaved repeats after a warm-up.

{markdown_table(["trainer", "epoch s"], rows)}

Ours ÷ theirs: **{ratio:.3f}** (target ≤ 1.0: {verdict}). Differences beyond the loss: `fit`
also runs a warm-up/cosine LR schedule and indexes batches straight from tensors, while
torchdistill's loader collates single rows from a `TensorDataset`, and its forward hooks
copy I/O dicts every step.
"""


def extra_options(parser: argparse.ArgumentParser) -> None:
    """``--repeats N``."""
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Time both trainers, write the JSON and the BENCHMARKS.md section."""
    args = parse_args(NAME, argv, seeds=1, extra=extra_options)
    torch.set_num_threads(1)
    digits = load_builtin("digits")
    tiles = 1 if args.quick else 10
    data = Dataset(digits.features.repeat(tiles, 1), digits.labels.repeat(tiles))
    torch.manual_seed(1)
    teacher = MLP(64, (512, 512), 10)
    get_box = import_torchdistill()
    repeats = 1 if args.quick else args.repeats
    if isinstance(get_box, str):
        result: dict[str, Any] = {"skipped": get_box}
    else:
        times = time_interleaved(
            {"distill": ours(data, teacher), "torchdistill": theirs(get_box, data, teacher)},
            repeats=repeats,
        )
        ratio = times["distill"]["median_s"] / times["torchdistill"]["median_s"]
        result = {"times": times, "ratio": ratio, "torchdistill": get_box.version}
    result |= {"rows": len(data), "repeats": repeats}
    write_results(NAME, args, result)
    publish(TITLE, report(result), args)
    return result


if __name__ == "__main__":
    main()
