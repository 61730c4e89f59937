"""Capture the outputs of named submodules of any ``nn.Module`` during a forward pass.

A *layer reference* is a submodule name from ``model.named_modules()`` (``"blocks.0"``),
optionally followed by ``[k]`` to take item k of a tuple output (``"layer.0.attention.self[1]"``:
the attention probabilities of a Hugging Face BERT layer run with ``attn_implementation=
"eager"``). Without ``[k]`` a tuple output gives its first item. Layer maps say which student
layer learns from which teacher layer. Guide: ``docs/intermediate.md``.

Example:
    >>> with capture(student=student, teacher=teacher, student_layers=["blocks.0"],
    ...              teacher_layers=["blocks.1"]) as captured:  # doctest: +SKIP
    ...     student_logits, teacher_logits = captured.forward(x)
    >>> captured.student["blocks.0"].shape, captured.teacher["blocks.1"].shape  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from distill._validation import check_positive_int

_REFERENCE = re.compile(r"^(?P<name>[^\[\]]*)(?:\[(?P<item>\d+)\])?$")


def parse_layer(reference: str) -> tuple[str, int | None]:
    """``"name"`` → ``("name", None)``; ``"name[1]"`` → ``("name", 1)``.

    Raises:
        TypeError / ValueError: not a string, or a malformed ``[k]`` suffix.

    Example:
        >>> parse_layer("encoder.layer.0.attention.self[1]")
        ('encoder.layer.0.attention.self', 1)
    """
    if not isinstance(reference, str):
        raise TypeError(f"a layer reference must be a string, got {type(reference).__name__}")
    match = _REFERENCE.match(reference)
    if match is None:
        raise ValueError(f"layer reference {reference!r} must be 'name' or 'name[k]'")
    item = match["item"]
    return match["name"], None if item is None else int(item)


def find_module(model: nn.Module, name: str, *, what: str = "model") -> nn.Module:
    """The submodule ``name`` of ``model``; an unknown name lists the known ones.

    Raises:
        ValueError: no such submodule (with the closest names and the available ones).

    Example:
        >>> find_module(nn.Sequential(nn.Linear(2, 2)), "0")
        Linear(in_features=2, out_features=2, bias=True)
    """
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    known = [key for key in modules if key]
    close = difflib.get_close_matches(name, known, n=3)
    suggestion = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(known[:40]) + (f", ... ({len(known)} in all)" if len(known) > 40 else "")
    raise ValueError(
        f"{what} ({type(model).__name__}) has no submodule {name!r}{suggestion} "
        f"Available: {shown or '(none)'}"
    )


class LayerRecorder:
    """Forward hooks on the named layers of one model; outputs land in :attr:`outputs`.

    Args:
        model: any ``nn.Module``.
        layers: layer references (see the module docstring), checked before any hook is added.
        detach: store detached outputs (the teacher side).
        what: how the model is named in error messages (``"teacher"``, ``"student"``).

    Raises:
        ValueError: an unknown module name (listing the available ones, with close matches).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> with LayerRecorder(model, ["0"]) as recorder:
        ...     _ = model(torch.zeros(1, 2))
        >>> recorder.get("0").shape
        torch.Size([1, 3])
    """

    def __init__(
        self, model: nn.Module, layers: Sequence[str], *, detach: bool = False, what: str = "model"
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"`{what}` must be an nn.Module, got {type(model).__name__}")
        self.what, self.detach = what, detach
        self.layers = {layer: parse_layer(layer) for layer in layers}
        self.modules = {
            name: find_module(model, name, what=what) for name, _ in self.layers.values()
        }
        self.outputs: dict[str, Any] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> LayerRecorder:
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            self.outputs[name] = output

        return record

    def clear(self) -> None:
        """Forget the recorded outputs (before the next forward)."""
        self.outputs.clear()

    def get(self, reference: str) -> torch.Tensor:
        """The recorded tensor of one layer reference.

        Raises:
            ValueError: the layer did not run in the forward, or its item is None (a module
                that does not expose, e.g., attention) or out of range.
            TypeError: the output (item) is not a tensor.
        """
        name, item = self.layers.get(reference) or parse_layer(reference)
        if name not in self.outputs:
            raise ValueError(
                f"{self.what} layer {name!r} produced no output: it was not recorded or did "
                "not run in the forward pass"
            )
        value = _select(self.outputs[name], item, f"{self.what} layer {reference!r}")
        return value.detach() if self.detach else value


def _select(output: Any, item: int | None, where: str) -> torch.Tensor:
    if isinstance(output, (tuple, list)):
        index = 0 if item is None else item
        if index >= len(output):
            raise ValueError(f"{where}: the output has {len(output)} items, no item {index}")
        output = output[index]
    elif item not in (None, 0):
        raise ValueError(f"{where}: the output is a single {type(output).__name__}, no item {item}")
    if output is None:
        raise ValueError(
            f"{where} returned None: the module does not expose this output (Hugging Face "
            "attention needs attn_implementation='eager' and output_attentions=True)"
        )
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"{where}: expected a tensor output, got {type(output).__name__}")
    return output


@dataclass
class Captured:
    """What :func:`capture` yields: the two recorders and a paired forward.

    ``student[ref]`` / ``teacher[ref]`` read one layer's tensor (teacher ones detached).
    """

    student_recorder: LayerRecorder
    teacher_recorder: LayerRecorder
    student_model: nn.Module
    teacher_model: nn.Module
    student: _View = field(init=False)
    teacher: _View = field(init=False)

    def __post_init__(self) -> None:
        self.student = _View(self.student_recorder)
        self.teacher = _View(self.teacher_recorder)

    def forward(self, student_inputs: Any, teacher_inputs: Any = None) -> tuple[Any, Any]:
        """Run the teacher (``eval()``, under ``no_grad``) then the student on the inputs.

        ``teacher_inputs`` defaults to ``student_inputs``; a tuple is unpacked as positional
        arguments, a dict as keyword arguments. Returns ``(student_output, teacher_output)``.
        """
        self.student_recorder.clear()
        self.teacher_recorder.clear()
        teacher_output = run_frozen(
            self.teacher_model, student_inputs if teacher_inputs is None else teacher_inputs
        )
        return _call(self.student_model, student_inputs), teacher_output


class _View:
    def __init__(self, recorder: LayerRecorder) -> None:
        self._recorder = recorder

    def __getitem__(self, reference: str) -> torch.Tensor:
        return self._recorder.get(reference)

    def keys(self) -> list[str]:
        return list(self._recorder.layers)


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def run_frozen(module: nn.Module, inputs: Any) -> Any:
    """``module(inputs)`` in ``eval()`` mode under ``torch.no_grad``, its mode restored (a
    teacher forward; a tuple is unpacked as positional arguments, a dict as keyword ones).

    Example:
        >>> run_frozen(nn.Linear(2, 1), torch.zeros(3, 2)).requires_grad
        False
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return _call(module, inputs)
    finally:
        module.train(was_training)


