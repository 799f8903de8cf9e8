"""Validation of optimizer hyperparameters, shared by optlab's classes and the registry.

Every check raises ``TypeError`` (wrong type) or ``ValueError`` (wrong value), as torch's
constructors do, with a message that names the optimizer, the field, the value given and
what is allowed, e.g. ``IMO: lr must be a finite number >= 0, got -0.1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from optlab.optim.errors import InvalidTypeError, InvalidValueError


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})" if not isinstance(value, float) else repr(value)


def _as_real(owner: str, field: str, value: Any, *, allow_tensor: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise InvalidTypeError(f"{owner}: {field} must be a real number, got {_describe(value)}")
    if isinstance(value, torch.Tensor):
        if not allow_tensor:
            raise InvalidTypeError(f"{owner}: {field} must be a Python number, got a Tensor")
        if value.numel() != 1 or value.is_complex() or not value.is_floating_point():
            raise InvalidTypeError(
                f"{owner}: {field} as a Tensor must hold one real floating-point value, "
                f"got shape {tuple(value.shape)} and dtype {value.dtype}"
            )
        return float(value.detach().cpu().item())
    return float(value)


def check_real(
    owner: str,
    field: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allow_tensor: bool = False,
) -> float:
    """Check that ``value`` is a finite real number within the given bounds; return it.

    ``low``/``high`` of ``None`` mean unbounded on that side.
    """
    number = _as_real(owner, field, value, allow_tensor=allow_tensor)
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_inclusive else '>'} {low:g}")
    if high is not None:
        parts.append(f"{'<=' if high_inclusive else '<'} {high:g}")
    allowed = "a finite number" + (" " + " and ".join(parts) if parts else "")
    ok = math.isfinite(number)
    if ok and low is not None:
        ok = number >= low if low_inclusive else number > low
    if ok and high is not None:
        ok = number <= high if high_inclusive else number < high
    if not ok:
        raise InvalidValueError(f"{owner}: {field} must be {allowed}, got {value!r}")
    return number


MAX_LR = float(torch.finfo(torch.float32).max)
"""The largest learning rate accepted: the largest float32 (about 3.4e38). A larger one
cannot be held by float32 parameters (torch's kernels then fail on it mid-run, or a
population's stacked rates overflow to inf and diverge)."""


def check_learning_rate(owner: str, value: Any) -> float:
    """lr: a finite number >= 0 and <= :data:`MAX_LR` (a one-element Tensor is accepted,
    as in torch)."""
    return check_real(owner, "lr", value, low=0.0, high=MAX_LR, allow_tensor=True)


def check_member_learning_rates(owner: str, value: Any) -> float | torch.Tensor:
    """lr: as :func:`check_learning_rate`, or a 1-D floating tensor of per-member learning
    rates (each finite and >= 0), one per slice along the leading population axis of the
    parameters (optlab's elementwise rules only)."""
    if isinstance(value, torch.Tensor) and value.dim() == 1 and value.numel() > 1:
        if not value.is_floating_point():
            raise InvalidTypeError(
                f"{owner}: lr as per-member learning rates must be a floating tensor, "
                f"got dtype {value.dtype}"
            )
        if (
            not bool(torch.isfinite(value).all())
            or bool((value < 0).any())
            or bool((value > MAX_LR).any())
        ):
            raise InvalidValueError(
                f"{owner}: lr must hold finite numbers >= 0 and <= {MAX_LR:g}, "
                f"got {value.tolist()!r}"
            )
        return value
    return check_learning_rate(owner, value)


def check_unit_interval(owner: str, field: str, value: Any) -> float:
    """A decay/momentum coefficient in [0, 1)."""
    return check_real(owner, field, value, low=0.0, high=1.0, high_inclusive=False)


def check_betas(owner: str, value: Any, field: str = "betas") -> tuple[float, float]:
    """A pair (beta1, beta2), each in [0, 1)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise InvalidTypeError(
            f"{owner}: {field} must be a pair (beta1, beta2) of numbers in [0, 1), "
            f"got {_describe(value)}"
        )
    first = check_unit_interval(owner, f"{field}[0]", value[0])
    second = check_unit_interval(owner, f"{field}[1]", value[1])
    return first, second


def check_non_negative(owner: str, field: str, value: Any) -> float:
    """A finite number >= 0."""
    return check_real(owner, field, value, low=0.0)


def check_positive(owner: str, field: str, value: Any) -> float:
    """A finite number > 0."""
    return check_real(owner, field, value, low=0.0, low_inclusive=False)


def check_bool(owner: str, field: str, value: Any) -> bool:
    """A plain bool (not a number that happens to be 0 or 1)."""
    if not isinstance(value, bool):
        raise InvalidTypeError(f"{owner}: {field} must be True or False, got {_describe(value)}")
    return value


def check_optional_bool(owner: str, field: str, value: Any) -> bool | None:
    """None (let optlab choose) or a plain bool."""
    return None if value is None else check_bool(owner, field, value)


def check_choice(owner: str, field: str, value: Any, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if value not in choices or not isinstance(value, str):
        allowed = ", ".join(repr(choice) for choice in choices)
        raise InvalidValueError(f"{owner}: {field} must be one of {allowed}, got {value!r}")
    return value


def check_positive_int(owner: str, field: str, value: Any) -> int:
    """An int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(f"{owner}: {field} must be an integer >= 1, got {_describe(value)}")
    if value < 1:
        raise InvalidValueError(f"{owner}: {field} must be an integer >= 1, got {value!r}")
    return value


# ------------------------------------------------------------------------ record validators
# ``validator(owner, field, value)``: the shape an :class:`~optlab.optim.spec.OptimizerSpec`
# declares per field.
def learning_rate_field(owner: str, field: str, value: Any) -> float:
    """lr as :func:`check_learning_rate`."""
    return check_learning_rate(owner, value)


def member_learning_rates_field(owner: str, field: str, value: Any) -> float | torch.Tensor:
    """lr as :func:`check_member_learning_rates` (optlab's elementwise rules)."""
    return check_member_learning_rates(owner, value)


def betas_field(owner: str, field: str, value: Any) -> tuple[float, float]:
    """A pair (beta1, beta2) as :func:`check_betas`."""
    return check_betas(owner, value, field)


def one_path(owner: str, hyperparameters: Mapping[str, Any]) -> None:
    """Cross-field check: at most one of the path flags ``foreach``, ``compiled`` and
    ``fused`` is True (each picks the implementation; leaving them None lets optlab or
    torch choose)."""
    chosen = [flag for flag in ("foreach", "compiled", "fused") if hyperparameters.get(flag)]
    if len(chosen) > 1:
        raise InvalidValueError(
            f"{owner}: {' and '.join(flag + '=True' for flag in chosen)} exclude each other; "
            "choose one path (or leave them as None)"
        )


ONE_PATH_VIOLATION = ("fused", {"foreach": True, "fused": True})
"""A kit datum (:class:`optlab.optim.spec.KitData`): what :func:`one_path` must refuse,
naming ``fused``."""


def choice_field(choices: Sequence[str]) -> Callable[[str, str, Any], str]:
    """The validator of a field that takes one of ``choices``."""

    def validator(owner: str, field: str, value: Any) -> str:
        return check_choice(owner, field, value, choices)

    return validator
