"""The optimizer registry: stable names for optlab's rules and torch's baselines.

``create(name, params, **hyperparameters)`` validates every hyperparameter (torch's
optimizers included) with a message naming the field, then builds the optimizer;
``names()`` lists the registered names; ``spec(name)`` returns what an entry declares
(capabilities that the contract kit in ``optlab.testing`` reads).

Registered names (torch's default lr unless said):

- ``sgd``: ``torch.optim.SGD`` without momentum;
- ``momentum``: ``torch.optim.SGD(momentum=0.9)``;
- ``nesterov``: ``torch.optim.SGD(momentum=0.9, nesterov=True)``;
- ``adagrad``, ``rmsprop``, ``adam``, ``adamw``: torch's classes;
- ``lbfgs``: :class:`optlab.optim.LBFGS`, torch's L-BFGS mended for non-contiguous
  parameters and deepcopy (needs a closure);
- ``imo``: :class:`optlab.optim.IMO` (lr 0.1);
- ``mamgd``: :class:`optlab.optim.MAMGD` (lr 1e-3);
- ``scaled-adam``: :class:`optlab.optim.ScaledAdam` (lr 1e-3);
- ``learned:<path>``: :class:`optlab.optim.Learned` over the policy file ``<path>`` (lr: the
  policy's own step scale), resolved by :func:`spec` on demand and not listed by ``names()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from optlab.optim.hyperparameters import (
    check_betas,
    check_bool,
    check_choice,
    check_learning_rate,
    check_member_learning_rates,
    check_non_negative,
    check_optional_bool,
    check_positive,
    check_positive_int,
    check_unit_interval,
)
from optlab.optim.imo import IMO, STEP_FORMS
from optlab.optim.lbfgs import LBFGS
from optlab.optim.mamgd import MAMGD
from optlab.optim.scaled_adam import ScaledAdam

Validator = Callable[[str, str, Any], Any]
"""``validator(owner, field, value)`` raises TypeError/ValueError naming the field."""


class UnknownOptimizerError(ValueError):
    """``create``/``spec`` got a name that is not registered; the message lists the names."""


def _lr(owner: str, field_name: str, value: Any) -> float:
    return check_learning_rate(owner, value)


def _member_lr(owner: str, field_name: str, value: Any) -> float | torch.Tensor:
    return check_member_learning_rates(owner, value)


def _betas(owner: str, field_name: str, value: Any) -> tuple[float, float]:
    return check_betas(owner, value, field_name)


def _optional_line_search(owner: str, field_name: str, value: Any) -> str | None:
    return None if value is None else check_choice(owner, field_name, value, ("strong_wolfe",))


def _step_form(owner: str, field_name: str, value: Any) -> str:
    return check_choice(owner, field_name, value, STEP_FORMS)


def _nesterov_momentum(owner: str, field_name: str, value: Any) -> float:
    """A momentum in (0, 1): Nesterov needs a positive momentum."""
    number = check_unit_interval(owner, field_name, value)
    if number == 0.0:
        raise ValueError(f"{owner}: {field_name} must be in (0, 1) for Nesterov, got {value!r}")
    return number


_FLAGS: dict[str, Validator] = {"maximize": check_bool, "foreach": check_optional_bool}


@dataclass(frozen=True)
class OptimizerSpec:
    """What a registry entry builds and declares.

    Attributes:
        name: the stable registry name.
        factory: ``factory(params, **hyperparameters) -> Optimizer``.
        hyperparameters: the accepted keyword arguments, each with its validator.
        defaults: hyperparameters the entry fixes unless given (e.g. momentum=0.9).
        summary: one line for listings.
        elementwise: every coordinate is updated from its own gradient/state alone (so a
            stack of N parameters along a leading axis is N independent optimizers).
        supports_sparse: accepts sparse gradients (others must raise on them).
        supports_foreach: has a ``foreach`` flag whose path equals the per-tensor loop.
        foreach_bitwise: that equality is bit for bit in float32 and float64 (else within
            float rounding). In bf16/fp16, torch's CPU ``_foreach`` ops round Python scalars
            to the parameter dtype, so there the paths differ within half-precision rounding.
        requires_closure: ``step`` must be given a closure (L-BFGS).
        supports_param_groups: accepts more than one parameter group.
        optlab_rule: implemented by optlab (not one of torch's classes).
    """

    name: str
    factory: Callable[..., torch.optim.Optimizer]
    hyperparameters: Mapping[str, Validator]
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    elementwise: bool = True
    supports_sparse: bool = False
    supports_foreach: bool = True
    foreach_bitwise: bool = False
    requires_closure: bool = False
    supports_param_groups: bool = True
    optlab_rule: bool = False

    def validate(self, hyperparameters: Mapping[str, Any]) -> None:
        """Raise TypeError/ValueError naming the first invalid or unknown hyperparameter."""
        for key, value in hyperparameters.items():
            validator = self.hyperparameters.get(key)
            if validator is None:
                allowed = ", ".join(sorted(self.hyperparameters))
                raise TypeError(f"{self.name}: unknown hyperparameter {key!r}; allowed: {allowed}")
            validator(self.name, key, value)


_REGISTRY: dict[str, OptimizerSpec] = {}


def register(spec: OptimizerSpec, *, replace: bool = False) -> OptimizerSpec:
    """Add an entry (third-party optimizers too); ``replace=True`` to overwrite a name."""
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"optimizer name {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(_REGISTRY)


LEARNED_PREFIX = "learned:"
"""``learned:<path>`` names a :class:`optlab.optim.learned.Learned` over a policy file."""


def _sha256(owner: str, field_name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 64 or set(value) - set("0123456789abcdef"):
        raise ValueError(f"{owner}: {field_name} must be 64 lowercase hex digits, got {value!r}")
    return value


def _create_learned(
    path: str, params: Any, lr: float | None = None, sha256: str | None = None
) -> torch.optim.Optimizer:
    from optlab.optim.learned import Learned, PolicyFileError, file_digest, load_policy

    policy = load_policy(path)
    if sha256 is not None and file_digest(path) != sha256:
        raise PolicyFileError(f"policy file {path} is not the one asked for (sha256 {sha256})")
    return Learned(params, policy, lr=lr)


def _learned_spec(name: str) -> OptimizerSpec:
    """The entry of ``learned:<path>`` (built on demand; not listed by :func:`names`)."""
    path = name[len(LEARNED_PREFIX) :]
    if not path.strip():
        raise UnknownOptimizerError(
            f"optimizer {name!r} needs a policy file path after 'learned:' (learned:policy.pt)"
        )
    return OptimizerSpec(
        name,
        functools.partial(_create_learned, path),
        {"lr": _lr, "sha256": _sha256},
        f"learned optimizer (policy file {path})",
        elementwise=False,
        supports_foreach=False,
        requires_closure=True,
        optlab_rule=True,
    )


def spec(name: str) -> OptimizerSpec:
    """The entry for ``name``; an unknown name raises listing the known ones.

    ``learned:<path>`` is resolved on demand: a :class:`~optlab.optim.learned.Learned` over
    the policy file at ``<path>`` (hyperparameters ``lr`` and ``sha256``, which checks the
    file's digest); the file is read when the optimizer is created.
    """
    found = _REGISTRY.get(name) if isinstance(name, str) else None
    if found is None and isinstance(name, str) and name.startswith(LEARNED_PREFIX):
        return _learned_spec(name)
    if found is None:
        raise UnknownOptimizerError(
            f"unknown optimizer {name!r}; known optimizers: {', '.join(_REGISTRY)}"
        )
    return found


def create(name: str, params: Any, **hyperparameters: Any) -> torch.optim.Optimizer:
    """Build the optimizer registered as ``name`` over ``params``.

    Every hyperparameter is validated first (torch's optimizers included), so a bad value
    gives one message naming the field, the value and what is allowed.
    """
    entry = spec(name)
    entry.validate(hyperparameters)
    return entry.factory(params, **{**entry.defaults, **hyperparameters})


_sgd_common: dict[str, Validator] = {
    "lr": _lr,
    "weight_decay": check_non_negative,
    **_FLAGS,
}

register(
    OptimizerSpec(
        "sgd",
        torch.optim.SGD,
        _sgd_common,
        "stochastic gradient descent (torch.optim.SGD)",
        supports_sparse=True,
        foreach_bitwise=True,
    )
)
register(
    OptimizerSpec(
        "momentum",
        torch.optim.SGD,
        {**_sgd_common, "momentum": check_unit_interval, "dampening": check_unit_interval},
        "heavy-ball momentum 0.9 (torch.optim.SGD)",
        defaults={"momentum": 0.9},
        supports_sparse=True,
        foreach_bitwise=True,
    )
)
register(
    OptimizerSpec(
        "nesterov",
        functools.partial(torch.optim.SGD, nesterov=True),
        {**_sgd_common, "momentum": _nesterov_momentum},
        "Nesterov momentum 0.9 (torch.optim.SGD)",
        defaults={"momentum": 0.9},
        supports_sparse=True,
        foreach_bitwise=True,
    )
)
register(
    OptimizerSpec(
        "adagrad",
        torch.optim.Adagrad,
        {
            "lr": _lr,
            "lr_decay": check_non_negative,
            "weight_decay": check_non_negative,
            "initial_accumulator_value": check_non_negative,
            "eps": check_non_negative,
            **_FLAGS,
        },
        "AdaGrad (torch.optim.Adagrad)",
        supports_sparse=True,
    )
)
register(
    OptimizerSpec(
        "rmsprop",
        torch.optim.RMSprop,
        {
            "lr": _lr,
            "alpha": check_unit_interval,
            "eps": check_non_negative,
            "weight_decay": check_non_negative,
            "momentum": check_unit_interval,
            "centered": check_bool,
            **_FLAGS,
        },
        "RMSprop (torch.optim.RMSprop)",
    )
)
_adam_like: dict[str, Validator] = {
    "lr": _lr,
    "betas": _betas,
    "eps": check_non_negative,
    "weight_decay": check_non_negative,
    "amsgrad": check_bool,
    "fused": check_optional_bool,
    **_FLAGS,
}
register(OptimizerSpec("adam", torch.optim.Adam, _adam_like, "Adam (torch.optim.Adam)"))
register(OptimizerSpec("adamw", torch.optim.AdamW, _adam_like, "AdamW (torch.optim.AdamW)"))
register(
    OptimizerSpec(
        "lbfgs",
        LBFGS,
        {
            "lr": _lr,
            "max_iter": check_positive_int,
            "max_eval": check_positive_int,
            "history_size": check_positive_int,
            "tolerance_grad": check_non_negative,
            "tolerance_change": check_non_negative,
            "line_search_fn": _optional_line_search,
            "maximize": check_bool,
        },
        "L-BFGS (torch.optim.LBFGS, mended for strides and deepcopy; needs a closure)",
        elementwise=False,
        supports_sparse=True,
        supports_foreach=False,
        requires_closure=True,
        supports_param_groups=False,
    )
)
register(
    OptimizerSpec(
        "imo",
        IMO,
        {
            "lr": _member_lr,
            "momentum": check_unit_interval,
            "alpha": check_positive,
            "beta": check_positive,
            "mass_min": check_positive,
            "mass_max": check_positive,
            "eps": check_non_negative,
            "step_form": _step_form,
            "foreach": check_optional_bool,
            "compiled": check_optional_bool,
            "fused": check_optional_bool,
        },
        "Inertial Mass Optimizer (optlab)",
        foreach_bitwise=True,
        optlab_rule=True,
    )
)
register(
    OptimizerSpec(
        "mamgd",
        MAMGD,
        {
            "lr": _member_lr,
            "betas": _betas,
            "k": check_non_negative,
            "eps": check_non_negative,
            "as_published": check_bool,
            "foreach": check_optional_bool,
            "compiled": check_optional_bool,
            "fused": check_optional_bool,
        },
        "MAMGD, exponential decay + secant curvature (optlab)",
        foreach_bitwise=True,
        optlab_rule=True,
    )
)
register(
    OptimizerSpec(
        "scaled-adam",
        ScaledAdam,
        {**_adam_like, "scale": check_positive},
        "Adam with a scaled second moment = Adam(lr/sqrt(s), eps/sqrt(s)) (optlab)",
        optlab_rule=True,
    )
)