@contextmanager
def capture(
    *,
    student: nn.Module,
    teacher: nn.Module,
    student_layers: Sequence[str],
    teacher_layers: Sequence[str],
) -> Iterator[Captured]:
    """Record named layers of a student and a teacher during one (paired) forward pass.

    Every name is checked before any hook is added; the hooks are removed on exit. Use
    :meth:`Captured.forward` to run both models (the teacher in ``eval()`` under ``no_grad``),
    or call them yourself inside the block.

    Args:
        student, teacher: any ``nn.Module``.
        student_layers, teacher_layers: layer references (``"name"`` or ``"name[k]"``).

    Yields:
        A :class:`Captured`: ``captured.student[ref]``, ``captured.teacher[ref]`` (detached).

    Raises:
        ValueError: an unknown module name (listing the available ones, with did-you-mean).

    Example:
        >>> s, t = nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Sequential(nn.Linear(4, 16))
        >>> with capture(student=s, teacher=t, student_layers=["0"], teacher_layers=["0"]) as c:
        ...     _ = c.forward(torch.zeros(2, 4))
        >>> c.student["0"].shape, c.teacher["0"].shape
        (torch.Size([2, 8]), torch.Size([2, 16]))
    """
    student_recorder = LayerRecorder(student, student_layers, what="student")
    teacher_recorder = LayerRecorder(teacher, teacher_layers, detach=True, what="teacher")
    with ExitStack() as stack:
        stack.enter_context(student_recorder)
        stack.enter_context(teacher_recorder)
        yield Captured(student_recorder, teacher_recorder, student, teacher)


