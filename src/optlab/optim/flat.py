"""The flat layout: a model's parameters and gradients as views into one buffer.

An elementwise step is memory-bound, and on a model of many tensors the cost that is left
above the memory floor is per-tensor: a kernel launch on GPU, a Python call and a compiled
function's guards on CPU. :func:`flatten_parameters` removes it. It places the parameters of
each (device, dtype) in one contiguous 1-D buffer and makes every parameter, and its
``.grad``, a view into the buffer (and a gradient buffer beside it)::

    layout = flatten_parameters(model)          # before creating the optimizer
    optimizer = optlab.optim.IMO(model.parameters())
    for batch in data:
        optimizer.zero_grad(set_to_none=False)  # keeps the gradients in the buffer
        loss_fn(model, batch).backward()        # autograd accumulates into the views
        optimizer.step()                        # ONE compiled kernel per group

What stays the same for the user: the ``nn.Parameter`` objects (``model.parameters()``,
tied weights, hooks), their shapes, ``model.state_dict()`` and ``optimizer.state_dict()``
(per parameter, as always; a state dict saved from either path loads into the other).

How an optlab elementwise optimizer uses it (:class:`~optlab.optim.ElementwiseOptimizer`):
when the parameters of a group, in the group's order, occupy consecutive ranges of one
buffer and every one has a gradient, the step runs once over the whole range: parameter,
gradient and each state tensor are 1-D spans, and the per-parameter state entries are views
into flat state buffers that the optimizer owns. Otherwise (a parameter without a gradient,
per-member learning rates, different step counts) it takes the per-tensor path, which is
correct on views too.

Gradients: ``zero_grad()`` sets gradients to ``None`` by default (torch's convention), and
the next backward then allocates fresh gradient tensors outside the buffer. The step
detects every gradient that is not its view of the buffer, copies it into the buffer and
re-binds ``param.grad`` to the view, so a stale buffer is never read; the copy costs one
extra pass over the gradients. ``zero_grad(set_to_none=False)`` (or
:meth:`FlatLayout.zero_grad`) keeps the gradients where they are and avoids it.

Re-assigning ``param.data`` to another tensor takes the parameter out of the layout (the
optimizer notices and uses the per-tensor path for its group).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch.utils.weak import WeakTensorKeyDictionary

from optlab.optim.errors import OptlabError

__all__ = ["FlatBuffer", "FlatLayout", "FlatLayoutError", "flat_span", "flatten_parameters"]


class FlatLayoutError(OptlabError):
    """The parameters given cannot be placed in a flat layout (see the message)."""


@dataclass(eq=False)
class FlatBuffer:
    """The parameters of one (device, dtype) in one contiguous buffer.

    ``params`` and ``grads`` are 1-D tensors of ``numel`` elements; member ``i`` occupies
    ``[offsets[i], offsets[i] + members[i].numel())`` of both.
    """

    params: torch.Tensor
    grads: torch.Tensor
    members: list[torch.Tensor] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)

    @property
    def numel(self) -> int:
        return self.params.numel()

    def grad_view(self, position: int) -> torch.Tensor:
        """Member ``position``'s view of the gradient buffer, shaped like the member."""
        member, offset = self.members[position], self.offsets[position]
        return self.grads[offset : offset + member.numel()].view_as(member)

    def zero_grad(self) -> None:
        """Zero the gradient buffer and point every member's ``.grad`` at its view."""
        self.grads.zero_()
        for position, member in enumerate(self.members):
            member.grad = self.grad_view(position)


@dataclass(eq=False)
class FlatLayout:
    """What :func:`flatten_parameters` did: one :class:`FlatBuffer` per (device, dtype)."""

    buffers: list[FlatBuffer]

    def zero_grad(self) -> None:
        """Zero every gradient buffer (one fill each); gradients stay views of the buffers."""
        for buffer in self.buffers:
            buffer.zero_grad()

    @property
    def numel(self) -> int:
        return sum(buffer.numel for buffer in self.buffers)


# parameter -> (its buffer, its offset); weak, so a layout dies with its model
_LOCATIONS = WeakTensorKeyDictionary()


