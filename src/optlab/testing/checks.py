"""The contract kit's checks of an optimizer's rule and its torch API (``shared/DESIGN.md``
points 1-10, and what an outside suite found missing: strided parameters, gradients with a
graph, schedulers built before the first step, groups without lr, repr).

Each check takes a :class:`~optlab.testing.subject.ContractSubject`, raises
:class:`~optlab.testing.subject.ContractFailure` naming what differs, or
:class:`~optlab.testing.subject.NotApplicable` where the subject does not declare it.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from optlab.testing.objectives import (
    ILL_CONDITIONED_QUADRATIC,
    ROSENBROCK_2D,
    Objective,
    smooth_gradient,
)
from optlab.testing.subject import (
    ContractFailure,
    ContractSubject,
    ConvergenceBudget,
    NotApplicable,
    clone_params,
    closure_for,
    loss_of,
    make_params,
    params_equal,
    run_steps,
    states_differ,
)


def check_reference(subject: ContractSubject) -> None:
    """1. 100 float64 steps equal the NumPy reference to 1e-10 relative."""
    if subject.reference is None:
        raise NotApplicable("no NumPy reference")
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
        raise NotApplicable("no foreach path")
    for dtype in (torch.float64, torch.float32):
        loop_params, foreach_params = make_params(dtype), make_params(dtype)
        loop = subject.build(loop_params, foreach=False)
        multi = subject.build(foreach_params, foreach=True)
        run_steps(loop, loop_params, 20)
        run_steps(multi, foreach_params, 20)
        rtol = 1e-10 if dtype == torch.float64 else 1e-5
        for a, b in zip(loop_params, foreach_params, strict=True):
            same = torch.equal(a, b) if subject.foreach_bitwise else torch.allclose(a, b, rtol=rtol)
            if not same:
                raise ContractFailure(f"foreach {dtype} parameters differ from the loop")
        problem = states_differ(loop, multi, subject.foreach_bitwise, rtol)
        if problem:
            raise ContractFailure(f"foreach {dtype} {problem} from the per-tensor loop")


def check_state_dict(subject: ContractSubject) -> None:
    """3. state_dict -> new optimizer -> load_state_dict continues bit-identically."""
    params = make_params()
    optimizer = subject.build(params)
    run_steps(optimizer, params, 5)
    saved = copy.deepcopy(optimizer.state_dict())
    resumed_params = clone_params(params)
    resumed = subject.build(resumed_params)
    resumed.load_state_dict(saved)
    run_steps(optimizer, params, 5)
    run_steps(resumed, resumed_params, 5)
    if not params_equal(params, resumed_params):
        raise ContractFailure("resumed optimizer diverged from the original after load_state_dict")


def check_param_groups(subject: ContractSubject) -> None:
    """4. Per-group hyperparameters, add_param_group, and lr=0 groups."""
    if not subject.supports_param_groups:
        raise NotApplicable("single parameter group only")
    base_lr = subject.hyperparameters.get("lr", 1e-3)
    varied = {"lr": base_lr * 0.5, **subject.group_variation}
    first, second, frozen = make_params(seed=1), make_params(seed=2), make_params(seed=3)
    frozen_start = clone_params(frozen)
    together = subject.build(
        [
            {"params": first},
            {"params": second, **varied},
            {"params": frozen, "lr": 0.0},
        ]
    )
    run_steps(together, first + second + frozen, 10)
    if not params_equal(frozen, frozen_start):
        raise ContractFailure("a parameter group with lr=0 changed")
    if params_equal(first, make_params(seed=1)):
        raise ContractFailure("a parameter group with lr>0 did not change")
    if subject.elementwise:
        alone_first, alone_second = make_params(seed=1), make_params(seed=2)
        run_steps(subject.build(alone_first), alone_first, 10)
        run_steps(subject.build(alone_second, **varied), alone_second, 10)
        if not (params_equal(first, alone_first) and params_equal(second, alone_second)):
            raise ContractFailure(f"per-group hyperparameters {varied} not respected")
        if subject.group_variation:
            # the variation must matter, or the comparison above proves nothing about it
            lr_only = make_params(seed=2)
            run_steps(subject.build(lr_only, lr=base_lr * 0.5), lr_only, 10)
            if params_equal(lr_only, alone_second):
                raise ContractFailure(f"{subject.group_variation} changes nothing")
    late = make_params(seed=4)
    growing_params = make_params(seed=1)
    growing = subject.build(growing_params)
    run_steps(growing, growing_params, 2)
    growing.add_param_group({"params": late, "lr": base_lr})
    run_steps(growing, growing_params + late, 3)
    if params_equal(late, make_params(seed=4)):
        raise ContractFailure("a group added with add_param_group was not updated")


def check_closure(subject: ContractSubject) -> None:
    """5. step(closure) returns the closure's loss; params without grad are untouched."""
    params = make_params()
    idle = torch.ones(3, dtype=torch.float64, requires_grad=True)
    optimizer = subject.build([*params, idle])
    sentinel = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_of(params)
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
    if not subject.invalid and not subject.invalid_combinations:
        raise NotApplicable("no invalid hyperparameters declared")
    for name, value in subject.invalid:
        try:
            subject.build(make_params(), **{name: value})
        except (ValueError, TypeError) as error:
            field_name = name.split("[")[0]
            if not re.search(rf"(?<![\w.]){re.escape(field_name)}\b", str(error)):
                raise ContractFailure(
                    f"{name}={value!r} raised without naming {name!r}: {error}"
                ) from error
        else:
            raise ContractFailure(f"{name}={value!r} was accepted")
    for name, combination in subject.invalid_combinations:
        try:
            subject.build(make_params(), **combination)
        except (ValueError, TypeError) as error:
            if not re.search(rf"(?<![\w.]){re.escape(name)}\b", str(error)):
                raise ContractFailure(
                    f"{combination} raised without naming {name!r}: {error}"
                ) from error
        else:
            raise ContractFailure(f"{combination} was accepted")


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
    params = make_params()
    losses = run_steps(subject.build(params), params, 20)
    final = float(loss_of(params).detach())
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
        raise NotApplicable("no convergence budget declared")
    if subject.quadratic is not None:
        _converge(subject, ILL_CONDITIONED_QUADRATIC, subject.quadratic)
    if subject.rosenbrock is not None:
        _converge(subject, ROSENBROCK_2D, subject.rosenbrock)