def uniform_layer_map(num_student: int, num_teacher: int) -> list[tuple[int, int]]:
    """TinyBERT's uniform map: student layer m learns from teacher layer ``g(m) = m·N/M``.

    Layers are numbered from 1 (0 is the embedding layer, mapped 0 → 0 separately);
    ``m·N/M`` is rounded down when M does not divide N.

    Raises:
        ValueError: a student with more layers than the teacher.

    Reference: Jiao et al. 2019, "TinyBERT", Sec. 3.1 (the mapping function).

    Example:
        >>> uniform_layer_map(2, 4)
        [(1, 2), (2, 4)]
    """
    check_positive_int("num_student", num_student)
    check_positive_int("num_teacher", num_teacher)
    if num_student > num_teacher:
        raise ValueError(
            f"a uniform layer map needs num_student <= num_teacher, got {num_student} > "
            f"{num_teacher}; give explicit pairs"
        )
    return [(m, m * num_teacher // num_student) for m in range(1, num_student + 1)]


def layer_pairs(
    layer_map: str | Sequence[Sequence[int]], num_student: int, num_teacher: int
) -> list[tuple[int, int]]:
    """Resolve a layer map to ``(student_layer, teacher_layer)`` pairs, 1-based.

    Args:
        layer_map: ``"uniform"`` (:func:`uniform_layer_map`) or explicit ``[[m, n], ...]``.
        num_student, num_teacher: layers of each model (M, N).

    Raises:
        ValueError: a map longer than either model, an index outside ``1..M`` / ``1..N``, a
            student layer listed twice, a malformed pair.

    Example:
        >>> layer_pairs([[1, 2], [2, 4]], 2, 4)
        [(1, 2), (2, 4)]
    """
    if layer_map == "uniform":
        return uniform_layer_map(num_student, num_teacher)
    if isinstance(layer_map, str):
        raise ValueError(f"`layer_map` must be 'uniform' or a list of pairs, got {layer_map!r}")
    pairs = [_pair(pair) for pair in layer_map]
    if not pairs or len(pairs) > min(num_student, num_teacher):
        raise ValueError(
            f"`layer_map` must hold 1 to min(student, teacher) = {min(num_student, num_teacher)}"
            f" pairs (the student has {num_student} layers, the teacher {num_teacher}), got "
            f"{len(pairs)}"
        )
    for m, n in pairs:
        if not (1 <= m <= num_student and 1 <= n <= num_teacher):
            raise ValueError(
                f"`layer_map` pair ({m}, {n}) is out of range: student layers are 1..{num_student}"
                f", teacher layers 1..{num_teacher}"
            )
    students = [m for m, _ in pairs]
    if len(set(students)) != len(students):
        raise ValueError(f"`layer_map` lists a student layer twice: {pairs}")
    return pairs


def _pair(pair: Any) -> tuple[int, int]:
    if (
        isinstance(pair, (str, bytes))
        or not isinstance(pair, Sequence)
        or len(pair) != 2
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in pair)
    ):
        raise ValueError(
            f"`layer_map` entries must be [student_layer, teacher_layer], got {pair!r}"
        )
    return int(pair[0]), int(pair[1])