def flatten_parameters(params: torch.nn.Module | Iterable[torch.Tensor]) -> FlatLayout:
    """Place ``params`` (a module's parameters, or any parameters) in one buffer per
    (device, dtype); every parameter and its gradient become views into it (see the
    module docstring). Call it before creating the optimizer (an optimizer that already
    holds state keeps working: it re-gathers its state at the next step).

    Raises:
        FlatLayoutError: a parameter is sparse, complex, not a leaf, or already in a layout.
    """
    if isinstance(params, torch.nn.Module):
        members = list(dict.fromkeys(params.parameters()))  # tied weights once
    else:
        members = list(dict.fromkeys(params))
    if not members:
        raise FlatLayoutError("flatten_parameters: no parameters given")
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for position, param in enumerate(members):
        if not isinstance(param, torch.Tensor):
            raise FlatLayoutError(
                f"flatten_parameters: parameter {position} is a {type(param).__name__}, "
                "expected a torch.Tensor"
            )
        if param.is_sparse or torch.is_complex(param) or not param.is_leaf:
            raise FlatLayoutError(
                f"flatten_parameters: parameter {position} (shape {tuple(param.shape)}) must "
                "be a dense, real, leaf tensor"
            )
        if param in _LOCATIONS:
            raise FlatLayoutError(
                f"flatten_parameters: parameter {position} (shape {tuple(param.shape)}) is "
                "already in a flat layout"
            )
        groups.setdefault((param.device, param.dtype), []).append(param)
    buffers = []
    with torch.no_grad():
        for (device, dtype), group in groups.items():
            total = sum(param.numel() for param in group)
            buffer = FlatBuffer(
                params=torch.empty(total, device=device, dtype=dtype),
                grads=torch.zeros(total, device=device, dtype=dtype),
            )
            offset = 0
            for param in group:
                view = buffer.params[offset : offset + param.numel()].view_as(param)
                view.copy_(param)
                grad = param.grad
                param.data = view
                buffer.members.append(param)
                buffer.offsets.append(offset)
                if grad is not None:
                    buffer.grads[offset : offset + param.numel()].copy_(grad.reshape(-1))
                    param.grad = buffer.grad_view(len(buffer.members) - 1)
                _LOCATIONS[param] = (buffer, len(buffer.members) - 1)
                offset += param.numel()
            buffers.append(buffer)
    return FlatLayout(buffers)


def _is_view_at(tensor: torch.Tensor, base: torch.Tensor, offset: int, like: torch.Tensor) -> bool:
    return (
        tensor.data_ptr() == base.data_ptr() + offset * base.element_size()
        and tensor.dtype == base.dtype
        and tensor.shape == like.shape
        and tensor.is_contiguous()
    )


def in_flat_layout(param: torch.Tensor) -> bool:
    """Whether ``param`` was placed in a flat layout (it may have left it since)."""
    return param in _LOCATIONS


def flat_span(params: list[torch.Tensor]) -> tuple[FlatBuffer, int, int] | None:
    """``(buffer, start, stop)`` when ``params``, in this order, occupy consecutive ranges
    ``[start, stop)`` of one flat buffer (and still are its views); otherwise ``None``."""
    if not params:
        return None
    location = _LOCATIONS.get(params[0])
    if location is None:
        return None
    buffer, position = location
    start = expected = buffer.offsets[position]
    for param in params:
        location = _LOCATIONS.get(param)
        if location is None or location[0] is not buffer:
            return None
        offset = buffer.offsets[location[1]]
        if offset != expected or not _is_view_at(param, buffer.params, offset, param):
            return None
        expected = offset + param.numel()
    return buffer, start, expected


def bind_gradients(buffer: FlatBuffer, params: list[torch.Tensor]) -> int:
    """Make each ``param.grad`` its view of ``buffer.grads``: a gradient that lives
    elsewhere (e.g. allocated by backward after ``zero_grad()`` set it to ``None``) is
    copied into the buffer first. Returns how many were copied. Every param must have a
    gradient and be a member of ``buffer``."""
    copied = 0
    for param in params:
        position = _LOCATIONS[param][1]
        offset = buffer.offsets[position]
        grad = param.grad
        if grad is None:
            raise FlatLayoutError("bind_gradients: a parameter has no gradient")
        if not _is_view_at(grad, buffer.grads, offset, param):
            view = buffer.grad_view(position)
            view.copy_(grad)
            param.grad = view
            copied += 1
    return copied