def check_lr_scheduler(subject: ContractSubject) -> None:
    """8. Works with torch.optim.lr_scheduler: group["lr"] is read at every step."""
    params = make_params()
    optimizer = subject.build(params)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: 1.0 if epoch < 2 else 0.0
    )
    closure = closure_for(optimizer, params)
    for _ in range(2):
        optimizer.step(closure)
        scheduler.step()
    if optimizer.param_groups[0]["lr"] != 0.0:
        raise ContractFailure("the scheduler did not set group['lr']")
    frozen = clone_params(params)
    for _ in range(3):
        optimizer.step(closure)
    if not params_equal(params, frozen):
        raise ContractFailure("parameters moved after a scheduler set lr to 0")


def check_dtypes(subject: ContractSubject) -> None:
    """9a. float32 and float64 parameters: dtype kept, same trajectory within float32."""
    results = {}
    for dtype in (torch.float32, torch.float64):
        params = make_params(dtype)
        optimizer = subject.build(params)
        run_steps(optimizer, params, 10)
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


def _strided_views(seed: int) -> list[torch.Tensor]:
    """Non-contiguous parameters of three kinds: transposed (dense, permuted strides), a
    slice with gaps (``randn(10, 5, 2)[..., 0]``) and a stepped slice of a 3-D tensor."""
    generator = torch.Generator().manual_seed(seed)
    transposed = torch.randn(3, 5, dtype=torch.float64, generator=generator).t()
    gapped = torch.randn(10, 5, 2, dtype=torch.float64, generator=generator)[..., 0]
    stepped = torch.randn(4, 6, 3, dtype=torch.float64, generator=generator)[:, ::2, 1:]
    views = [transposed, gapped, stepped]
    if any(view.is_contiguous() for view in views):
        raise AssertionError("test set-up: every strided parameter should be non-contiguous")
    return [torch.nn.Parameter(view) for view in views]


