"""The fused path of an elementwise rule: a CPU parameter group through one C++ kernel of
:mod:`optlab.optim.fused_cpu` (IMO, MAMGD), prepared once and reused between steps.

:class:`FusedSteps` is mixed into :class:`~optlab.optim.elementwise.ElementwiseOptimizer`;
it decides whether a group takes the kernel (``_takes_fused``), plans its launches (one per
dtype and state presence) and runs them; tensors the kernel cannot take (another dtype,
non-contiguous, memory shared with another tensor) go back to the optimizer's loop
(``_run_rest``) in the same step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from optlab.optim import fused_cpu
from optlab.optim.errors import UnsupportedError
from optlab.optim.members import has_members, per_member

_FUSED_WARNED: set[str] = set()
"""Rules that already warned that fused=True found no kernels (warn once per process)."""


class FusedSteps:
    """The fused-kernel path of :class:`~optlab.optim.elementwise.ElementwiseOptimizer`
    (a mixin: it uses the optimizer's ``fused_rule``, ``state_names``, ``_fused_plans``,
    ``_fused_scalars`` and ``_run_rest``)."""

    fused_rule: str | None
    state_names: tuple[str, ...]
    _fused_plans: dict[int, FusedPlan]

    def _takes_fused(self, group: dict[str, Any], params: list[torch.Tensor]) -> bool:
        """Whether the group takes the fused kernel: asked for (``fused=True``), or by
        default (every path flag ``None``) where a parameter has a kernel dtype; and the rule
        has a kernel, the group is on CPU and the kernels are built. With ``fused=True`` a
        parameter elsewhere than on CPU raises, and kernels that cannot be built warn once
        (the step then takes the eager loop)."""
        if self.fused_rule is None:
            return False
        asked = bool(group["fused"])
        if not asked and (
            any(group[flag] is not None for flag in ("fused", "compiled", "foreach"))
            or not any(param.dtype in fused_cpu.DTYPES for param in params)
        ):
            return False
        name = type(self).__name__
        device = next((param.device for param in params if param.device.type != "cpu"), None)
        if device is not None:
            if asked:
                raise UnsupportedError(
                    f"{name}: fused=True runs on CPU tensors only, got a parameter on "
                    f"{device}; on GPU leave fused unset (the flat layout, "
                    "optlab.optim.flatten_parameters, or compiled=True compile the step there)"
                )
            return False
        if fused_cpu.available():
            return True
        if asked and name not in _FUSED_WARNED:
            _FUSED_WARNED.add(name)
            warnings.warn(
                f"{name}: fused=True but the fused CPU kernels are unavailable "
                f"({fused_cpu.unavailable_reason()}); taking the eager per-tensor loop",
                RuntimeWarning,
                stacklevel=4,
            )
        return False

    def _run_fused(
        self,
        index: int,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        steps: list[int],
    ) -> None:
        """The group through the fused kernel: one launch per dtype, prepared once and
        reused while the parameters (same objects, addresses, sizes, dtypes and layouts)
        and state tensors (same objects and addresses) stay as they were; the gradients are
        checked and re-pointed every step. Tensors the kernel cannot take (another dtype,
        non-contiguous, memory shared with another parameter or state) go through the loop,
        compiled where the default would compile."""
        state_tensors = [state[name] for state in states for name in self.state_names]
        members = group["lr"].numel() if has_members(group) else 1
        plan = self._fused_plans.get(index)
        if plan is None or plan.members != members or not plan.matches(params, state_tensors):
            plan = self._plan_fused(params, states, state_tensors, members)
            self._fused_plans[index] = plan
        if members > 1:  # refuse before any parameter moves, as the loop does
            for i in plan.rest:
                per_member(group["lr"], params[i])
        rest = list(plan.rest)
        for positions, launch in plan.launches:
            bucket_grads = [grads[i] for i in positions]
            step = steps[positions[0]]
            if any(steps[i] != step for i in positions) or not all(
                fused_cpu.fits(grads[i], params[i]) for i in positions
            ):
                rest.extend(positions)  # rare: the loop takes them this step
                continue
            launch.point(1, bucket_grads)
            launch.run(self._fused_scalars(group, step))
        if rest:
            self._run_rest(
                group,
                [params[i] for i in rest],
                [grads[i] for i in rest],
                [states[i] for i in rest],
                [steps[i] for i in rest],
                compiled=group["fused"] is None and group["compiled"] is not False,
            )

    def _plan_fused(
        self,
        params: list[torch.Tensor],
        states: list[dict[str, Any]],
        state_tensors: list[torch.Tensor | None],
        members: int,
    ) -> FusedPlan:
        assert self.fused_rule is not None
        buckets: dict[tuple[torch.dtype, tuple[bool, ...]], list[int]] = {}
        rest: list[int] = []
        width = 1 + len(self.state_names)
        shared = {
            index // width
            for index in fused_cpu.overlapping(
                [
                    t
                    for param, state in zip(params, states, strict=True)
                    for t in (param, *(state[name] for name in self.state_names))
                ]
            )
        }
        for position, (param, state) in enumerate(zip(params, states, strict=True)):
            tensors = [param, *(state[name] for name in self.state_names)]
            if (
                position not in shared
                and fused_cpu.fits_members(param, members)
                and param.dtype in fused_cpu.DTYPES
                and all(fused_cpu.fits(t, param) for t in tensors)
            ):
                absent = tuple(tensor is None for tensor in tensors)
                buckets.setdefault((param.dtype, absent), []).append(position)
            else:
                rest.append(position)
        launches = []
        for positions in buckets.values():
            kinds: list[list[torch.Tensor] | None] = [[params[i] for i in positions], None]
            for name in self.state_names:
                entries = [states[i][name] for i in positions]
                kinds.append(None if entries[0] is None else entries)
            launch = fused_cpu.Launch(self.fused_rule, kinds, members=members)
            launches.append((positions, launch))
        return FusedPlan(
            params=list(params),
            state_tensors=state_tensors,
            signature=plan_signature(params, state_tensors),
            members=members,
            launches=launches,
            rest=rest,
        )


@dataclass(eq=False)
class FusedPlan:
    """The fused launches of one parameter group, valid while its parameters and state
    tensors are the same objects at the same addresses."""

    params: list[torch.Tensor]
    state_tensors: list[torch.Tensor | None]
    signature: list[Any]
    launches: list[tuple[list[int], fused_cpu.Launch]]
    rest: list[int]
    members: int

    def matches(self, params: list[torch.Tensor], state_tensors: list[torch.Tensor | None]) -> bool:
        return (
            len(params) == len(self.params)
            and len(state_tensors) == len(self.state_tensors)
            and all(a is b for a, b in zip(params, self.params, strict=True))
            and all(a is b for a, b in zip(state_tensors, self.state_tensors, strict=True))
            and plan_signature(params, state_tensors) == self.signature
        )


def plan_signature(
    params: list[torch.Tensor], state_tensors: list[torch.Tensor | None]
) -> list[Any]:
    """What a prepared launch relies on: each parameter's address, shape, dtype and layout
    (``param.data = ...`` may change any of them in the same object), each state tensor's
    address (state tensors are the optimizer's: replaced, never reshaped)."""
    return [
        (param.data_ptr(), param.shape, param.dtype, param.is_contiguous()) for param in params
    ] + [None if tensor is None else tensor.data_ptr() for tensor in state_tensors]
