"""The contract kit's checks of an elementwise optimizer's other paths: a stacked
population, the flat layout, the compiled step and the fused kernels must each give the
numbers of the plain per-tensor step."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from optlab.testing.subject import (
    ContractFailure,
    ContractSubject,
    NotApplicable,
    clone_params,
    make_params,
    params_equal,
    run_steps,
    states_differ,
)


def check_population(subject: ContractSubject) -> None:
    """Elementwise: one optimizer over parameters stacked along a leading population axis
    equals N separate optimizers, one per member (float64, 10 steps, bit for bit)."""
    if not subject.elementwise:
        raise NotApplicable("not elementwise")
    members = 4
    separate = [make_params(seed=10 + member) for member in range(members)]
    stacked = [
        torch.stack([params[index].detach() for params in separate]).requires_grad_(True)
        for index in range(len(separate[0]))
    ]
    run_steps(subject.build(stacked), stacked, 10)  # the loss is a sum over members: separable
    for params in separate:
        run_steps(subject.build(params), params, 10)
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


def flat_copy(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    from optlab.optim.flat import flatten_parameters

    copies = clone_params(params)
    flatten_parameters(copies)
    return copies


def check_flat_layout(subject: ContractSubject) -> None:
    """Elementwise: on a flat layout (parameters and gradients views of one buffer), 20
    float64 steps equal the per-tensor path bit for bit, the gradients that ``zero_grad()``
    replaces each step are re-bound (never a stale buffer), and a state dict saved on
    either layout continues identically on the other."""
    if not subject.elementwise:
        raise NotApplicable("not elementwise")
    plain = make_params(seed=3)
    flat = flat_copy(plain)
    plain_optimizer, flat_optimizer = subject.build(plain), subject.build(flat)
    run_steps(plain_optimizer, plain, 10)
    run_steps(flat_optimizer, flat, 10)
    if not params_equal(plain, flat):
        raise ContractFailure("the flat layout's parameters differ from the per-tensor path")
    problem = states_differ(plain_optimizer, flat_optimizer, bitwise=True, rtol=0.0)
    if problem:
        raise ContractFailure(f"flat layout: {problem} from the per-tensor path")
    # cross-load: flat state into per-tensor params and back, then 10 more steps each
    to_plain, to_flat = clone_params(flat), flat_copy(plain)
    resumed_plain, resumed_flat = subject.build(to_plain), subject.build(to_flat)
    resumed_plain.load_state_dict(copy.deepcopy(flat_optimizer.state_dict()))
    resumed_flat.load_state_dict(copy.deepcopy(plain_optimizer.state_dict()))
    for optimizer, params in (
        (plain_optimizer, plain),
        (flat_optimizer, flat),
        (resumed_plain, to_plain),
        (resumed_flat, to_flat),
    ):
        run_steps(optimizer, params, 10)
    for label, params in (("flat", flat), ("flat->per-tensor", to_plain), ("->flat", to_flat)):
        if not params_equal(plain, params):
            raise ContractFailure(f"{label}: continued differently after load_state_dict")


def check_compiled(subject: ContractSubject) -> None:
    """``compiled=True`` equals ``compiled=False`` within float rounding (float64,
    1e-12 relative, 10 steps), on separate tensors and on a flat layout."""
    if not subject.supports_compiled:
        raise NotApplicable("no compiled flag")
    eager_params = make_params(seed=4)
    eager = subject.build(eager_params, compiled=False)
    run_steps(eager, eager_params, 10)
    for label, params in (
        ("per tensor", make_params(seed=4)),
        ("flat", flat_copy(make_params(seed=4))),
    ):
        run_steps(subject.build(params, compiled=True), params, 10)
        for a, b in zip(eager_params, params, strict=True):
            if not torch.allclose(a, b, rtol=1e-12, atol=1e-14):
                raise ContractFailure(f"compiled ({label}) parameters differ from eager")


def fused_params() -> list[torch.Tensor]:
    """The fixed shapes plus one of 40,001 elements: a kernel splits a group that large
    across threads, at a boundary inside a tensor."""
    large = torch.randn(40_001, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return [*make_params(seed=4), large.requires_grad_(True)]


def check_fused(subject: ContractSubject) -> None:
    """``fused=True`` equals ``fused=False`` within float rounding (float64, 1e-12
    relative, 10 steps), on separate tensors and on a flat layout. Not applicable where the
    fused kernels cannot run on this machine (optlab's need a C++ compiler)."""
    if not subject.supports_fused:
        raise NotApplicable("no fused flag")
    from optlab.optim import fused_cpu

    plain_params = fused_params()
    plain = subject.build(plain_params, fused=False)
    if getattr(plain, "fused_rule", None) is not None and not fused_cpu.available():
        raise NotApplicable(f"fused kernels unavailable here ({fused_cpu.unavailable_reason()})")
    run_steps(plain, plain_params, 10)
    for label, params in (("per tensor", fused_params()), ("flat", flat_copy(fused_params()))):
        run_steps(subject.build(params, fused=True), params, 10)
        for a, b in zip(plain_params, params, strict=True):
            if not torch.allclose(a, b, rtol=1e-12, atol=1e-14):
                raise ContractFailure(f"fused ({label}) parameters differ from fused=False")
