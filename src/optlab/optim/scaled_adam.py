r"""ScaledAdam: Adam whose second-moment update scales the squared gradient (the "modified Adam").

.. math::

    m &\leftarrow \beta_1 m + (1-\beta_1) g \\
    v &\leftarrow \beta_2 v + (1-\beta_2)\, s\, g^2 \\
    \theta &\leftarrow \theta - \eta\, \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

with scale :math:`s > 0` (default 1.1). The rule is an identity in disguise: with
:math:`v = s\,v'` where :math:`v'` is Adam's second moment,

.. math::

    \text{ScaledAdam}(\eta, \epsilon, s) \;=\; \text{Adam}(\eta/\sqrt{s},\; \epsilon/\sqrt{s}),

exactly (up to the rounding of :math:`\eta/\sqrt{s}` and :math:`\epsilon/\sqrt{s}`; bit for bit
when s = 1). So ScaledAdam has no kernel of its own: it *is* ``torch.optim.Adam`` (its loop,
``foreach`` and ``fused`` paths, ``amsgrad``, L2 ``weight_decay``), stepped with the
learning rate and eps of each group divided by :math:`\sqrt{s}`. Consequence for the state:
``exp_avg_sq`` holds Adam's :math:`v' = v/s`, and a state dict moves freely between
ScaledAdam and Adam. ``group["lr"]`` stays the user's :math:`\eta`, so learning-rate
schedulers work unchanged. Decoupled weight decay (AdamW) is not offered: it would be
scaled by :math:`1/\sqrt{s}` too.

Source: the "modified Adam" of the seed notebooks this project grew from (the
``(1-beta2) * scale * g^2`` second moment); Adam itself is Kingma & Ba, "Adam: A Method
for Stochastic Optimization", ICLR 2015.

State per parameter: as Adam (``step``, ``exp_avg``, ``exp_avg_sq``; ``max_exp_avg_sq``
with amsgrad); 28 bytes moved per float32 parameter and step.

Default path: where ``foreach`` and ``fused`` are both left as ``None`` and every parameter
of a group is a floating-point CPU tensor, the group runs torch's ``fused=True`` CPU kernel
(decided at the first step, so parameters may move to a device before it): on CPU that is
torch's fastest Adam, about twice as fast as its default per-tensor loop. Elsewhere torch's
own default applies (``foreach`` on CUDA). ``fused=False`` forces torch's default choice.

Non-contiguous parameters: torch's fused CPU Adam (2.14.1 and earlier) gives wrong numbers
for a strided parameter or gradient (e.g. ``torch.randn(10, 5, 2)[..., 0]``: 5e-3 off after
three steps). So a group that holds one, on CPU, steps through torch's per-tensor loop
instead, for that step, whether ``fused=True`` was chosen by default or asked for; the
numbers are then those of contiguous parameters (the contract kit checks it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from optlab.optim.hyperparameters import (
    ONE_PATH_VIOLATION,
    betas_field,
    check_bool,
    check_non_negative,
    check_optional_bool,
    check_positive,
    learning_rate_field,
    one_path,
)
from optlab.optim.spec import ConvergenceBudget, KitData, OptimizerSpec, PopulationForm


def _fused_pays(group: dict) -> bool:  # type: ignore[type-arg]
    """torch's fused CPU Adam applies: every parameter a floating-point CPU tensor, and no
    option that torch's fused kernel refuses."""
    params = group["params"]
    return (
        bool(params)
        and not group.get("differentiable", False)
        and not group.get("capturable", False)
        and not isinstance(group["lr"], torch.Tensor)
        and all(
            param.device.type == "cpu"
            and param.dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16)
            for param in params
        )
    )


def _strided_on_cpu(group: dict) -> bool:  # type: ignore[type-arg]
    """The group holds a CPU parameter (or gradient) that is not contiguous: torch's fused
    CPU Adam mishandles those (see the module docstring)."""
    return any(
        param.device.type == "cpu"
        and (
            not param.is_contiguous() or (param.grad is not None and not param.grad.is_contiguous())
        )
        for param in group["params"]
    )


def _adam_step_without_hooks() -> Callable[..., object]:
    """torch's Adam.step without the hook wrapper torch adds to it once an Adam exists.

    ScaledAdam's own step is wrapped by the same machinery, so calling the wrapped Adam.step
    would run the user's step hooks twice.
    """
    step = torch.optim.Adam.step
    return step.__wrapped__ if getattr(step, "hooked", False) else step  # type: ignore[attr-defined]


