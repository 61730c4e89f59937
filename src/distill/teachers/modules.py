"""Teachers that are torch modules: in memory, loaded from disk, or an ensemble of them."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import safetensors.torch
import torch
from torch import nn

from distill import models
from distill._validation import check_choice, check_number, check_positive_int
from distill.teachers._common import TeacherSize
from distill.teachers.cache import fingerprint_tensors
from distill.temperature import log_softmax_t, softmax_t, top_k_probs

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl")


@runtime_checkable
class Teacher(Protocol):
    """What every teacher source provides."""

    def predict(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Raw logits ``(N,)`` or ``(N, C)`` for rows with these features and example ids.

        Sources may also accept ``values=`` (the ``feature_values`` of weighted sparse rows);
        :func:`score` and ``fit`` pass it for rows that have feature values.
        """
        ...

    def fingerprint(self) -> str:
        """A hex digest that changes whenever the teacher's outputs may change."""
        ...


def fingerprint_module(module: nn.Module) -> str:
    """SHA-256 of a module's weights: every ``state_dict`` entry, sorted by name.

    Example:
        >>> fingerprint_module(nn.Linear(2, 1))[:8]  # doctest: +SKIP
        '3f0c9a1e'
    """
    return fingerprint_tensors(sorted(module.state_dict().items()))


