"""Elementwise twins of torch's baselines, for populations: per-member learning rates.

torch's optimizers take one scalar lr per group. These twins run torch's update rules on
optlab's :class:`~optlab.optim.elementwise.ElementwiseOptimizer` machinery, so ``lr`` may
also be a 1-D tensor of per-member learning rates (one per slice of a population stacked
along the leading axis): a whole learning-rate sweep in one population. Each equals its
torch class within float rounding (tested over 100 float64 steps); the rules, as torch
documents them (``torch.optim``), with :math:`\\eta` the lr and :math:`\\lambda` the weight decay:

- :class:`SGD`: :math:`g \\leftarrow g + \\lambda\\theta`; with momentum
  :math:`b \\leftarrow \\mu b + (1-\\tau) g` (:math:`b = g` at the first step),
  :math:`d = g + \\mu b` (Nesterov) or :math:`b`; :math:`\\theta \\leftarrow \\theta - \\eta d`.
- :class:`Adam` / :class:`AdamW`: Kingma & Ba (2015) / Loshchilov & Hutter (2019, decoupled
  decay :math:`\\theta \\leftarrow \\theta(1-\\eta\\lambda)`), bias-corrected moments;
  no amsgrad.
- :class:`Adagrad`: :math:`s \\leftarrow s + g^2`,
  :math:`\\theta \\leftarrow \\theta - \\frac{\\eta}{1+(t-1)\\delta}\\, g/(\\sqrt{s}+\\epsilon)`.
- :class:`RMSprop`: :math:`a \\leftarrow \\alpha a + (1-\\alpha) g^2`,
  :math:`\\theta \\leftarrow \\theta - \\eta\\, g/(\\sqrt{a}+\\epsilon)` (no momentum, not
  centered).

Every per-step scalar that involves lr is passed to the rule as one value (so per-member lr
tensors broadcast); bias corrections and decays stay Python floats. The twins take every
path of :mod:`optlab.optim.elementwise`: the loop, ``foreach``, the compiled step (SGD's
first-step branch is a Python bool, specialised: two compiled variants) and the flat layout
(:mod:`optlab.optim.flat`), where a whole group is one compiled kernel. Per-member learning
rates always run the loop, which broadcasts them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from optlab.optim.elementwise import ElementwiseOptimizer, lr_as_float
from optlab.optim.errors import InvalidValueError
from optlab.optim.hyperparameters import (
    check_bool,
    check_member_learning_rates,
)


def _check_as_recorded(entry: str, owner: str, hyperparameters: dict[str, Any]) -> None:
    """A twin checks its group as the registry record of the torch entry it mirrors
    (``entry``) does, except lr, which may also be per member."""
    from optlab.optim.registry import spec  # the records name the twins: imported late

    check_member_learning_rates(owner, hyperparameters["lr"])
    spec(entry).check_group({k: v for k, v in hyperparameters.items() if k != "lr"}, owner)


def _decay(params: list[torch.Tensor], grads: list[torch.Tensor], weight_decay: float):
    """g + lambda * theta (new tensors), or the gradients themselves."""
    if not weight_decay:
        return grads
    return torch._foreach_add(grads, params, alpha=weight_decay)


# ---------------------------------------------------------------------------------- SGD
def sgd_single_tensor_(
    param, grad, momentum_buffer, lr, first, *, momentum, dampening, nesterov, weight_decay
) -> None:
    """One SGD step on one tensor (torch's rule)."""
    if weight_decay:
        grad = grad.add(param, alpha=weight_decay)
    if momentum:
        if first:
            momentum_buffer.copy_(grad)
        else:
            momentum_buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
        grad = grad.add(momentum_buffer, alpha=momentum) if nesterov else momentum_buffer
    param.sub_(grad * lr)


def sgd_multi_tensor_(
    params, grads, momentum_buffers, lr, first, *, momentum, dampening, nesterov, weight_decay
) -> None:
    """The same step over lists."""
    grads = _decay(params, grads, weight_decay)
    if momentum:
        if first:
            torch._foreach_copy_(momentum_buffers, grads)
        else:
            torch._foreach_mul_(momentum_buffers, momentum)
            torch._foreach_add_(momentum_buffers, grads, alpha=1 - dampening)
        if nesterov:
            grads = torch._foreach_add(grads, momentum_buffers, alpha=momentum)
        else:
            grads = momentum_buffers
    torch._foreach_sub_(params, torch._foreach_mul(grads, lr))


class SGD(ElementwiseOptimizer):
    """torch's SGD (momentum, dampening, Nesterov, weight decay); lr may be per member."""

    state_names = ("momentum_buffer",)

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        foreach: bool | None = None,
        compiled: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults, foreach=foreach, compiled=compiled)

    @staticmethod
    def _validate(hyperparameters: dict[str, Any]) -> None:
        _check_as_recorded("momentum", "SGD", hyperparameters)
        nesterov = check_bool("SGD", "nesterov", hyperparameters["nesterov"])
        if nesterov and (hyperparameters["momentum"] <= 0 or hyperparameters["dampening"]):
            raise InvalidValueError("SGD: nesterov needs momentum > 0 and dampening 0")

    def _init_state(self, group, param, grad, state) -> None:
        state["momentum_buffer"] = (
            torch.zeros_like(param, memory_format=torch.preserve_format)
            if group["momentum"]
            else None
        )

    def _step_scalars(self, group: dict[str, Any], step: int) -> tuple[Any, ...]:
        return lr_as_float(group["lr"]), step == 1

    def _constants(self, group: dict[str, Any]) -> dict[str, Any]:
        return {k: group[k] for k in ("momentum", "dampening", "nesterov", "weight_decay")}

    _single_tensor_rule = staticmethod(sgd_single_tensor_)
    _multi_tensor_rule = staticmethod(sgd_multi_tensor_)


