"""The optimizer contract kit: one call checks that an optimizer behaves like a torch one.

Like torch's own optimizer-info table (``torch/testing/_internal/common_optimizers.py``), a
:class:`ContractSubject` declares what an optimizer supports, and each check in
:data:`CHECKS` runs where it applies. The ten points (``shared/DESIGN.md``):

1. ``reference``: matches its NumPy reference over 100 float64 steps (1e-10 relative);
2. ``foreach``: the ``foreach`` path equals the per-tensor loop (params and every state entry);
3. ``state_dict``: ``state_dict()`` -> new optimizer -> ``load_state_dict()`` continues
   bit-identically;
4. ``param_groups``: per-group hyperparameters are respected (a two-group optimizer equals
   two one-group ones), ``add_param_group`` works, a group with lr=0 stays unchanged;
5. ``closure``: ``step(closure)`` returns the closure's loss; params without grad untouched;
6. ``invalid_hyperparameters`` (each raises naming the field) and ``sparse_gradients``
   (raise clearly unless supported);
7. ``loss_decreases`` on a small problem; ``converges`` on the ill-conditioned quadratic and
   the 2-D Rosenbrock function within a stated budget at a stated lr;
8. ``lr_scheduler``: ``group["lr"]`` is read at every step;
9. ``dtypes`` (float32 and float64) and ``non_contiguous`` parameters;
10. ``deepcopy_and_repr``.

Plus ``nonfinite_gradients``: NaN/inf gradients propagate into the parameters (optlab's
documented behaviour, as torch's), never silently skipped; ``population``: an
elementwise optimizer over parameters stacked along a leading axis equals N separate
optimizers (what the population trainer relies on); ``flat_layout``: on parameters placed
in one buffer by :func:`optlab.optim.flat.flatten_parameters` an elementwise optimizer
gives the numbers of the per-tensor path (float64, bit for bit), and a state dict saved on
either layout continues identically on the other; ``compiled``: where the optimizer has a
``compiled`` flag, its compiled step equals the eager one within float rounding
(1e-12 relative in float64), per tensor and on the flat layout; ``fused``: where it has a
``fused`` flag (torch's Adam, optlab's fused CPU kernels), ``fused=True`` equals
``fused=False`` the same way.

Use it on your own optimizer::

    from optlab.testing import ContractSubject, ConvergenceBudget, check_optimizer
    check_optimizer(ContractSubject("mine", MyOptimizer, hyperparameters={"lr": 0.01},
                                    rosenbrock=ConvergenceBudget(lr=0.01, steps=5000)))

or on a registry entry: ``check_optimizer(subject_from_registry("imo"))``.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from optlab.testing.objectives import (
    ILL_CONDITIONED_QUADRATIC,
    ROSENBROCK_2D,
    Objective,
    smooth_gradient,
)
from optlab.testing.references import REFERENCE_RULES, ReferenceRule

Factory = Callable[..., torch.optim.Optimizer]


class ContractFailure(AssertionError):
    """One or more contract checks failed; the message lists each with its reason."""


@dataclass(frozen=True)
class ConvergenceBudget:
    """Converge to ``f - f* <= tolerance`` within ``steps`` steps at learning rate ``lr``."""

    lr: float
    steps: int
    tolerance: float = 1e-6
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractSubject:
    """An optimizer under test and what it declares.

    Attributes:
        name: for messages.
        factory: ``factory(params, **hyperparameters) -> Optimizer``.
        hyperparameters: used by every check (e.g. a learning rate that suits small problems).
        elementwise: per-coordinate rule (per-group results are independent).
        supports_sparse, supports_foreach, foreach_bitwise, requires_closure,
        supports_param_groups: capabilities (see :class:`optlab.optim.OptimizerSpec`).
        supports_compiled: takes ``compiled=True/False`` (optlab's elementwise rules).
        supports_fused: takes ``fused=True/False`` (torch's Adam family, IMO, MAMGD).
        population_bitwise: a stacked population equals separate optimizers bit for bit
            (else within 1e-12 relative: e.g. torch's fused CPU kernels round their
            vectorised body and scalar tail differently, so results depend on position).
        reference: its NumPy reference rule, if any.
        invalid: ``(field, value)`` pairs that the factory must reject naming ``field``.
        group_variation: a non-lr hyperparameter and a value for it (e.g.
            ``{"momentum": 0.5}``) that the per-group check sets on one group only.
        quadratic, rosenbrock: convergence budgets (None: not claimed).
    """

    name: str
    factory: Factory
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    elementwise: bool = True
    supports_sparse: bool = False
    supports_foreach: bool = False
    foreach_bitwise: bool = True
    requires_closure: bool = False
    supports_param_groups: bool = True
    reference: ReferenceRule | None = None
    invalid: Sequence[tuple[str, Any]] = ()
    group_variation: Mapping[str, Any] = field(default_factory=dict)
    quadratic: ConvergenceBudget | None = None
    rosenbrock: ConvergenceBudget | None = None
    supports_compiled: bool = False
    supports_fused: bool = False
    population_bitwise: bool = True

    def build(self, params: Any, **overrides: Any) -> torch.optim.Optimizer:
        """The optimizer with the subject's hyperparameters, updated by ``overrides``."""
        return self.factory(params, **{**self.hyperparameters, **overrides})


# ---------------------------------------------------------------------------- drivers
def _make_params(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    return [
        torch.randn(shape, generator=generator, dtype=dtype).requires_grad_(True)
        for shape in shapes
    ]


def _clone(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [param.detach().clone().requires_grad_(True) for param in params]


def _loss(params: Sequence[torch.Tensor]) -> torch.Tensor:
    # Smooth, non-convex, separable by parameter: sum(0.5*(x-1)^2 + 0.1*sin(3x))
    return sum(
        torch.sum(0.5 * (param - 1.0) ** 2 + 0.1 * torch.sin(3.0 * param)) for param in params
    )


def _closure(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]):
    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _loss(params)
        loss.backward()
        return loss

    return closure


def _run(
    optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor], steps: int
) -> list[float]:
    closure = _closure(optimizer, params)
    return [float(torch.as_tensor(optimizer.step(closure)).detach()) for _ in range(steps)]


def _states_equal(
    first: torch.optim.Optimizer, second: torch.optim.Optimizer, bitwise: bool, rtol: float
) -> str | None:
    for index, (a, b) in enumerate(
        zip(
            first.state_dict()["state"].values(), second.state_dict()["state"].values(), strict=True
        )
    ):
        for key in a:
            x, y = a[key], b[key]
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
                same = torch.equal(x, y) if bitwise else torch.allclose(x, y, rtol=rtol, atol=0)
                if not same:
                    return f"state[{index}][{key!r}] differs"
            elif x != y and not (isinstance(x, list) or isinstance(y, list)):
                return f"state[{index}][{key!r}] differs: {x!r} != {y!r}"
    return None


def _params_equal(first: Sequence[torch.Tensor], second: Sequence[torch.Tensor]) -> bool:
    return all(torch.equal(a.detach(), b.detach()) for a, b in zip(first, second, strict=True))


class _Skip(Exception):
    """The check does not apply to this subject."""


# ---------------------------------------------------------------------------- checks
def check_reference(subject: ContractSubject) -> None:
    """1. 100 float64 steps equal the NumPy reference to 1e-10 relative."""
    if subject.reference is None:
        raise _Skip("no NumPy reference")
    rng = np.random.default_rng(7)
    names = ["W1", "b1", "W2"]
    start = {
        name: rng.standard_normal(shape)
        for name, shape in zip(names, [(4, 3), (3,), (3, 2)], strict=True)
    }
    curvature = {name: rng.uniform(0.5, 2.0, size=value.shape) for name, value in start.items()}
    params = [torch.tensor(start[name], dtype=torch.float64, requires_grad=True) for name in names]
    optimizer = subject.build(params)
    expected = {name: value.copy() for name, value in start.items()}
    state = subject.reference.init(expected)
    for t in range(1, 101):
        for name, param in zip(names, params, strict=True):
            param.grad = torch.from_numpy(smooth_gradient(param.detach().numpy(), curvature[name]))
        optimizer.step()
        grads = {"d" + name: smooth_gradient(expected[name], curvature[name]) for name in names}
        expected, state = subject.reference.step(expected, grads, state, t, subject.hyperparameters)
        for name, param in zip(names, params, strict=True):
            got = param.detach().numpy()
            if not np.allclose(got, expected[name], rtol=1e-10, atol=1e-12):
                error = np.max(np.abs(got - expected[name]))
                raise ContractFailure(
                    f"{name} differs from the reference at step {t} (max abs {error:.3g})"
                )


def check_foreach(subject: ContractSubject) -> None:
    """2. foreach == per-tensor loop, params and every state entry."""
    if not subject.supports_foreach:
        raise _Skip("no foreach path")
    for dtype in (torch.float64, torch.float32):
        loop_params, foreach_params = _make_params(dtype), _make_params(dtype)
        loop = subject.build(loop_params, foreach=False)
        multi = subject.build(foreach_params, foreach=True)
        _run(loop, loop_params, 20)
        _run(multi, foreach_params, 20)
        rtol = 1e-10 if dtype == torch.float64 else 1e-5
        for a, b in zip(loop_params, foreach_params, strict=True):
            same = torch.equal(a, b) if subject.foreach_bitwise else torch.allclose(a, b, rtol=rtol)
            if not same:
                raise ContractFailure(f"foreach {dtype} parameters differ from the loop")
        problem = _states_equal(loop, multi, subject.foreach_bitwise, rtol)
        if problem:
            raise ContractFailure(f"foreach {dtype} {problem} from the per-tensor loop")


def check_state_dict(subject: ContractSubject) -> None:
    """3. state_dict -> new optimizer -> load_state_dict continues bit-identically."""
    params = _make_params()
    optimizer = subject.build(params)
    _run(optimizer, params, 5)
    saved = copy.deepcopy(optimizer.state_dict())
    resumed_params = _clone(params)
    resumed = subject.build(resumed_params)
    resumed.load_state_dict(saved)
    _run(optimizer, params, 5)
    _run(resumed, resumed_params, 5)
    if not _params_equal(params, resumed_params):
        raise ContractFailure("resumed optimizer diverged from the original after load_state_dict")


def check_param_groups(subject: ContractSubject) -> None:
    """4. Per-group hyperparameters, add_param_group, and lr=0 groups."""
    if not subject.supports_param_groups:
        raise _Skip("single parameter group only")
    base_lr = subject.hyperparameters.get("lr", 1e-3)
    varied = {"lr": base_lr * 0.5, **subject.group_variation}
    first, second, frozen = _make_params(seed=1), _make_params(seed=2), _make_params(seed=3)
    frozen_start = _clone(frozen)
    together = subject.build(
        [
            {"params": first},
            {"params": second, **varied},
            {"params": frozen, "lr": 0.0},
        ]
    )
    _run(together, first + second + frozen, 10)
    if not _params_equal(frozen, frozen_start):
        raise ContractFailure("a parameter group with lr=0 changed")
    if _params_equal(first, _make_params(seed=1)):
        raise ContractFailure("a parameter group with lr>0 did not change")
    if subject.elementwise:
        alone_first, alone_second = _make_params(seed=1), _make_params(seed=2)
        _run(subject.build(alone_first), alone_first, 10)
        _run(subject.build(alone_second, **varied), alone_second, 10)
        if not (_params_equal(first, alone_first) and _params_equal(second, alone_second)):
            raise ContractFailure(f"per-group hyperparameters {varied} not respected")
        if subject.group_variation:
            # the variation must matter, or the comparison above proves nothing about it
            lr_only = _make_params(seed=2)
            _run(subject.build(lr_only, lr=base_lr * 0.5), lr_only, 10)
            if _params_equal(lr_only, alone_second):
                raise ContractFailure(f"{subject.group_variation} changes nothing")
    late = _make_params(seed=4)
    growing_params = _make_params(seed=1)
    growing = subject.build(growing_params)
    _run(growing, growing_params, 2)
    growing.add_param_group({"params": late, "lr": base_lr})
    _run(growing, growing_params + late, 3)
    if _params_equal(late, _make_params(seed=4)):
        raise ContractFailure("a group added with add_param_group was not updated")


def check_closure(subject: ContractSubject) -> None:
    """5. step(closure) returns the closure's loss; params without grad are untouched."""
    params = _make_params()
    idle = torch.ones(3, dtype=torch.float64, requires_grad=True)
    optimizer = subject.build([*params, idle])
    sentinel = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _loss(params)
        loss.backward()
        sentinel.append(loss)
        return loss

    returned = optimizer.step(closure)
    if returned is None or not torch.equal(torch.as_tensor(returned), sentinel[0].detach()):
        raise ContractFailure(f"step(closure) returned {returned!r}, not the closure's loss")
    for _ in range(3):
        optimizer.step(closure)
    if not torch.equal(idle.detach(), torch.ones(3, dtype=torch.float64)):
        raise ContractFailure("a parameter without gradient was changed")


def check_invalid_hyperparameters(subject: ContractSubject) -> None:
    """6a. Each invalid hyperparameter raises ValueError/TypeError naming the field."""
    if not subject.invalid:
        raise _Skip("no invalid hyperparameters declared")
    for name, value in subject.invalid:
        try:
            subject.build(_make_params(), **{name: value})
        except (ValueError, TypeError) as error:
            field_name = name.split("[")[0]
            if not re.search(rf"(?<![\w.]){re.escape(field_name)}\b", str(error)):
                raise ContractFailure(
                    f"{name}={value!r} raised without naming {name!r}: {error}"
                ) from error
        else:
            raise ContractFailure(f"{name}={value!r} was accepted")


def check_sparse_gradients(subject: ContractSubject) -> None:
    """6b. Sparse gradients raise a clear error, unless supported (then they work)."""
    param = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    optimizer = subject.build([param])
    indices = torch.tensor([[0, 2], [1, 0]])
    values = torch.tensor([1.0, -2.0], dtype=torch.float64)
    param.grad = torch.sparse_coo_tensor(indices, values, (4, 3), check_invariants=True)
    if subject.supports_sparse:
        optimizer.step(lambda: torch.tensor(1.0)) if subject.requires_closure else optimizer.step()
        if torch.count_nonzero(param.detach()) == 0:
            raise ContractFailure("a supported sparse gradient did not move the parameter")
        return
    try:
        optimizer.step(None) if not subject.requires_closure else optimizer.step(lambda: 0.0)
    except Exception as error:  # torch raises RuntimeError; optlab a RuntimeError subclass
        if "sparse" not in str(error).lower():
            raise ContractFailure(f"sparse gradient raised without saying so: {error}") from error
    else:
        raise ContractFailure("a sparse gradient was accepted silently")


def check_loss_decreases(subject: ContractSubject) -> None:
    """7a. 20 steps on a small smooth problem lower the loss."""
    params = _make_params()
    losses = _run(subject.build(params), params, 20)
    final = float(_loss(params).detach())
    if not final < losses[0]:
        raise ContractFailure(f"loss did not decrease: {losses[0]:.6g} -> {final:.6g}")


def _converge(subject: ContractSubject, objective: Objective, budget: ConvergenceBudget) -> None:
    x = objective.initial()
    optimizer = subject.build([x], **{**budget.hyperparameters, "lr": budget.lr})

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = objective.function(x)
        value.backward()
        return value

    gap = math.inf
    for step in range(1, budget.steps + 1):
        optimizer.step(closure)
        with torch.no_grad():
            gap = float(objective.function(x)) - objective.minimum
        if gap <= budget.tolerance:
            return
        if not math.isfinite(gap):
            raise ContractFailure(f"{objective.name}: diverged at step {step} (lr {budget.lr})")
    raise ContractFailure(
        f"{objective.name}: f - f* = {gap:.3g} > {budget.tolerance:g} after "
        f"{budget.steps} steps at lr {budget.lr}"
    )


def check_converges(subject: ContractSubject) -> None:
    """7b. Converges on the ill-conditioned quadratic and 2-D Rosenbrock within budget."""
    if subject.quadratic is None and subject.rosenbrock is None:
        raise _Skip("no convergence budget declared")
    if subject.quadratic is not None:
        _converge(subject, ILL_CONDITIONED_QUADRATIC, subject.quadratic)
    if subject.rosenbrock is not None:
        _converge(subject, ROSENBROCK_2D, subject.rosenbrock)


def check_lr_scheduler(subject: ContractSubject) -> None:
    """8. Works with torch.optim.lr_scheduler: group["lr"] is read at every step."""
    params = _make_params()
    optimizer = subject.build(params)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: 1.0 if epoch < 2 else 0.0
    )
    closure = _closure(optimizer, params)
    for _ in range(2):
        optimizer.step(closure)
        scheduler.step()
    if optimizer.param_groups[0]["lr"] != 0.0:
        raise ContractFailure("the scheduler did not set group['lr']")
    frozen = _clone(params)
    for _ in range(3):
        optimizer.step(closure)
    if not _params_equal(params, frozen):
        raise ContractFailure("parameters moved after a scheduler set lr to 0")


def check_dtypes(subject: ContractSubject) -> None:
    """9a. float32 and float64 parameters: dtype kept, same trajectory within float32."""
    results = {}
    for dtype in (torch.float32, torch.float64):
        params = _make_params(dtype)
        optimizer = subject.build(params)
        _run(optimizer, params, 10)
        for state in optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.dtype != dtype:
                    raise ContractFailure(f"state {key!r} is {value.dtype} for {dtype} params")
        if any(param.dtype != dtype for param in params):
            raise ContractFailure(f"parameters changed dtype from {dtype}")
        results[dtype] = params
    for a, b in zip(results[torch.float32], results[torch.float64], strict=True):
        if not torch.allclose(a.double(), b, rtol=1e-3, atol=1e-4):
            raise ContractFailure("float32 and float64 trajectories differ beyond float32 rounding")


def check_non_contiguous(subject: ContractSubject) -> None:
    """9b. Non-contiguous parameters give the same numbers as contiguous ones."""
    base = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    strided = torch.nn.Parameter(base.clone().t())  # shape (5, 3), transposed strides
    dense = torch.nn.Parameter(base.clone().t().contiguous())
    if strided.is_contiguous():
        raise AssertionError("test set-up: the strided parameter should be non-contiguous")
    _run(subject.build([strided]), [strided], 10)
    _run(subject.build([dense]), [dense], 10)
    if not torch.allclose(strided, dense, rtol=1e-12, atol=1e-14):
        raise ContractFailure("non-contiguous parameters give different numbers")


def check_deepcopy_and_repr(subject: ContractSubject) -> None:
    """10. deepcopy gives an independent optimizer that continues as the original does;
    repr names the class and the lr."""
    params = _make_params()
    optimizer = subject.build(params)
    _run(optimizer, params, 2)
    before = _clone(params)
    duplicate = copy.deepcopy(optimizer)
    duplicate_params = duplicate.param_groups[0]["params"]
    _run(duplicate, duplicate_params, 3)
    if not _params_equal(params, before):
        raise ContractFailure("stepping a deepcopy changed the original's parameters")
    _run(optimizer, params, 3)
    if not _params_equal(params, duplicate_params):
        raise ContractFailure("a deepcopy does not continue as the original does")
    text = repr(optimizer)
    if type(optimizer).__name__ not in text or "lr" not in text:
        raise ContractFailure(f"repr does not name the class and lr: {text!r}")


def check_population(subject: ContractSubject) -> None:
    """Elementwise: one optimizer over parameters stacked along a leading population axis
    equals N separate optimizers, one per member (float64, 10 steps, bit for bit)."""
    if not subject.elementwise:
        raise _Skip("not elementwise")
    members = 4
    separate = [_make_params(seed=10 + member) for member in range(members)]
    stacked = [
        torch.stack([params[index].detach() for params in separate]).requires_grad_(True)
        for index in range(len(separate[0]))
    ]
    _run(subject.build(stacked), stacked, 10)  # the loss is a sum over members: separable
    for params in separate:
        _run(subject.build(params), params, 10)
    for index, tensor in enumerate(stacked):
        for member, params in enumerate(separate):
            a, b = tensor[member].detach(), params[index].detach()
            same = (
                torch.equal(a, b)
                if subject.population_bitwise
                else torch.allclose(a, b, rtol=1e-12, atol=1e-15)
            )
            if not same:
                raise ContractFailure(
                    f"member {member} of a stacked population differs from its own optimizer"
                )


def check_nonfinite_gradients(subject: ContractSubject) -> None:
    """NaN/inf gradients propagate into the parameters (documented; never silently skipped)."""
    if not subject.elementwise:
        raise _Skip("not elementwise")
    param = torch.ones(3, dtype=torch.float64, requires_grad=True)
    optimizer = subject.build([param])
    param.grad = torch.tensor([1.0, math.nan, 1.0], dtype=torch.float64)
    optimizer.step()
    if not math.isnan(float(param.detach()[1])):
        raise ContractFailure("a NaN gradient did not reach its parameter (silently skipped?)")
    if not (math.isfinite(float(param.detach()[0])) and math.isfinite(float(param.detach()[2]))):
        raise ContractFailure("a NaN gradient leaked into other coordinates")


def _flat_copy(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    from optlab.optim.flat import flatten_parameters

    copies = _clone(params)
    flatten_parameters(copies)
    return copies


def check_flat_layout(subject: ContractSubject) -> None:
    """Elementwise: on a flat layout (parameters and gradients views of one buffer), 20
    float64 steps equal the per-tensor path bit for bit, the gradients that ``zero_grad()``
    replaces each step are re-bound (never a stale buffer), and a state dict saved on
    either layout continues identically on the other."""
    if not subject.elementwise:
        raise _Skip("not elementwise")
    plain = _make_params(seed=3)
    flat = _flat_copy(plain)
    plain_optimizer, flat_optimizer = subject.build(plain), subject.build(flat)
    _run(plain_optimizer, plain, 10)
    _run(flat_optimizer, flat, 10)
    if not _params_equal(plain, flat):
        raise ContractFailure("the flat layout's parameters differ from the per-tensor path")
    problem = _states_equal(plain_optimizer, flat_optimizer, bitwise=True, rtol=0.0)
    if problem:
        raise ContractFailure(f"flat layout: {problem} from the per-tensor path")
    # cross-load: flat state into per-tensor params and back, then 10 more steps each
    to_plain, to_flat = _clone(flat), _flat_copy(plain)
    resumed_plain, resumed_flat = subject.build(to_plain), subject.build(to_flat)
    resumed_plain.load_state_dict(copy.deepcopy(flat_optimizer.state_dict()))
    resumed_flat.load_state_dict(copy.deepcopy(plain_optimizer.state_dict()))
    for optimizer, params in (
        (plain_optimizer, plain),
        (flat_optimizer, flat),
        (resumed_plain, to_plain),
        (resumed_flat, to_flat),
    ):
        _run(optimizer, params, 10)
    for label, params in (("flat", flat), ("flat->per-tensor", to_plain), ("->flat", to_flat)):
        if not _params_equal(plain, params):
            raise ContractFailure(f"{label}: continued differently after load_state_dict")


def check_compiled(subject: ContractSubject) -> None:
    """``compiled=True`` equals ``compiled=False`` within float rounding (float64,
    1e-12 relative, 10 steps), on separate tensors and on a flat layout."""
    if not subject.supports_compiled:
        raise _Skip("no compiled flag")
    eager_params = _make_params(seed=4)
    eager = subject.build(eager_params, compiled=False)
    _run(eager, eager_params, 10)
    for label, params in (
        ("per tensor", _make_params(seed=4)),
        ("flat", _flat_copy(_make_params(seed=4))),
    ):
        _run(subject.build(params, compiled=True), params, 10)
        for a, b in zip(eager_params, params, strict=True):
            if not torch.allclose(a, b, rtol=1e-12, atol=1e-14):
                raise ContractFailure(f"compiled ({label}) parameters differ from eager")


def _fused_params() -> list[torch.Tensor]:
    """The fixed shapes plus one of 40,001 elements: a kernel splits a group that large
    across threads, at a boundary inside a tensor."""
    large = torch.randn(40_001, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return [*_make_params(seed=4), large.requires_grad_(True)]


def check_fused(subject: ContractSubject) -> None:
    """``fused=True`` equals ``fused=False`` within float rounding (float64, 1e-12
    relative, 10 steps), on separate tensors and on a flat layout. Not applicable where the
    fused kernels cannot run on this machine (optlab's need a C++ compiler)."""
    if not subject.supports_fused:
        raise _Skip("no fused flag")
    from optlab.optim import fused_cpu

    plain_params = _fused_params()
    plain = subject.build(plain_params, fused=False)
    if getattr(plain, "fused_rule", None) is not None and not fused_cpu.available():
        raise _Skip(f"fused kernels unavailable here ({fused_cpu.unavailable_reason()})")
    _run(plain, plain_params, 10)
    for label, params in (("per tensor", _fused_params()), ("flat", _flat_copy(_fused_params()))):
        _run(subject.build(params, fused=True), params, 10)
        for a, b in zip(plain_params, params, strict=True):
            if not torch.allclose(a, b, rtol=1e-12, atol=1e-14):
                raise ContractFailure(f"fused ({label}) parameters differ from fused=False")


CHECKS: dict[str, Callable[[ContractSubject], None]] = {
    "reference": check_reference,
    "foreach": check_foreach,
    "state_dict": check_state_dict,
    "param_groups": check_param_groups,
    "closure": check_closure,
    "invalid_hyperparameters": check_invalid_hyperparameters,
    "sparse_gradients": check_sparse_gradients,
    "loss_decreases": check_loss_decreases,
    "converges": check_converges,
    "lr_scheduler": check_lr_scheduler,
    "dtypes": check_dtypes,
    "non_contiguous": check_non_contiguous,
    "deepcopy_and_repr": check_deepcopy_and_repr,
    "nonfinite_gradients": check_nonfinite_gradients,
    "population": check_population,
    "flat_layout": check_flat_layout,
    "compiled": check_compiled,
    "fused": check_fused,
}


def run_check(subject: ContractSubject, name: str) -> bool:
    """Run one check by name; False if it does not apply to the subject, True if it passed.

    Raises :class:`ContractFailure` (an AssertionError) if it failed; an exception raised
    by the optimizer itself propagates as it is (``check_optimizer`` lists it instead).
    """
    try:
        CHECKS[name](subject)
    except _Skip:
        return False
    return True


def check_optimizer(subject: ContractSubject, checks: Sequence[str] | None = None) -> list[str]:
    """Run every applicable check (or those named); return the names that ran.

    Raises :class:`ContractFailure` listing every failed check with its reason.
    """
    failures, ran = [], []
    for name in checks or CHECKS:
        try:
            if run_check(subject, name):
                ran.append(name)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
        except Exception as error:  # a crash inside a check is a failure of that check
            failures.append(f"{name}: raised {type(error).__name__}: {error}")
    if failures:
        raise ContractFailure(f"{subject.name} fails the contract:\n  " + "\n  ".join(failures))
    return ran


# ---------------------------------------------------------------------------- registry
# Small-problem settings and convergence budgets for each registry entry, measured with
# ``benchmarks/contract_budgets.py`` (steps needed x about 1.5, rounded up).
_GENERIC_INVALID: dict[str, list[Any]] = {
    "lr": [-0.1, math.nan, math.inf, "0.1", None],
    "betas": [(1.0, 0.999), (0.9, -0.1), (math.nan, 0.9), 0.9],
    "eps": [-1e-8, math.nan],
    "momentum": [-0.1, 1.5, "high"],
    "weight_decay": [-1.0, math.inf],
    "alpha": [-1.0, math.nan],
    "beta": [-1.0],
    "mass_min": [-0.1, 0.0],
    "mass_max": [-1.0],
    "k": [-1e-5, math.inf],
    "scale": [0.0, -1.1, math.nan],
    "as_published": ["yes", 1],
    "step_form": ["bogus"],
    "foreach": ["yes"],
    "max_iter": [0, 2.5],
    "history_size": [0],
    "line_search_fn": ["armijo"],
}

_SMALL_PROBLEM_LR: dict[str, float] = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.1,
    "rmsprop": 0.01,
    "adam": 0.05,
    "adamw": 0.05,
    "lbfgs": 0.5,
    "imo": 0.05,
    "mamgd": 0.05,
    "scaled-adam": 0.05,
}

_GROUP_VARIATION: dict[str, dict[str, Any]] = {
    "sgd": {"weight_decay": 0.1},
    "momentum": {"momentum": 0.5},
    "nesterov": {"momentum": 0.5},
    "adagrad": {"lr_decay": 0.1},
    "rmsprop": {"alpha": 0.9},
    "adam": {"betas": (0.5, 0.9)},
    "adamw": {"betas": (0.5, 0.9)},
    "imo": {"momentum": 0.5},
    "mamgd": {"betas": (0.5, 0.9)},
    "scaled-adam": {"scale": 3.0},
}

# Entries whose default CPU path is a torch fused kernel (population equal within rounding).
_POPULATION_ROUNDING = {"scaled-adam"}

REGISTRY_BUDGETS: dict[str, tuple[ConvergenceBudget, ConvergenceBudget]] = {
    # name: (ill-conditioned quadratic, 2-D Rosenbrock); measured steps in the comments.
    "sgd": (ConvergenceBudget(1e-3, 10_000), ConvergenceBudget(2e-3, 11_000)),  # 6558, 7493
    "momentum": (ConvergenceBudget(2e-3, 400), ConvergenceBudget(2e-3, 1_200)),  # 260, 769
    "nesterov": (ConvergenceBudget(1e-3, 900), ConvergenceBudget(1e-3, 2_200)),  # 603, 1426
    "adagrad": (ConvergenceBudget(0.2, 150), ConvergenceBudget(0.5, 12_000)),  # 91, 7898
    # RMSprop's constant lr leaves it hovering at a floor that shrinks with lr: on
    # Rosenbrock it reaches 1e-4 (10,635 steps at lr 3e-4), not 1e-6 within 20,000.
    "rmsprop": (
        ConvergenceBudget(1e-2, 300),  # 190
        ConvergenceBudget(3e-4, 16_000, tolerance=1e-4),  # 10635
    ),
    "adam": (ConvergenceBudget(0.05, 250), ConvergenceBudget(0.5, 1_000)),  # 151, 618
    # AdamW's default weight decay (0.01) moves the minimum unless lr is small.
    "adamw": (ConvergenceBudget(0.05, 250), ConvergenceBudget(2e-3, 17_000)),  # 151, 11728
    "lbfgs": (ConvergenceBudget(1.0, 10), ConvergenceBudget(1.0, 10)),  # 2, 3
    "imo": (ConvergenceBudget(0.02, 220), ConvergenceBudget(0.01, 800)),  # 139, 539
    # MAMGD's unrooted bias correction makes its early steps small: slow on Rosenbrock.
    "mamgd": (ConvergenceBudget(0.5, 260), ConvergenceBudget(1.0, 14_000)),  # 170, 9370
    "scaled-adam": (ConvergenceBudget(0.05, 210), ConvergenceBudget(1.0, 720)),  # 134, 476
}
"""(ill-conditioned quadratic, Rosenbrock) budget per registry name: f - f* <= 1e-6 unless
stated, from the start points in :mod:`optlab.testing.objectives`."""


def subject_from_registry(name: str, **hyperparameters: Any) -> ContractSubject:
    """The contract subject of a registry entry, with its declared capabilities."""
    from optlab.optim import registry

    entry = registry.spec(name)
    invalid = [
        (field_name, value)
        for field_name, values in _GENERIC_INVALID.items()
        if field_name in entry.hyperparameters
        for value in values
    ]
    hp = {"lr": _SMALL_PROBLEM_LR.get(name, 1e-3), **hyperparameters}
    quadratic, rosenbrock = REGISTRY_BUDGETS.get(name, (None, None))
    return ContractSubject(
        name=name,
        factory=lambda params, **kw: registry.create(name, params, **kw),
        hyperparameters=hp,
        elementwise=entry.elementwise,
        supports_sparse=entry.supports_sparse,
        supports_foreach=entry.supports_foreach,
        foreach_bitwise=entry.foreach_bitwise,
        requires_closure=entry.requires_closure,
        supports_param_groups=entry.supports_param_groups,
        reference=REFERENCE_RULES.get(name),
        invalid=invalid,
        group_variation=_GROUP_VARIATION.get(name, {}),
        quadratic=quadratic,
        rosenbrock=rosenbrock,
        supports_compiled="compiled" in entry.hyperparameters,
        supports_fused="fused" in entry.hyperparameters,
        population_bitwise=name not in _POPULATION_ROUNDING,
    )


def with_hyperparameters(subject: ContractSubject, **hyperparameters: Any) -> ContractSubject:
    """The same subject with more hyperparameters (its reference sees them too)."""
    return replace(subject, hyperparameters={**subject.hyperparameters, **hyperparameters})
