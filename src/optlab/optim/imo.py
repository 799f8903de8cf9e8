r"""IMO: the Inertial Mass Optimizer.

Source: A. K. P. (ashmithkp123-dotcom), "IMO — Inertial Mass Optimizer", a report in the
public repository ``ashmithkp123-dotcom/Inertial-Mass-Optimizer-IMO-`` (``IMO optimizer.pdf``).
Gradient = force, each coordinate carries an adaptive mass: light while the gradient keeps
its sign (fast), heavy while it oscillates (stable).

Update, per coordinate, at every step (with :math:`g_{prev}=0`, :math:`v=0`, :math:`m=1`
at the start):

.. math::

    dir &= \operatorname{sign}(g \cdot g_{prev}) \\
    m &\leftarrow \operatorname{clip}(m \cdot \alpha \text{ if } dir > 0
          \text{ else } m \cdot \beta,\; m_{min}, m_{max}) \\
    F &= g / (\sqrt{m} + \epsilon) \\
    v &\leftarrow \mu v + (1 - \mu) F \\
    \theta &\leftarrow \theta - \eta\, d \\
    g_{prev} &\leftarrow g

The report states the step direction :math:`d` two ways that disagree; ``step_form``
chooses:

- ``"soft-nesterov"`` (the report's equation, the default):
  :math:`d = \mu v + \tfrac12 (1-\mu) F`, and the mass grows (``m * beta``) whenever
  :math:`dir \le 0`, as the equation says.
- ``"algorithm-box"`` (the report's algorithm box): :math:`d = v` where :math:`dir > 0`,
  else :math:`d = F`; the mass grows only where :math:`dir < 0` and is left as it is where
  :math:`dir = 0` (e.g. the first step, or a zero gradient). The box writes
  :math:`\theta + \eta d`, a sign slip (it ascends); optlab descends.

In both forms :math:`v` is updated before it is used in :math:`d`. The default is the form
that best reproduces the report's own iteration counts; ``benchmarks/imo_report_table.py``
runs that reproduction and the README gives its figures.

State per parameter: ``prev_grad`` (:math:`g_{prev}`), ``mass`` (:math:`m`), ``velocity``
(:math:`v`), and ``step``; 3 parameter-sized tensors, so a float32 step moves 36 bytes per
parameter (Adam: 28).

Defaults (the report's): lr 0.1, momentum (:math:`\mu`) 0.9, alpha 0.9, beta 1.1,
mass_min 0.1, mass_max 10, eps 1e-8.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from optlab.optim.elementwise import ElementwiseOptimizer, lr_as_float
from optlab.optim.errors import InvalidValueError
from optlab.optim.hyperparameters import (
    ONE_PATH_VIOLATION,
    check_non_negative,
    check_optional_bool,
    check_positive,
    check_unit_interval,
    choice_field,
    member_learning_rates_field,
    one_path,
)
from optlab.optim.spec import NATIVE, ConvergenceBudget, KitData, OptimizerSpec

STEP_FORMS = ("soft-nesterov", "algorithm-box")


def imo_single_tensor_(
    param: torch.Tensor,
    grad: torch.Tensor,
    prev_grad: torch.Tensor,
    mass: torch.Tensor,
    velocity: torch.Tensor,
    lr: float | torch.Tensor,
    *,
    momentum: float,
    alpha: float,
    beta: float,
    mass_min: float,
    mass_max: float,
    eps: float,
    step_form: str,
) -> None:
    """One IMO step on one tensor, in place (the per-tensor loop and the compiled path)."""
    agreement = grad * prev_grad
    consistent = agreement > 0
    lighter = mass * alpha
    heavier = mass * beta
    if step_form == "algorithm-box":
        heavier = torch.where(agreement < 0, heavier, mass)
    mass.copy_(torch.where(consistent, lighter, heavier).clamp_(mass_min, mass_max))
    force = grad / mass.sqrt().add_(eps)
    velocity.mul_(momentum).add_(force, alpha=1 - momentum)
    if step_form == "algorithm-box":
        direction = torch.where(consistent, velocity, force)
    else:
        direction = (velocity * momentum).add_(force, alpha=0.5 * (1 - momentum))
    param.sub_(direction * lr)
    prev_grad.copy_(grad)


def imo_multi_tensor_(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    prev_grads: list[torch.Tensor],
    masses: list[torch.Tensor],
    velocities: list[torch.Tensor],
    lr: float,
    *,
    momentum: float,
    alpha: float,
    beta: float,
    mass_min: float,
    mass_max: float,
    eps: float,
    step_form: str,
) -> None:
    """The same step as :func:`imo_single_tensor_` over lists (``torch._foreach_*``)."""
    agreements = torch._foreach_mul(grads, prev_grads)
    consistent = [agreement > 0 for agreement in agreements]
    lighter = torch._foreach_mul(masses, alpha)
    heavier = torch._foreach_mul(masses, beta)
    if step_form == "algorithm-box":
        heavier = [
            torch.where(agreement < 0, heavy, mass)
            for agreement, heavy, mass in zip(agreements, heavier, masses, strict=True)
        ]
    new_masses = [
        torch.where(mask, light, heavy)
        for mask, light, heavy in zip(consistent, lighter, heavier, strict=True)
    ]
    torch._foreach_clamp_min_(new_masses, mass_min)
    torch._foreach_clamp_max_(new_masses, mass_max)
    torch._foreach_copy_(masses, new_masses)
    roots = torch._foreach_sqrt(masses)
    torch._foreach_add_(roots, eps)
    forces = torch._foreach_div(grads, roots)
    torch._foreach_mul_(velocities, momentum)
    torch._foreach_add_(velocities, forces, alpha=1 - momentum)
    if step_form == "algorithm-box":
        directions = [
            torch.where(mask, velocity, force)
            for mask, velocity, force in zip(consistent, velocities, forces, strict=True)
        ]
    else:
        directions = torch._foreach_mul(velocities, momentum)
        torch._foreach_add_(directions, forces, alpha=0.5 * (1 - momentum))
    torch._foreach_mul_(directions, lr)
    torch._foreach_sub_(params, directions)
    torch._foreach_copy_(prev_grads, grads)


class IMO(ElementwiseOptimizer):
    r"""The Inertial Mass Optimizer (see the module docstring for the equations and source).

    Args:
        params: parameters or parameter groups, as for any ``torch.optim.Optimizer``.
        lr: learning rate :math:`\eta` (default 0.1).
        momentum: velocity decay :math:`\mu` in [0, 1) (default 0.9).
        alpha: mass factor where the gradient keeps its sign, > 0 (default 0.9).
        beta: mass factor where it flips, > 0 (default 1.1).
        mass_min, mass_max: the mass is clipped to [mass_min, mass_max]
            (defaults 0.1 and 10; 0 < mass_min <= mass_max).
        eps: added to :math:`\sqrt{m}` (default 1e-8).
        step_form: ``"soft-nesterov"`` (default) or ``"algorithm-box"``.
        foreach, compiled, fused: which implementation runs (see
            :mod:`optlab.optim.elementwise`; ``fused`` is the one-pass C++ CPU kernel of
            :mod:`optlab.optim.fused_cpu`, the default for large CPU groups).

    Elementwise: stacked along a leading axis, N parameters are N independent optimizers.
    """

    state_names = ("prev_grad", "mass", "velocity")
    fused_rule = "imo"

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 0.1,
        momentum: float = 0.9,
        alpha: float = 0.9,
        beta: float = 1.1,
        mass_min: float = 0.1,
        mass_max: float = 10.0,
        eps: float = 1e-8,
        step_form: str = "soft-nesterov",
        *,
        foreach: bool | None = None,
        compiled: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "beta": beta,
            "mass_min": mass_min,
            "mass_max": mass_max,
            "eps": eps,
            "step_form": step_form,
        }
        super().__init__(params, defaults, foreach=foreach, compiled=compiled, fused=fused)

    @staticmethod
    def _validate(hyperparameters: dict[str, Any]) -> None:
        RECORD.check_group(hyperparameters, "IMO")

    def _init_state(
        self,
        group: dict[str, Any],
        param: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
    ) -> None:
        state["prev_grad"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["mass"] = torch.ones_like(param, memory_format=torch.preserve_format)
        state["velocity"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _step_scalars(self, group: dict[str, Any], step: int) -> tuple[float, ...]:
        return (lr_as_float(group["lr"]),)

    def _constants(self, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "momentum": group["momentum"],
            "alpha": group["alpha"],
            "beta": group["beta"],
            "mass_min": group["mass_min"],
            "mass_max": group["mass_max"],
            "eps": group["eps"],
            "step_form": group["step_form"],
        }

    def _fused_scalars(self, group: dict[str, Any], step: int) -> tuple[float | torch.Tensor, ...]:
        momentum = group["momentum"]
        return (
            lr_as_float(group["lr"]),
            momentum,
            1 - momentum,
            0.5 * (1 - momentum),
            group["alpha"],
            group["beta"],
            group["mass_min"],
            group["mass_max"],
            group["eps"],
            1.0 if group["step_form"] == "algorithm-box" else 0.0,
        )

    _single_tensor_rule = staticmethod(imo_single_tensor_)
    _multi_tensor_rule = staticmethod(imo_multi_tensor_)

    def _telemetry_extras(
        self, group: dict[str, Any], params: list[torch.Tensor]
    ) -> dict[str, float]:
        masses = [self.state[param]["mass"] for param in params]
        masses = [mass for mass in masses if mass.numel() > 0]
        if not masses:
            return {}
        count = sum(mass.numel() for mass in masses)
        return {
            "mass_mean": float(sum(mass.double().sum() for mass in masses)) / max(count, 1),
            "mass_min": min(float(mass.min()) for mass in masses),
            "mass_max": max(float(mass.max()) for mass in masses),
        }


def _mass_order(owner: str, hyperparameters: Mapping[str, Any]) -> None:
    """0 < mass_min <= mass_max."""
    low, high = hyperparameters.get("mass_min", 0.1), hyperparameters.get("mass_max", 10.0)
    if low > high:
        raise InvalidValueError(
            f"{owner}: mass_min must be <= mass_max, got mass_min={low!r} and mass_max={high!r}"
        )


RECORD = OptimizerSpec(
    "imo",
    IMO,
    {
        "lr": member_learning_rates_field,
        "momentum": check_unit_interval,
        "alpha": check_positive,
        "beta": check_positive,
        "mass_min": check_positive,
        "mass_max": check_positive,
        "eps": check_non_negative,
        "step_form": choice_field(STEP_FORMS),
        "foreach": check_optional_bool,
        "compiled": check_optional_bool,
        "fused": check_optional_bool,
    },
    "Inertial Mass Optimizer (optlab)",
    cross_checks=(_mass_order, one_path),
    foreach_bitwise=True,
    optlab_rule=True,
    population=NATIVE,
    kit=KitData(
        lr=0.05,
        quadratic=ConvergenceBudget(0.02, 220),  # measured: 139 steps
        rosenbrock=ConvergenceBudget(0.01, 800),  # 539
        group_variation={"momentum": 0.5},
        reference="imo",
        invalid_combinations=(
            ("mass_min", {"mass_min": 5.0, "mass_max": 1.0}),
            ONE_PATH_VIOLATION,
        ),
    ),
)
"""IMO's one record: checks, capabilities, population form and contract-kit data."""