# ---------------------------------------------------------------------------------- Adam
def adam_single_tensor_(
    param, grad, exp_avg, exp_avg_sq, step_size, bias_root, decay, *, betas, eps,
    weight_decay, decoupled,
) -> None:  # fmt: skip
    """One Adam/AdamW step on one tensor (torch's rule, step size as one factor)."""
    beta1, beta2 = betas
    if weight_decay:
        if decoupled:
            param.mul_(decay)
        else:
            grad = grad.add(param, alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denominator = (exp_avg_sq.sqrt() / bias_root).add_(eps)
    param.sub_(exp_avg / denominator * step_size)


def adam_multi_tensor_(
    params, grads, exp_avgs, exp_avg_sqs, step_size, bias_root, decay, *, betas, eps,
    weight_decay, decoupled,
) -> None:  # fmt: skip
    """The same step over lists."""
    beta1, beta2 = betas
    if weight_decay and decoupled:
        torch._foreach_mul_(params, decay)
    elif weight_decay:
        grads = _decay(params, grads, weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    denominators = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denominators, bias_root)
    torch._foreach_add_(denominators, eps)
    updates = torch._foreach_div(exp_avgs, denominators)
    torch._foreach_mul_(updates, step_size)
    torch._foreach_sub_(params, updates)


class Adam(ElementwiseOptimizer):
    """torch's Adam (no amsgrad); lr may be per member."""

    state_names = ("exp_avg", "exp_avg_sq")
    record_name = "adam"
    """The registry entry whose record checks this twin's groups (subclasses inherit it)."""
    _decoupled = False

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
        *,
        foreach: bool | None = None,
        compiled: bool | None = None,
    ) -> None:
        if weight_decay is None:
            weight_decay = 1e-2 if self._decoupled else 0.0
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults, foreach=foreach, compiled=compiled)

    @classmethod
    def _validate(cls, hyperparameters: dict[str, Any]) -> None:
        _check_as_recorded(cls.record_name, cls.__name__, hyperparameters)

    def _init_state(self, group, param, grad, state) -> None:
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _step_scalars(self, group: dict[str, Any], step: int) -> tuple[Any, ...]:
        beta1, beta2 = group["betas"]
        lr = lr_as_float(group["lr"])
        step_size = lr / (1 - beta1**step)
        decay = 1 - lr * group["weight_decay"]
        return step_size, math.sqrt(1 - beta2**step), decay

    def _constants(self, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "betas": tuple(group["betas"]),
            "eps": group["eps"],
            "weight_decay": group["weight_decay"],
            "decoupled": self._decoupled,
        }

    _single_tensor_rule = staticmethod(adam_single_tensor_)
    _multi_tensor_rule = staticmethod(adam_multi_tensor_)