def check_non_contiguous(subject: ContractSubject) -> None:
    """9b. Non-contiguous parameters (transposed, and slices with gaps) give the numbers of
    contiguous copies of them: 10 steps, parameters and every state entry (float64)."""
    strided = _strided_views(seed=5)
    dense = [torch.nn.Parameter(view.detach().contiguous()) for view in strided]
    strided_optimizer, dense_optimizer = subject.build(strided), subject.build(dense)
    run_steps(strided_optimizer, strided, 10)
    run_steps(dense_optimizer, dense, 10)
    for index, (a, b) in enumerate(zip(strided, dense, strict=True)):
        if not torch.allclose(a, b, rtol=1e-12, atol=1e-14):
            error = float((a - b).detach().abs().max())
            raise ContractFailure(
                f"non-contiguous parameter {index} {tuple(a.shape)} (strides {a.stride()}) "
                f"differs from a contiguous copy (max abs {error:.3g})"
            )
    problem = states_differ(strided_optimizer, dense_optimizer, bitwise=False, rtol=1e-12)
    if problem:
        raise ContractFailure(f"non-contiguous parameters: {problem} from contiguous ones")


def check_deepcopy(subject: ContractSubject) -> None:
    """10a. deepcopy gives an independent optimizer that continues as the original does."""
    params = make_params()
    optimizer = subject.build(params)
    run_steps(optimizer, params, 2)
    before = clone_params(params)
    duplicate = copy.deepcopy(optimizer)
    duplicate_params = duplicate.param_groups[0]["params"]
    run_steps(duplicate, duplicate_params, 3)
    if not params_equal(params, before):
        raise ContractFailure("stepping a deepcopy changed the original's parameters")
    run_steps(optimizer, params, 3)
    if not params_equal(params, duplicate_params):
        raise ContractFailure("a deepcopy does not continue as the original does")


def check_repr(subject: ContractSubject) -> None:
    """10b. ``repr()`` is readable, as torch's: it names the class and, for every parameter
    group, the group and its lr, before and after steps."""
    first, second = make_params(seed=1), make_params(seed=2)
    lr = subject.hyperparameters.get("lr", 1e-3)
    if subject.supports_param_groups:
        optimizer = subject.build([{"params": first}, {"params": second, "lr": lr * 0.5}])
        params = first + second
    else:
        optimizer, params = subject.build(first), first
    for stage in ("before the first step", "after steps"):
        text = repr(optimizer)
        if type(optimizer).__name__ not in text:
            raise ContractFailure(f"repr {stage} does not name the class: {text!r}")
        for index, group in enumerate(optimizer.param_groups):
            if f"Parameter Group {index}" not in text:
                raise ContractFailure(f"repr {stage} does not list parameter group {index}")
            if f"lr: {group['lr']}" not in text:
                raise ContractFailure(
                    f"repr {stage} does not show group {index}'s lr {group['lr']}: {text!r}"
                )
        run_steps(optimizer, params, 2)


def check_create_graph(subject: ContractSubject) -> None:
    """``step(closure)`` whose closure calls ``backward(create_graph=True)`` (gradients that
    carry a graph, as in gradient-penalty training): the step returns the closure's loss,
    parameters stay leaves and move as with plain gradients."""
    params, plain = make_params(), make_params()
    optimizer, reference = subject.build(params), subject.build(plain)
    losses: list[torch.Tensor] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_of(params)
        loss.backward(create_graph=True)
        losses.append(loss)
        return loss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns of the reference cycle it creates
        for _ in range(3):
            first_call = len(losses)  # L-BFGS calls the closure more than once a step
            returned = optimizer.step(closure)
            if returned is None or not torch.equal(
                torch.as_tensor(returned).detach(), losses[first_call].detach()
            ):
                raise ContractFailure(f"step(closure) returned {returned!r}, not the loss")
    run_steps(reference, plain, 3)
    for index, (a, b) in enumerate(zip(params, plain, strict=True)):
        if a.grad_fn is not None or not a.is_leaf:
            raise ContractFailure(f"parameter {index} is no longer a leaf after create_graph")
        if not torch.allclose(a.detach(), b.detach(), rtol=1e-12, atol=1e-14):
            raise ContractFailure(
                f"parameter {index} moved differently with create_graph=True gradients"
            )


_SCHEDULERS: dict[str, Callable[[torch.optim.Optimizer], Any]] = {
    "StepLR": lambda optimizer: torch.optim.lr_scheduler.StepLR(optimizer, 2, gamma=0.5),
    "ExponentialLR": lambda optimizer: torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.5),
    "ReduceLROnPlateau": lambda optimizer: torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=0
    ),
}