class ScaledAdam(torch.optim.Adam):
    r"""Adam with the squared gradient scaled by ``scale`` in the second moment.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-3).
        betas: (beta1, beta2), each in [0, 1) (default (0.9, 0.999)).
        eps: stabiliser, >= 0 (default 1e-8).
        scale: the factor :math:`s` > 0 on :math:`(1-\beta_2) g^2` (default 1.1).
        weight_decay: L2 penalty added to the gradient, >= 0 (default 0).
        amsgrad, foreach, maximize, capturable, differentiable, fused: as in
            ``torch.optim.Adam``.

    See the module docstring for the equations and the identity with Adam.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        scale: float = 1.1,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        given = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "scale": scale,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "foreach": foreach,
            "maximize": maximize,
            "fused": fused,
        }
        RECORD.check_group(given, "ScaledAdam")
        check_bool("ScaledAdam", "capturable", capturable)  # the registry does not offer
        check_bool("ScaledAdam", "differentiable", differentiable)  # these two
        betas = betas_field("ScaledAdam", "betas", betas)
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        self.defaults["scale"] = scale
        for group in self.param_groups:
            group.setdefault("scale", scale)

    def __setstate__(self, state: dict) -> None:  # type: ignore[type-arg]
        """Also after ``load_state_dict`` of an Adam state dict: groups without ``scale``
        take the constructor's."""
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("scale", self.defaults.get("scale", 1.1))

    def add_param_group(self, param_group: dict) -> None:  # type: ignore[type-arg]
        """Add a group; its ``scale`` defaults to the constructor's. The group, filled with
        the defaults, is checked by the record (fields and cross-field rules); an invalid
        group is not added."""
        super().add_param_group(param_group)
        try:
            RECORD.check_group(self.param_groups[-1], "ScaledAdam")
        except (TypeError, ValueError):
            self.param_groups.pop()
            raise

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One step: Adam's, with each group's lr and eps divided by sqrt(scale)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["fused"] is None and group["foreach"] is None:
                group["fused"] = _fused_pays(group) or None
        saved = [(group["lr"], group["eps"], group["fused"]) for group in self.param_groups]
        try:
            for group in self.param_groups:
                root = math.sqrt(group["scale"])
                group["lr"] = group["lr"] / root
                group["eps"] = group["eps"] / root
                if group["fused"] and _strided_on_cpu(group):
                    group["fused"] = False  # this step only: torch's loop is right on strides
            _adam_step_without_hooks()(self)
        finally:
            for group, (lr, eps, fused) in zip(self.param_groups, saved, strict=True):
                group["lr"], group["eps"], group["fused"] = lr, eps, fused
        return loss


def as_adam(hyperparameters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The identity ScaledAdam(lr, eps, s) = Adam(lr / sqrt(s), eps / sqrt(s)): the ``adam``
    entry's hyperparameters equal to ScaledAdam's (``lr`` a number or a per-member tensor)."""
    rewritten = dict(hyperparameters)
    root = math.sqrt(rewritten.pop("scale", 1.1))
    rewritten["eps"] = rewritten.get("eps", 1e-8) / root
    if "lr" in rewritten:
        rewritten["lr"] = rewritten["lr"] / root
    return "adam", rewritten


RECORD = OptimizerSpec(
    "scaled-adam",
    ScaledAdam,
    {
        "lr": learning_rate_field,
        "betas": betas_field,
        "eps": check_non_negative,
        "scale": check_positive,
        "weight_decay": check_non_negative,
        "amsgrad": check_bool,
        "foreach": check_optional_bool,
        "maximize": check_bool,
        "fused": check_optional_bool,
    },
    "Adam with a scaled second moment = Adam(lr/sqrt(s), eps/sqrt(s)) (optlab)",
    cross_checks=(one_path,),
    optlab_rule=True,
    population=PopulationForm("identity", rewrite=as_adam),
    kit=KitData(
        lr=0.05,
        quadratic=ConvergenceBudget(0.05, 210),  # measured: 134 steps
        rosenbrock=ConvergenceBudget(1.0, 720),  # 476
        group_variation={"scale": 3.0},
        reference="scaled-adam",
        invalid_combinations=(ONE_PATH_VIOLATION,),
        population_bitwise=False,  # its CPU default is torch's fused kernel
    ),
)
"""ScaledAdam's one record: checks, capabilities, population form and contract-kit data."""