class ModuleTeacher:
    """An in-memory ``nn.Module`` as a teacher: run in ``eval()`` under ``inference_mode``.

    The module is never updated; its training flag is restored after each call. The output is
    a normal (non-inference) tensor, so it can serve as a loss target.

    Args:
        module: maps a features batch ``(N, D)`` (or ids ``(N, F)``) to logits.

    Reference: docs/guarantees.md; US 2023/0252281 ¶0043 (a trained teacher's predictions as
    labels).

    Example:
        >>> teacher = ModuleTeacher(nn.Linear(4, 3))
        >>> teacher.predict(torch.rand(2, 4), torch.arange(2)).shape
        torch.Size([2, 3])
    """

    def __init__(self, module: nn.Module) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"`module` must be an nn.Module, got {type(module).__name__}")
        self.module = module

    def predict(
        self, features: torch.Tensor, ids: torch.Tensor, *, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher logits ``module(features)`` (or ``module(features, values)``); ids unused."""
        inputs = (features,) if values is None else (features, values)
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.inference_mode():
                logits = self.module(*inputs)
        finally:
            self.module.train(was_training)
        return logits.clone()

    def fingerprint(self) -> str:
        """:func:`fingerprint_module` of the module."""
        return fingerprint_module(self.module)

    def size(self) -> TeacherSize:
        """Parameters and in-memory bytes of the module (``distill.models``' counts)."""
        return TeacherSize(
            params=models.count_parameters(self.module), size_bytes=models.size_bytes(self.module)
        )

    def __repr__(self) -> str:
        return f"ModuleTeacher({type(self.module).__name__})"


def load_module_teacher(
    path: str | os.PathLike, *, trust: bool = False, spec: dict[str, Any] | None = None
) -> ModuleTeacher:
    """Load a torch-module teacher from disk (``load_teacher(..., kind="distill")``).

    - a directory written by :func:`distill.models.save` (``model.json`` + safetensors);
    - a ``.safetensors`` weights file plus ``spec`` (``{"name": "MLP" | "pkg.module:Class",
      "kwargs": {...}}``, built by :func:`distill.models.build`);
    - a pickled full module (``.pt``/``.pth``/``.pkl``): unpickling can run arbitrary code, so
      it loads only with ``trust=True`` (the CLI's ``--trust``).

    A spec naming an import path (``"pkg.module:Class"``, in ``model.json`` or ``spec``) imports
    that module, which runs its code: it too needs ``trust=True``.

    Args:
        path: the directory or file.
        trust: allow unpickling a full module from this file, and import-path model names.
        spec: model spec for a bare ``.safetensors`` file.

    Returns:
        A :class:`ModuleTeacher` (on the CPU).

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: a pickle or an import path without ``trust``, a ``.safetensors`` file
            without ``spec`` or
            with weights that do not fit it, an unknown file type.
        TypeError: a pickle that does not hold an ``nn.Module``.

    Reference: docs/guarantees.md (safetensors / ``weights_only``; pickles only with
    ``trust``).

    Example:
        >>> teacher = load_module_teacher("runs/demo/teacher")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        return ModuleTeacher(models.load(path, trust=trust))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such teacher file or model directory")
    if path.suffix == ".safetensors":
        return ModuleTeacher(_load_safetensors(path, spec, trust))
    if path.suffix not in PICKLE_SUFFIXES:
        raise ValueError(
            f"{path}: a teacher is a model directory, a .safetensors file with a spec, or a "
            f"pickled module ({', '.join(PICKLE_SUFFIXES)})"
        )
    if not trust:
        raise ValueError(
            f"{path} is a pickled module, and unpickling can run arbitrary code: load it only "
            "if you trust its source, with trust=True (CLI: --trust), or re-save it with "
            "distill.models.save"
        )
    module = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(module, nn.Module):
        raise TypeError(f"{path} holds a {type(module).__name__}, not an nn.Module")
    return ModuleTeacher(module)


def _load_safetensors(path: Path, spec: dict[str, Any] | None, trust: bool) -> nn.Module:
    if spec is None:
        raise ValueError(f"{path}: a bare .safetensors file needs `spec` to build the model")
    module = models.build(spec, trust=trust)
    try:
        module.load_state_dict(safetensors.torch.load_file(path), strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit spec {spec['name']!r}: {error}") from error
    return module.eval()


class EnsembleTeacher:
    """Average K teachers' distributions, returned as logits (docs/formulas.md#classification-kd).

    Returns ``T · log p̄`` (binary: ``T · logit p̄``), so that ``softmax_t(·, T)``
    (``sigmoid_t(·, T)``) gives the ensemble distribution back:

    - arithmetic: ``p̄ = (1/K) Σ_k softmax_T(v_k)``, computed in the log domain
      (``logsumexp_k log_softmax_T(v_k) − log K``), so it never under- or overflows;
    - geometric: ``p̃ = softmax_T(mean_k v_k)``, returned as ``mean_k v_k``;
    - ``top_k`` (multiclass): keep the k largest ensemble probabilities and renormalise
      (KD-topk); the dropped classes get logit ``−inf`` (probability 0).

    Args:
        teachers: the K member teachers (each with ``predict`` and ``fingerprint``).
        mean: ``"arithmetic"`` or ``"geometric"``.
        temperature: T in (0, inf) at which the members are softened.
        top_k: keep this many classes, or None.
        binary: members give sigmoid logits ``(N,)`` instead of class logits ``(N, C)``.

    Raises:
        ValueError: no members, bad ``mean``/``temperature``/``top_k``, ``top_k`` with
            ``binary``.

    Reference: Hinton et al. (2015) §2; Tang et al. (2020) KD-topk.

    Example:
        >>> ensemble = EnsembleTeacher([teacher_a, teacher_b], mean="arithmetic", temperature=2)
        >>> probs = softmax_t(ensemble.predict(x, ids), 2.0)  # doctest: +SKIP
    """

    def __init__(
        self,
        teachers: Sequence[Teacher],
        *,
        mean: Literal["arithmetic", "geometric"] = "arithmetic",
        temperature: float = 1.0,
        top_k: int | None = None,
        binary: bool = False,
    ) -> None:
        if len(teachers) == 0:
            raise ValueError("`teachers` must hold at least one teacher, got 0")
        self.teachers = list(teachers)
        self.mean = check_choice("mean", mean, ("arithmetic", "geometric"))
        self.temperature = check_number(
            "temperature", temperature, low=0.0, high=math.inf, low_open=True, high_open=True
        )
        if top_k is not None:
            check_positive_int("top_k", top_k)
            if binary:
                raise ValueError("`top_k` applies to multiclass teachers, not binary=True")
        self.top_k, self.binary = top_k, binary

    def predict(
        self, features: torch.Tensor, ids: torch.Tensor, *, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Ensemble logits ``T·log p̄`` of the members' predictions for this batch."""
        extra = {} if values is None else {"values": values}
        members = torch.stack([t.predict(features, ids, **extra) for t in self.teachers])
        if self.mean == "geometric":
            logits = members.mean(dim=0)
        elif self.binary:
            logits = self._arithmetic_binary(members)
        else:
            logits = self._arithmetic_multiclass(members)
        if self.top_k is not None:
            probs = top_k_probs(softmax_t(logits.double(), self.temperature), self.top_k)
            logits = (self.temperature * probs.log()).to(members.dtype)
        return logits

    def _arithmetic_multiclass(self, members: torch.Tensor) -> torch.Tensor:
        log_probs = log_softmax_t(members, self.temperature, dim=-1)
        log_mean = torch.logsumexp(log_probs, dim=0) - math.log(len(members))
        return self.temperature * log_mean

    def _arithmetic_binary(self, members: torch.Tensor) -> torch.Tensor:
        scaled = members / self.temperature
        log_p = torch.logsumexp(nn.functional.logsigmoid(scaled), dim=0)
        log_not_p = torch.logsumexp(nn.functional.logsigmoid(-scaled), dim=0)
        return self.temperature * (log_p - log_not_p)

    def fingerprint(self) -> str:
        """SHA-256 of the members' fingerprints and the ensemble settings."""
        settings = {
            "members": [t.fingerprint() for t in self.teachers],
            "mean": self.mean,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "binary": self.binary,
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()

    def __repr__(self) -> str:
        return (
            f"EnsembleTeacher(k={len(self.teachers)}, mean={self.mean!r}, "
            f"temperature={self.temperature}, top_k={self.top_k}, binary={self.binary})"
        )
