"""What the contract kit checks: the subject (an optimizer and what it declares), and the
small drivers every check shares (parameters, a smooth separable loss, stepping)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from optlab.optim.spec import ConvergenceBudget
from optlab.testing.references import ReferenceRule

Factory = Callable[..., torch.optim.Optimizer]


class ContractFailure(AssertionError):
    """One or more contract checks failed; the message lists each with its reason."""


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
        invalid_combinations: ``(field, hyperparameters)``: values that pass alone but
            must be refused together, naming ``field`` (cross-field checks).
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
    invalid_combinations: Sequence[tuple[str, Mapping[str, Any]]] = ()
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
def make_params(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    return [
        torch.randn(shape, generator=generator, dtype=dtype).requires_grad_(True)
        for shape in shapes
    ]


def clone_params(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [param.detach().clone().requires_grad_(True) for param in params]


def loss_of(params: Sequence[torch.Tensor]) -> torch.Tensor:
    # Smooth, non-convex, separable by parameter: sum(0.5*(x-1)^2 + 0.1*sin(3x))
    return sum(
        torch.sum(0.5 * (param - 1.0) ** 2 + 0.1 * torch.sin(3.0 * param)) for param in params
    )


def closure_for(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]):
    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_of(params)
        loss.backward()
        return loss

    return closure


def run_steps(
    optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor], steps: int
) -> list[float]:
    closure = closure_for(optimizer, params)
    return [float(torch.as_tensor(optimizer.step(closure)).detach()) for _ in range(steps)]


def _values_differ(x: Any, y: Any, bitwise: bool, rtol: float) -> bool:
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) != len(y) or any(
            _values_differ(a, b, bitwise, rtol) for a, b in zip(x, y, strict=True)
        )
    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if x.shape != y.shape:
            return True
        y = y.to(dtype=x.dtype, device=x.device)
        return not (torch.equal(x, y) if bitwise else torch.allclose(x, y, rtol=rtol, atol=0))
    return x != y


def states_differ(
    first: torch.optim.Optimizer, second: torch.optim.Optimizer, bitwise: bool, rtol: float
) -> str | None:
    """Which state entry differs between two optimizers over the same parameter layout
    (tensors, lists of tensors and plain values; bit for bit or within ``rtol``), or None."""
    for index, (a, b) in enumerate(
        zip(
            first.state_dict()["state"].values(), second.state_dict()["state"].values(), strict=True
        )
    ):
        for key in a:
            if _values_differ(a[key], b.get(key), bitwise, rtol):
                return f"state[{index}][{key!r}] differs"
    return None


def params_equal(first: Sequence[torch.Tensor], second: Sequence[torch.Tensor]) -> bool:
    return all(torch.equal(a.detach(), b.detach()) for a, b in zip(first, second, strict=True))


class NotApplicable(Exception):
    """The check does not apply to this subject."""
