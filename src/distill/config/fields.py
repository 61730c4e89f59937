"""Shared pieces of the run-config schema: value types with range checks and the base section."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from distill._validation import _interval, check_number

Track = Literal["classification", "ranking", "ctr"]
DEFAULT_METRIC = {"classification": "accuracy", "ranking": "ndcg@10", "ctr": "auc"}


def _in_interval(low=None, high=None, *, low_open=False, high_open=False):
    """An AfterValidator that words range errors like ``distill._validation``."""

    def check(value: float) -> float:
        try:
            return check_number(
                "value", value, low=low, high=high, low_open=low_open, high_open=high_open
            )
        except (TypeError, ValueError) as error:
            raise ValueError(str(error).removeprefix("`value` ")) from None

    check.interval = _interval(low, high, low_open, high_open)  # shown in docs/config.md
    return AfterValidator(check)


def _check_penalty(spec: Any) -> Any:
    """Validate a penalty spec with ``distill.penalties.get`` (a name or a mapping)."""
    from distill import penalties

    if not isinstance(spec, (str, dict)):
        raise ValueError(f"must be a penalty name or table, got {spec!r}")
    penalties.get(spec)
    return spec


def _check_transform(spec: Any) -> Any:
    """Validate a teacher-transform spec with ``distill.teacher_transforms.get``."""
    from distill import teacher_transforms

    if not isinstance(spec, (str, dict)):
        raise ValueError(f"must be a teacher-transform name or table, got {spec!r}")
    teacher_transforms.get(spec)
    return spec


def _path_component(name: str) -> str:
    """A name used as one folder of the run (``runs/<name>``, ``students/<variant>``)."""
    if name in (".", ".."):
        raise ValueError(f"must be a single folder name, not '.' or '..', got {name!r}")
    return name


Number = Annotated[float, Field(strict=True)]  # an int or a float; `true` is not 1
Flag = Annotated[bool, Field(strict=True)]  # `true` or `false`, not 1 or "yes"
Positive = Annotated[Number, _in_interval(0, math.inf, low_open=True, high_open=True)]
NonNegative = Annotated[Number, _in_interval(0, math.inf, high_open=True)]
UnitClosed = Annotated[Number, _in_interval(0, 1)]
UnitOpen = Annotated[Number, _in_interval(0, 1, low_open=True, high_open=True)]
PositiveInt = Annotated[int, Field(ge=1, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
PenaltySpec = Annotated[Any, AfterValidator(_check_penalty)]
TransformSpec = Annotated[Any, AfterValidator(_check_transform)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)
