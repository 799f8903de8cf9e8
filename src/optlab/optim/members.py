"""Per-member learning rates: a population's parameters stacked along a leading axis may
step with one learning rate per member (a 1-D ``lr`` tensor of N, one per slice)."""

from __future__ import annotations

from typing import Any

import torch

from optlab.optim.errors import InvalidValueError

__all__ = ["has_members", "lr_as_float", "per_member"]


def lr_as_float(lr: float | torch.Tensor) -> float | torch.Tensor:
    """The learning rate of a group as a Python float (a one-element Tensor is read once
    per step), or, for per-member learning rates (a 1-D tensor), a float64 CPU copy."""
    if not isinstance(lr, torch.Tensor):
        return float(lr)
    if lr.numel() > 1:
        return lr.detach().to("cpu", torch.float64)
    return float(lr.detach().cpu().item())


def per_member(value: Any, param: torch.Tensor) -> Any:
    """A per-member scalar (1-D tensor of N) shaped to broadcast over ``param``'s leading
    population axis; anything else as it is."""
    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        return value
    if param.dim() == 0 or param.shape[0] != value.numel():
        raise InvalidValueError(
            f"{value.numel()} per-member learning rates need parameters stacked along a "
            f"leading axis of that size; got a parameter of shape {tuple(param.shape)}"
        )
    return value.to(param.device, param.dtype).reshape(-1, *([1] * (param.dim() - 1)))


def has_members(group: dict[str, Any]) -> bool:
    """The group's lr is per-member (a 1-D tensor of more than one value)."""
    lr = group["lr"]
    return isinstance(lr, torch.Tensor) and lr.numel() > 1
