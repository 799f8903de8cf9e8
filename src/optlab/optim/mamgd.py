r"""MAMGD: gradient-based optimization with exponential decay and a discrete second derivative.

Source: N. Sakovich, D. Aksenov, E. Pleshakova, S. Gataullin, "MAMGD: Gradient-Based
Optimization Method Using Exponential Decay", *Technologies* 2024, 12(9), 154
(doi:10.3390/technologies12090154), Algorithm 6; Keras code in the public repository
``NekkittAY/MAMGD_Optimizer`` (``optimizer.py``).

Update at step :math:`t = 1, 2, \ldots`, per coordinate:

.. math::

    \beta_{1,t} &= \beta_1 e^{-k(t-1)}, \qquad \beta_{2,t} = \beta_2 e^{-k(t-1)} \\
    m &\leftarrow \beta_{1,t} m + (1 - \beta_{1,t}) g \\
    n &\leftarrow \beta_{2,t} n + (1 - \beta_{2,t}) g^2 \\
    c &= \frac{g - g_{prev}}{\theta - \theta_{prev} + \epsilon}
        \quad (c = 0 \text{ where the denominator is exactly } 0) \\
    \alpha_t &= \eta \, \frac{1 - \beta_{2,t}^{\,t}}{1 - \beta_{1,t}^{\,t}} \\
    \theta_{prev} &\leftarrow \theta, \quad g_{prev} \leftarrow g \\
    \theta &\leftarrow \theta - \alpha_t \, \frac{m}{\sqrt{c^2 + n} + \epsilon}

Choices, where the paper and the published code differ, follow the code's arithmetic:

- the decayed :math:`\beta_{i,t}` enter both the moving averages and the bias correction,
  and the bias correction raises the *decayed* beta to the power t;
- the step size is :math:`\eta (1-\beta_{2,t}^t)/(1-\beta_{1,t}^t)` with no square root on
  the second-moment correction (sic: unlike Adam);
- :math:`\epsilon` appears twice: in the secant denominator and after the square root.

The curvature term :math:`c` is a secant estimate of the second derivative from the
previous parameter and gradient, kept in the state. At the first step there is no previous
point: the state starts with :math:`\theta_{prev} = \theta` and :math:`g_{prev} = g`, so
:math:`c = 0`. The 0/0 guard matters when ``eps=0`` (or :math:`\Delta\theta = -\epsilon`).

``as_published=True`` reproduces what the published Keras code computes: there the
"previous" parameter and gradient are read *after* being overwritten (the Python names
``var0``/``G0`` are bound to the same variables as ``var``/``G``), so :math:`c` is always
``0 / (0 + eps) = 0`` and the rule is Adam-like with the step size above. That mode keeps
no previous parameter or gradient.

State per parameter: ``exp_avg`` (m), ``exp_avg_sq`` (n), ``prev_param``, ``prev_grad``
(the latter two only with ``as_published=False``), and ``step``. A float32 step moves 44
bytes per parameter (28 with ``as_published=True``).

Defaults (the paper's and the code's): lr 1e-3, betas (0.9, 0.999), k 1e-5, eps 1e-7.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from optlab.optim.elementwise import ElementwiseOptimizer, lr_as_float
from optlab.optim.hyperparameters import (
    ONE_PATH_VIOLATION,
    betas_field,
    check_bool,
    check_non_negative,
    check_optional_bool,
    member_learning_rates_field,
    one_path,
)
from optlab.optim.spec import NATIVE, ConvergenceBudget, KitData, OptimizerSpec


def mamgd_single_tensor_(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    prev_param: torch.Tensor | None,
    prev_grad: torch.Tensor | None,
    step_size: float | torch.Tensor,
    beta1: float | torch.Tensor,
    one_minus_beta1: float | torch.Tensor,
    beta2: float | torch.Tensor,
    one_minus_beta2: float | torch.Tensor,
    *,
    eps: float,
) -> None:
    """One MAMGD step on one tensor, in place (``prev_*`` are None when as published)."""
    exp_avg.mul_(beta1).add_(grad * one_minus_beta1)
    exp_avg_sq.mul_(beta2).add_(grad * grad * one_minus_beta2)
    if prev_param is None or prev_grad is None:
        denominator = exp_avg_sq.sqrt().add_(eps)
    else:
        gap = (param - prev_param).add_(eps)
        secant = torch.where(gap != 0, (grad - prev_grad) / gap, 0.0)
        denominator = (secant * secant).add_(exp_avg_sq).sqrt_().add_(eps)
        prev_param.copy_(param)
        prev_grad.copy_(grad)
    param.sub_((exp_avg * step_size).div_(denominator))


def mamgd_multi_tensor_(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    prev_params: list[torch.Tensor] | None,
    prev_grads: list[torch.Tensor] | None,
    step_size: float,
    beta1: float,
    one_minus_beta1: float,
    beta2: float,
    one_minus_beta2: float,
    *,
    eps: float,
) -> None:
    """The same step as :func:`mamgd_single_tensor_` over lists (``torch._foreach_*``)."""
    torch._foreach_mul_(exp_avgs, beta1)
    torch._foreach_add_(exp_avgs, torch._foreach_mul(grads, one_minus_beta1))
    squares = torch._foreach_mul(grads, grads)
    torch._foreach_mul_(squares, one_minus_beta2)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_add_(exp_avg_sqs, squares)
    if prev_params is None or prev_grads is None:
        denominators = torch._foreach_sqrt(exp_avg_sqs)
    else:
        gaps = torch._foreach_sub(params, prev_params)
        torch._foreach_add_(gaps, eps)
        ratios = torch._foreach_div(torch._foreach_sub(grads, prev_grads), gaps)
        secants = [
            torch.where(gap != 0, ratio, 0.0) for gap, ratio in zip(gaps, ratios, strict=True)
        ]
        denominators = torch._foreach_mul(secants, secants)
        torch._foreach_add_(denominators, exp_avg_sqs)
        torch._foreach_sqrt_(denominators)
        torch._foreach_copy_(prev_params, params)
        torch._foreach_copy_(prev_grads, grads)
    torch._foreach_add_(denominators, eps)
    updates = torch._foreach_mul(exp_avgs, step_size)
    torch._foreach_div_(updates, denominators)
    torch._foreach_sub_(params, updates)


def mamgd_step_scalars(
    lr: float, beta1: float, beta2: float, k: float, step: int
) -> tuple[float, float, float, float, float]:
    """(step size, beta1_t, 1 - beta1_t, beta2_t, 1 - beta2_t) at 1-based ``step``."""
    decay = math.exp(-k * (step - 1))
    beta1_t = beta1 * decay
    beta2_t = beta2 * decay
    step_size = lr * (1 - beta2_t**step) / (1 - beta1_t**step)
    return step_size, beta1_t, 1 - beta1_t, beta2_t, 1 - beta2_t


class MAMGD(ElementwiseOptimizer):
    r"""MAMGD (see the module docstring for the equations, the source and every choice).

    Args:
        params: parameters or parameter groups, as for any ``torch.optim.Optimizer``.
        lr: learning rate :math:`\eta` (default 1e-3).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1) (default (0.9, 0.999)).
        k: exponential decay rate of the betas, >= 0 (default 1e-5).
        eps: stabiliser, >= 0 (default 1e-7).
        as_published: reproduce the published Keras code (curvature term always 0).
        foreach, compiled, fused: which implementation runs (see
            :mod:`optlab.optim.elementwise`; ``fused`` is the one-pass C++ CPU kernel of
            :mod:`optlab.optim.fused_cpu`, the default for large CPU groups).

    Elementwise: stacked along a leading axis, N parameters are N independent optimizers.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        k: float = 1e-5,
        eps: float = 1e-7,
        as_published: bool = False,
        *,
        foreach: bool | None = None,
        compiled: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = {"lr": lr, "betas": betas, "k": k, "eps": eps, "as_published": as_published}
        super().__init__(params, defaults, foreach=foreach, compiled=compiled, fused=fused)

    @staticmethod
    def _validate(hyperparameters: dict[str, Any]) -> None:
        RECORD.check_group(hyperparameters, "MAMGD")

    # The rules take prev_param/prev_grad positionally; as published they are None.
    state_names = ("exp_avg", "exp_avg_sq", "prev_param", "prev_grad")
    fused_rule = "mamgd"

    def _init_state(
        self,
        group: dict[str, Any],
        param: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
    ) -> None:
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        as_published = group["as_published"]
        state["prev_param"] = None if as_published else param.detach().clone()
        state["prev_grad"] = None if as_published else grad.detach().clone()

    def _step_scalars(self, group: dict[str, Any], step: int) -> tuple[float, ...]:
        beta1, beta2 = group["betas"]
        return mamgd_step_scalars(lr_as_float(group["lr"]), beta1, beta2, group["k"], step)

    def _constants(self, group: dict[str, Any]) -> dict[str, Any]:
        return {"eps": group["eps"]}

    def _fused_scalars(self, group: dict[str, Any], step: int) -> tuple[float | torch.Tensor, ...]:
        return (*self._step_scalars(group, step), group["eps"])

    def _effective_step_size(self, group: dict[str, Any], step: int) -> float:
        return self._step_scalars(group, step)[0]

    _single_tensor_rule = staticmethod(mamgd_single_tensor_)
    _multi_tensor_rule = staticmethod(mamgd_multi_tensor_)


RECORD = OptimizerSpec(
    "mamgd",
    MAMGD,
    {
        "lr": member_learning_rates_field,
        "betas": betas_field,
        "k": check_non_negative,
        "eps": check_non_negative,
        "as_published": check_bool,
        "foreach": check_optional_bool,
        "compiled": check_optional_bool,
        "fused": check_optional_bool,
    },
    "MAMGD, exponential decay + secant curvature (optlab)",
    cross_checks=(one_path,),
    foreach_bitwise=True,
    optlab_rule=True,
    population=NATIVE,
    kit=KitData(
        lr=0.05,
        quadratic=ConvergenceBudget(0.5, 260),  # measured: 170 steps
        # the unrooted bias correction makes MAMGD's early steps small: slow on Rosenbrock
        rosenbrock=ConvergenceBudget(1.0, 14_000),  # 9370
        group_variation={"betas": (0.5, 0.9)},
        reference="mamgd",
        invalid_combinations=(ONE_PATH_VIOLATION,),
    ),
)
"""MAMGD's one record: checks, capabilities, population form and contract-kit data."""