class AdamW(Adam):
    """torch's AdamW (decoupled weight decay, default 0.01; no amsgrad); lr may be per member."""

    record_name = "adamw"
    _decoupled = True


# ------------------------------------------------------------------------------- Adagrad
def adagrad_single_tensor_(param, grad, state_sum, clr, *, eps, weight_decay) -> None:
    """One Adagrad step on one tensor (torch's rule)."""
    if weight_decay:
        grad = grad.add(param, alpha=weight_decay)
    state_sum.addcmul_(grad, grad, value=1)
    param.sub_(grad / state_sum.sqrt().add_(eps) * clr)


def adagrad_multi_tensor_(params, grads, state_sums, clr, *, eps, weight_decay) -> None:
    """The same step over lists."""
    grads = _decay(params, grads, weight_decay)
    torch._foreach_addcmul_(state_sums, grads, grads, value=1)
    roots = torch._foreach_sqrt(state_sums)
    torch._foreach_add_(roots, eps)
    updates = torch._foreach_div(grads, roots)
    torch._foreach_mul_(updates, clr)
    torch._foreach_sub_(params, updates)


class Adagrad(ElementwiseOptimizer):
    """torch's Adagrad (lr decay, weight decay; initial accumulator 0); lr may be per member."""

    state_names = ("sum",)

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        eps: float = 1e-10,
        *,
        foreach: bool | None = None,
        compiled: bool | None = None,
    ) -> None:
        defaults = {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay, "eps": eps}
        super().__init__(params, defaults, foreach=foreach, compiled=compiled)

    @staticmethod
    def _validate(hyperparameters: dict[str, Any]) -> None:
        _check_as_recorded("adagrad", "Adagrad", hyperparameters)

    def _init_state(self, group, param, grad, state) -> None:
        state["sum"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _step_scalars(self, group: dict[str, Any], step: int) -> tuple[Any, ...]:
        return (lr_as_float(group["lr"]) / (1 + (step - 1) * group["lr_decay"]),)

    def _constants(self, group: dict[str, Any]) -> dict[str, Any]:
        return {"eps": group["eps"], "weight_decay": group["weight_decay"]}

    _single_tensor_rule = staticmethod(adagrad_single_tensor_)
    _multi_tensor_rule = staticmethod(adagrad_multi_tensor_)


# ------------------------------------------------------------------------------- RMSprop
def rmsprop_single_tensor_(param, grad, square_avg, lr, *, alpha, eps, weight_decay) -> None:
    """One RMSprop step on one tensor (torch's rule; no momentum, not centered)."""
    if weight_decay:
        grad = grad.add(param, alpha=weight_decay)
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    param.sub_(grad / square_avg.sqrt().add_(eps) * lr)


def rmsprop_multi_tensor_(params, grads, square_avgs, lr, *, alpha, eps, weight_decay) -> None:
    """The same step over lists."""
    grads = _decay(params, grads, weight_decay)
    torch._foreach_mul_(square_avgs, alpha)
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
    roots = torch._foreach_sqrt(square_avgs)
    torch._foreach_add_(roots, eps)
    updates = torch._foreach_div(grads, roots)
    torch._foreach_mul_(updates, lr)
    torch._foreach_sub_(params, updates)


class RMSprop(ElementwiseOptimizer):
    """torch's RMSprop without momentum, not centered; lr may be per member."""

    state_names = ("square_avg",)

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        compiled: bool | None = None,
    ) -> None:
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults, foreach=foreach, compiled=compiled)

    @staticmethod
    def _validate(hyperparameters: dict[str, Any]) -> None:
        _check_as_recorded("rmsprop", "RMSprop", hyperparameters)

    def _init_state(self, group, param, grad, state) -> None:
        state["square_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _step_scalars(self, group: dict[str, Any], step: int) -> tuple[Any, ...]:
        return (lr_as_float(group["lr"]),)

    def _constants(self, group: dict[str, Any]) -> dict[str, Any]:
        return {k: group[k] for k in ("alpha", "eps", "weight_decay")}

    _single_tensor_rule = staticmethod(rmsprop_single_tensor_)
    _multi_tensor_rule = staticmethod(rmsprop_multi_tensor_)
