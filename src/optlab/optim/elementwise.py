"""The machinery shared by optlab's elementwise update rules.

An elementwise rule updates every coordinate of a parameter from that coordinate's
gradient and state alone. A subclass of :class:`ElementwiseOptimizer` states its rule once
per form and this class does the rest, as ``torch.optim`` does for its own optimizers:

- ``_single_tensor_rule`` updates one parameter in place (the per-tensor loop);
- ``_multi_tensor_rule`` updates lists of parameters with ``torch._foreach_*`` ops and gives
  bit-identical numbers (the contract kit checks it);
- the *compiled* path runs ``_single_tensor_rule`` under ``torch.compile`` (one compile per
  rule, dtype and constant hyperparameters: shapes are dynamic, and every per-step scalar
  such as the learning rate enters as a 0-dim tensor, so a scheduler never recompiles);
- the *fused* path (rules that name a kernel in :attr:`ElementwiseOptimizer.fused_rule`:
  IMO, MAMGD) runs the whole group through one C++ kernel of
  :mod:`optlab.optim.fused_cpu`, in one pass over memory, as torch's ``fused=True`` Adam
  does on CPU.

Which path runs (torch's convention, plus fused kernels and compile where they pay):

- with every flag ``None`` (the default), a CPU group takes the fused kernel where the rule
  has one and the kernels could be built (any size: they are built once per machine, about
  1 s, then loaded from a cache); otherwise a CPU group of at least
  :data:`COMPILE_MIN_NUMEL` elements takes the compiled step and a smaller one the loop
  (below that size the one-off compile, about 2 s warm and 20 s cold, costs more than it
  saves), and a CUDA group takes ``_foreach``;
- ``fused=True`` forces the fused kernel (CPU only; float32 and float64 tensors that are
  contiguous: any other tensor of the group takes the loop); if the kernels cannot be
  built (no C++ compiler), the step warns once and takes the eager loop;
- ``fused=False`` rules out the fused kernel only (a large CPU group then compiles);
- ``compiled=True`` forces the compiled step anywhere; ``compiled=False`` forces the eager
  loop (no fused kernel either). If ``torch.compile`` cannot run (no C++ compiler, an
  unsupported platform), the step warns once and falls back to the eager loop;
- ``foreach=None`` chooses the ``_foreach`` path when every parameter is on CUDA, the loop
  otherwise (on CPU the loop is faster). At most one of ``foreach``, ``compiled`` and
  ``fused`` may be True.

Behaviour common to every rule:

- sparse or complex gradients raise a ``RuntimeError`` naming the optimizer;
- parameters whose ``.grad`` is ``None`` are left untouched, and their step count does not
  advance;
- non-finite gradients are *not* filtered: NaN/inf propagate into the parameters exactly as
  in ``torch.optim`` (no hidden device sync per step). Detect divergence in the training
  loop, where the loss is already on the host.
- telemetry: :meth:`ElementwiseOptimizer.register_telemetry_hook` receives one record of
  per-step scalars per parameter group; with no hook registered the step computes nothing
  extra (one truthiness test of an empty dict).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch.optim.optimizer import ParamsT
from torch.utils.hooks import RemovableHandle

from optlab.optim import fused_cpu
from optlab.optim.errors import InvalidValueError, UnsupportedError
from optlab.optim.flat import FlatBuffer, bind_gradients, flat_span, in_flat_layout
from optlab.optim.fused_step import FusedPlan, FusedSteps
from optlab.optim.hyperparameters import check_optional_bool, one_path
from optlab.optim.members import has_members, lr_as_float, per_member

#: A CPU parameter group of a rule without a fused kernel is stepped by compiled code from
#: this many elements on, when no path is asked for.
COMPILE_MIN_NUMEL = 1 << 18

#: torch._dynamo's recompile_limit is raised to at least this when a step is first compiled.
MIN_RECOMPILE_LIMIT = 64

TelemetryHook = Callable[[torch.optim.Optimizer, dict[str, float]], None]
"""``hook(optimizer, record)``; ``record`` maps names to Python floats (see each rule)."""

_compiled_rules: dict[Callable[..., None], Callable[..., None]] = {}
_compile_failures: dict[Callable[..., None], str] = {}
_compile_seconds: dict[Callable[..., None], float] = {}
logger = logging.getLogger("optlab.optim")


def compile_seconds() -> dict[str, float]:
    """Seconds the first compiled call of each rule took in this process (the compile,
    mostly), by rule name; also logged once at INFO on the ``optlab.optim`` logger."""
    return {rule.__name__: seconds for rule, seconds in _compile_seconds.items()}


class SparseGradientError(UnsupportedError):
    """An optlab rule got a sparse gradient; every optlab rule needs dense gradients."""


def _compiled(rule: Callable[..., None]) -> Callable[..., None]:
    """``rule`` under ``torch.compile``, made once per process.

    ``dynamic=None``: the first shape compiles static, a second shape recompiles once with a
    dynamic size (torch's automatic dynamic shapes). The rule's constant hyperparameters
    (Python floats and strings) stay specialised: compiled with ``dynamic=True`` they
    became symbolic inputs too, which doubled the per-call overhead (measured: 55 us
    against 27 us a call on 2 loaded cores), and on a model of 100 tensors that overhead is
    paid 100 times a step.
    """
    compiled = _compiled_rules.get(rule)
    if compiled is None:
        compiled = torch.compile(rule, dynamic=None, fullgraph=True)
        _compiled_rules[rule] = compiled
        # one entry per (dtype, constants, static/dynamic size): raise torch's default cap
        # of 8 so that a process running many configurations keeps its compiled steps
        limit = getattr(torch._dynamo.config, "recompile_limit", None)
        if isinstance(limit, int) and limit < MIN_RECOMPILE_LIMIT:
            torch._dynamo.config.recompile_limit = MIN_RECOMPILE_LIMIT
    return compiled


class ElementwiseOptimizer(FusedSteps, torch.optim.Optimizer):
    """Base class of optlab's elementwise optimizers (see the module docstring).

    Subclasses set :attr:`state_names` (the parameter-shaped state tensors, in the order
    the rules take them) and implement ``_init_state``, ``_step_scalars``, ``_constants``,
    ``_single_tensor_rule`` and ``_multi_tensor_rule``; a rule with a fused CPU kernel
    also sets :attr:`fused_rule` and implements ``_fused_scalars``.
    """

    state_names: ClassVar[tuple[str, ...]] = ()
    #: The rule's kernel in :mod:`optlab.optim.fused_cpu` (``None``: no fused path).
    fused_rule: ClassVar[str | None] = None

    def __init__(
        self,
        params: ParamsT,
        defaults: dict[str, Any],
        *,
        foreach: bool | None = None,
        compiled: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = {**defaults, "foreach": foreach, "compiled": compiled, "fused": fused}
        self._validate_group(defaults)
        self._telemetry_hooks: OrderedDict[int, TelemetryHook] = OrderedDict()
        self._flat_cache: dict[int, _FlatGroup] = {}
        self._fused_plans: dict[int, FusedPlan] = {}
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        self._validate(group)
        check_optional_bool(name, "foreach", group["foreach"])
        check_optional_bool(name, "compiled", group["compiled"])
        check_optional_bool(name, "fused", group["fused"])
        if group["fused"] and self.fused_rule is None:
            raise InvalidValueError(
                f"{name}: fused=True is not available (no fused kernel for this rule)"
            )
        one_path(name, group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (as torch does); its hyperparameters are validated like the
        constructor's, and an invalid group is not added."""
        super().add_param_group(param_group)
        try:
            self._validate_group(self.param_groups[-1])
        except (TypeError, ValueError):
            self.param_groups.pop()
            raise

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_telemetry_hooks", OrderedDict())
        self.__dict__["_flat_cache"] = {}
        self.__dict__["_fused_plans"] = {}
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("compiled", None)
            group.setdefault("fused", None)

    # ------------------------------------------------------------------ rule interface
    @staticmethod
    def _validate(hyperparameters: dict[str, Any]) -> None:
        """Raise TypeError/ValueError naming the first invalid hyperparameter of a group."""
        raise NotImplementedError

    def _init_state(
        self,
        group: dict[str, Any],
        param: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
    ) -> None:
        """Create the state named in :attr:`state_names` for ``param`` (None = unused)."""
        raise NotImplementedError

    def _step_scalars(self, group: dict[str, Any], step: int) -> tuple[float, ...]:
        """Per-step scalars (lr, bias corrections, ...) as Python floats, for step ``step``."""
        raise NotImplementedError

    def _constants(self, group: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments of the rule that stay fixed from step to step."""
        raise NotImplementedError

    def _fused_scalars(self, group: dict[str, Any], step: int) -> tuple[float | torch.Tensor, ...]:
        """The scalars of :attr:`fused_rule`'s kernel at ``step`` (see ``fused_cpu.cpp``);
        with per-member learning rates the first (the one the learning rate multiplies) is a
        1-D float64 tensor of one value per member."""
        raise NotImplementedError

    @staticmethod
    def _single_tensor_rule(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    @staticmethod
    def _multi_tensor_rule(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def _effective_step_size(self, group: dict[str, Any], step: int) -> float | torch.Tensor:
        """The scalar that multiplies the update direction at ``step`` (telemetry)."""
        return lr_as_float(group["lr"])

    def _telemetry_extras(
        self, group: dict[str, Any], params: list[torch.Tensor]
    ) -> dict[str, float]:
        """Rule-specific telemetry for one group after a step (only called with hooks)."""
        return {}

    # ------------------------------------------------------------------ telemetry
    def register_telemetry_hook(self, hook: TelemetryHook) -> RemovableHandle:
        """Call ``hook(optimizer, record)`` after every step, once per parameter group.

        ``record`` holds ``group`` (its index), ``step`` (the largest step count in the
        group), ``lr``, ``effective_step_size`` (the scalar that multiplies the update
        direction), ``update_norm`` (the L2 norm of this step's change of the group's
        parameters) and the rule's own entries (IMO adds ``mass_mean``, ``mass_min``,
        ``mass_max``). Returns a handle whose ``remove()`` unregisters the hook.
        Without hooks the step does no telemetry work at all.
        """
        handle = RemovableHandle(self._telemetry_hooks)
        self._telemetry_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimization step.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss;
                it runs with gradients enabled before the update, and its loss is returned.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        hooks = self._telemetry_hooks
        records = []
        for index, group in enumerate(self.param_groups):
            params, grads, states = self._gather(index, group)
            if not params:
                continue
            before = [param.clone() for param in params] if hooks else None
            steps = [int(state["step"].item()) + 1 for state in states]
            flat = self._flat_tensors(index, group, params, grads, states, steps)
            if flat is not None:
                self._run_flat(group, flat, steps[0])
            else:
                path = self._choose_path(group, params)
                if path == "foreach":
                    self._run_multi_tensor(group, params, grads, states, steps)
                elif path == "fused":
                    self._run_fused(index, group, params, grads, states, steps)
                else:
                    compiled = path == "compiled"
                    self._run_single_tensor(group, params, grads, states, steps, compiled)
            torch._foreach_add_([state["step"] for state in states], 1)
            if before is not None:
                records.append(self._telemetry_record(index, group, params, before, max(steps)))
        for record in records:
            for hook in list(hooks.values()):
                hook(self, record)
        return loss

    def _gather(
        self, index: int, group: dict[str, Any]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[dict[str, Any]]]:
        params, grads, states = [], [], []
        for position, param in enumerate(group["params"]):
            grad = param.grad
            if grad is None:
                continue
            if grad.is_sparse:
                raise SparseGradientError(
                    f"{type(self).__name__} does not support sparse gradients (parameter "
                    f"{position} of group {index}); use dense gradients, e.g. "
                    "nn.Embedding(..., sparse=False)"
                )
            if torch.is_complex(param):
                raise UnsupportedError(
                    f"{type(self).__name__} does not support complex parameters (parameter "
                    f"{position} of group {index}); optimise torch.view_as_real(param) instead"
                )
            state = self.state[param]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float64)
                self._init_state(group, param, grad, state)
            params.append(param)
            grads.append(grad)
            states.append(state)
        return params, grads, states

    # ------------------------------------------------------------------ flat layout
    def _flat_tensors(
        self,
        index: int,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        steps: list[int],
    ) -> list[torch.Tensor | None] | None:
        """The 1-D spans ``[param, grad, *state]`` of a group stepped as one tensor, or
        ``None`` when the group takes the per-tensor path (see :mod:`optlab.optim.flat`)."""
        if has_members(group) or len(params) != len(group["params"]) or min(steps) != max(steps):
            return None
        cache = self._flat_cache.get(index)
        if cache is None and not in_flat_layout(params[0]):
            return None  # the common case: no layout, nothing more to check
        param_ptrs = [param.data_ptr() for param in params]
        if (
            cache is None
            or cache.param_ptrs != param_ptrs
            or any(a is not b for a, b in zip(cache.params, params, strict=True))
        ):
            span = flat_span(params)
            if span is None:
                self._flat_cache.pop(index, None)
                return None
            cache = _FlatGroup(params=list(params), param_ptrs=param_ptrs, span=span)
            self._flat_cache[index] = cache
        buffer, start, stop = cache.span
        grad_ptrs = [grad.data_ptr() for grad in grads]
        if grad_ptrs != cache.grad_ptrs:
            bind_gradients(buffer, params)
            cache.grad_ptrs = [param.grad.data_ptr() for param in params]
        state_ptrs = [
            [None if state[name] is None else state[name].data_ptr() for state in states]
            for name in self.state_names
        ]
        if state_ptrs != cache.state_ptrs:
            spans = _gather_state(self.state_names, params, states)
            if spans is None:
                return None
            cache.state_spans = spans
            cache.state_ptrs = [
                [None if state[name] is None else state[name].data_ptr() for state in states]
                for name in self.state_names
            ]
        return [buffer.params[start:stop], buffer.grads[start:stop], *cache.state_spans]

    def _run_flat(self, group: dict[str, Any], tensors: list[torch.Tensor | None], step: int):
        """One step of a whole group over its flat spans: compiled where it pays (as
        ``compiled`` says, on any device), else the eager rule once over the spans."""
        rule = self._single_tensor_rule
        param = tensors[0]
        assert param is not None
        large = param.numel() >= COMPILE_MIN_NUMEL
        if (
            self._takes_fused(group, [param])
            and param.dtype in fused_cpu.DTYPES
            and all(fused_cpu.fits(tensor, param) for tensor in tensors)
        ):
            assert self.fused_rule is not None
            kinds = [None if tensor is None else [tensor] for tensor in tensors]
            fused_cpu.Launch(self.fused_rule, kinds).run(self._fused_scalars(group, step))
            return
        constants = self._constants(group)
        scalars = self._step_scalars(group, step)
        compiled = group["compiled"]
        if compiled is None:
            compiled = group["foreach"] is not True and group["fused"] is not True and large
        if compiled:
            param = tensors[0]
            dtype = torch.promote_types(param.dtype, torch.float32)
            as_tensors = tuple(_scalar_input(value, dtype, param.device) for value in scalars)
            if self._run_compiled(rule, tensors, as_tensors, constants):
                return
        rule(*tensors, *scalars, **constants)

    def _choose_path(self, group: dict[str, Any], params: list[torch.Tensor]) -> str:
        if self._takes_fused(group, params):  # per-member learning rates included
            return "fused"
        compiled, foreach = group["compiled"], group["foreach"]
        if group["fused"] or has_members(group):
            # fused=True without kernels; per-member learning rates: the loop broadcasts them
            return "loop"
        if compiled is None and foreach is None:
            on_cpu = all(param.device.type == "cpu" for param in params)
            compiled = on_cpu and sum(param.numel() for param in params) >= COMPILE_MIN_NUMEL
        if compiled:
            if self._single_tensor_rule not in _compile_failures:
                return "compiled"
            return "loop"
        if foreach is None:
            foreach = all(param.device.type == "cuda" for param in params)
        return "foreach" if foreach else "loop"

    def _run_rest(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        steps: list[int],
        *,
        compiled: bool,
    ) -> None:
        """Tensors the fused kernel cannot take: the loop, compiled where asked and the
        rule compiles."""
        compiled = compiled and self._single_tensor_rule not in _compile_failures
        self._run_single_tensor(group, params, grads, states, steps, compiled)

    def _run_single_tensor(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        steps: list[int],
        compiled: bool,
    ) -> None:
        rule = self._single_tensor_rule
        constants = self._constants(group)
        scalars_by_step: dict[int, tuple[float, ...]] = {}
        tensor_scalars: dict[tuple[int, torch.dtype, torch.device], tuple[torch.Tensor, ...]] = {}
        for param, grad, state, step in zip(params, grads, states, steps, strict=True):
            scalars = scalars_by_step.get(step)
            if scalars is None:
                scalars = scalars_by_step[step] = self._step_scalars(group, step)
            tensors = [param, grad, *(state[name] for name in self.state_names)]
            if any(isinstance(s, torch.Tensor) for s in scalars):
                rule(*tensors, *(per_member(s, param) for s in scalars), **constants)
                continue
            if compiled and all(t is None or t.is_contiguous() for t in tensors):
                key = (step, param.dtype, param.device)
                as_tensors = tensor_scalars.get(key)
                if as_tensors is None:
                    # at least float32, so bf16/fp16 steps do not round the betas or lr
                    dtype = torch.promote_types(param.dtype, torch.float32)
                    as_tensors = tensor_scalars[key] = tuple(
                        _scalar_input(value, dtype, param.device) for value in scalars
                    )
                flat = [None if t is None else t.view(-1) for t in tensors]
                if self._run_compiled(rule, flat, as_tensors, constants):
                    continue
                compiled = False
            rule(*tensors, *scalars, **constants)

    def _run_compiled(
        self,
        rule: Callable[..., None],
        tensors: list[torch.Tensor | None],
        scalars: tuple[torch.Tensor, ...],
        constants: dict[str, Any],
    ) -> bool:
        if rule in _compile_failures:
            return False
        first = rule not in _compile_seconds
        started = time.perf_counter() if first else 0.0
        try:
            _compiled(rule)(*tensors, *scalars, **constants)
            if first:
                _compile_seconds[rule] = time.perf_counter() - started
                logger.info(
                    "%s: first compiled step took %.2f s (compile included; once per process)",
                    type(self).__name__,
                    _compile_seconds[rule],
                )
        except Exception as error:  # torch.compile can fail in many ways (no compiler, ...)
            message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            _compile_failures[rule] = message
            warnings.warn(
                f"{type(self).__name__}: torch.compile of the step failed ({message}); "
                "falling back to the eager per-tensor loop for this process",
                RuntimeWarning,
                stacklevel=4,
            )
            return False
        return True

    def _run_multi_tensor(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        steps: list[int],
    ) -> None:
        constants = self._constants(group)
        buckets: dict[tuple[torch.device, torch.dtype, int], list[int]] = {}
        for position, (param, step) in enumerate(zip(params, steps, strict=True)):
            buckets.setdefault((param.device, param.dtype, step), []).append(position)
        for (_, _, step), positions in buckets.items():
            state_lists = []
            for name in self.state_names:
                entries = [states[position][name] for position in positions]
                state_lists.append(None if entries[0] is None else entries)
            self._multi_tensor_rule(
                [params[position] for position in positions],
                [grads[position] for position in positions],
                *state_lists,
                *self._step_scalars(group, step),
                **constants,
            )

    def _telemetry_record(
        self,
        index: int,
        group: dict[str, Any],
        params: list[torch.Tensor],
        before: list[torch.Tensor],
        step: int,
    ) -> dict[str, float]:
        squared = sum(
            float(torch.sum((after.double() - old.double()) ** 2))
            for after, old in zip(params, before, strict=True)
        )
        return {
            "group": float(index),
            "step": float(step),
            "lr": _mean(group["lr"]),
            "effective_step_size": _mean(self._effective_step_size(group, step)),
            "update_norm": math.sqrt(squared),
            **self._telemetry_extras(group, params),
        }


@dataclass(eq=False)
class _FlatGroup:
    """What the flat path of one parameter group checked last step (data pointers)."""

    params: list[torch.Tensor]
    param_ptrs: list[int]
    span: tuple[FlatBuffer, int, int]
    grad_ptrs: list[int] = field(default_factory=list)
    state_ptrs: list[list[int | None]] = field(default_factory=list)
    state_spans: list[torch.Tensor | None] = field(default_factory=list)


def _gather_state(
    names: tuple[str, ...], params: list[torch.Tensor], states: list[dict[str, Any]]
) -> list[torch.Tensor | None] | None:
    """Copy each state tensor of a group into one 1-D buffer per name and make every
    per-parameter entry a view of it (``state_dict`` stays per parameter). ``None`` when a
    name is set for some parameters only, or a state tensor is not shaped like its param."""
    spans: list[torch.Tensor | None] = []
    for name in names:
        entries = [state[name] for state in states]
        if all(entry is None for entry in entries):
            spans.append(None)
            continue
        if any(
            entry is None or entry.shape != param.shape or entry.dtype != entries[0].dtype
            for entry, param in zip(entries, params, strict=True)
        ):
            return None
        span = torch.cat([entry.reshape(-1) for entry in entries])
        offset = 0
        for state, param in zip(states, params, strict=True):
            state[name] = span[offset : offset + param.numel()].view_as(param)
            offset += param.numel()
        spans.append(span)
    return spans


def _scalar_input(value: Any, dtype: torch.dtype, device: torch.device) -> Any:
    """A per-step scalar as the compiled step takes it: a 0-dim tensor (so a new value does
    not recompile), except a Python bool (a branch, e.g. SGD's first step: specialised)."""
    if isinstance(value, bool):
        return value
    return torch.tensor(value, dtype=dtype, device=device)


def _mean(value: float | torch.Tensor) -> float:
    """A scalar for telemetry: per-member values are averaged."""
    return float(value.double().mean()) if isinstance(value, torch.Tensor) else float(value)