def _lr_value(lr: Any) -> float:
    """A group's lr as a number (torch accepts a one-element tensor, which schedulers
    update in place: a stored reference would show only the last value)."""
    return float(lr.detach()) if isinstance(lr, torch.Tensor) else float(lr)


def _set_lr(group: dict[str, Any], value: float) -> None:
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


def check_scheduler_before_first_step(subject: ContractSubject) -> None:
    """torch's StepLR, ExponentialLR and ReduceLROnPlateau constructed before the first
    step: construction leaves lr as it was, and 5 steps under each equal 5 steps with the
    same learning rates set by hand, and differ from 5 steps at the first lr (the changes
    are used, not only recorded; unless that run stood still after its first step, as
    L-BFGS may on the small problem); parameters within 1e-12."""
    for label, make in _SCHEDULERS.items():
        params = make_params()
        optimizer = subject.build(params)
        before = _lr_value(optimizer.param_groups[0]["lr"])
        scheduler = make(optimizer)
        if _lr_value(optimizer.param_groups[0]["lr"]) != before:
            raise ContractFailure(
                f"constructing {label} changed lr from {before} to "
                f"{_lr_value(optimizer.param_groups[0]['lr'])}"
            )
        closure, used = closure_for(optimizer, params), []
        for _ in range(5):
            used.append(_lr_value(optimizer.param_groups[0]["lr"]))
            optimizer.step(closure)
            scheduler.step(1.0) if label == "ReduceLROnPlateau" else scheduler.step()
        if len(set(used)) < 2:
            raise ContractFailure(f"{label} never changed lr (used {used})")
        by_hand, constant = make_params(), make_params()
        manual = subject.build(by_hand)
        manual_closure = closure_for(manual, by_hand)
        for value in used:
            for group in manual.param_groups:
                _set_lr(group, value)
            manual.step(manual_closure)
        steady = subject.build(constant)
        run_steps(steady, constant, 1)
        after_one = clone_params(constant)
        run_steps(steady, constant, 4)
        converged = params_equal(constant, after_one)  # e.g. L-BFGS within its first step
        for index, (a, b) in enumerate(zip(params, by_hand, strict=True)):
            if not torch.allclose(a.detach(), b.detach(), rtol=1e-12, atol=1e-14):
                raise ContractFailure(
                    f"under {label} constructed before the first step, parameter {index} "
                    "differs from the same learning rates set by hand"
                )
        if not converged and params_equal(params, constant):
            raise ContractFailure(
                f"under {label} the parameters equal a run at the first lr: the scheduled "
                f"learning rates {used} were not used"
            )


def check_group_default_lr(subject: ContractSubject) -> None:
    """A parameter group given without ``lr`` takes the optimizer's default lr
    (``optimizer.defaults["lr"]``): its value in ``param_groups`` and its numbers equal an
    optimizer built with that lr."""
    first, second = make_params(seed=1), make_params(seed=2)
    if subject.supports_param_groups:
        other = _lr_value(subject.build(make_params()).defaults["lr"]) * 0.5
        optimizer = subject.build([{"params": first}, {"params": second, "lr": other}])
        params = first + second
    else:
        optimizer, params = subject.build([{"params": first}]), first
    default = _lr_value(optimizer.defaults["lr"])
    given = optimizer.param_groups[0].get("lr")
    if given is None or _lr_value(given) != default:
        raise ContractFailure(f"a group without lr has lr {given!r}, not the default {default!r}")
    run_steps(optimizer, params, 5)
    alone = make_params(seed=1)
    run_steps(subject.build(alone), alone, 5)
    if not params_equal(first, alone):
        raise ContractFailure("a group without lr does not step as with the default lr")


def check_nonfinite_gradients(subject: ContractSubject) -> None:
    """NaN/inf gradients propagate into the parameters (documented; never silently skipped)."""
    if not subject.elementwise:
        raise NotApplicable("not elementwise")
    param = torch.ones(3, dtype=torch.float64, requires_grad=True)
    optimizer = subject.build([param])
    param.grad = torch.tensor([1.0, math.nan, 1.0], dtype=torch.float64)
    optimizer.step()
    if not math.isnan(float(param.detach()[1])):
        raise ContractFailure("a NaN gradient did not reach its parameter (silently skipped?)")
    if not (math.isfinite(float(param.detach()[0])) and math.isfinite(float(param.detach()[2]))):
        raise ContractFailure("a NaN gradient leaked into other coordinates")
