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
from typing import Any

import torch

from optlab.optim import imo, mamgd, scaled_adam, twins
from optlab.optim.errors import InvalidValueError
from optlab.optim.hyperparameters import (
    ONE_PATH_VIOLATION,
    betas_field,
    check_bool,
    check_non_negative,
    check_optional_bool,
    check_positive_int,
    check_unit_interval,
    choice_field,
    learning_rate_field,
    one_path,
)
from optlab.optim.lbfgs import LBFGS
from optlab.optim.spec import (
    ConvergenceBudget,
    KitData,
    OptimizerSpec,
    PopulationForm,
    Validator,
)


class UnknownOptimizerError(InvalidValueError):
    """``create``/``spec`` got a name that is not registered; the message lists the names."""


def _nesterov_momentum(owner: str, field_name: str, value: Any) -> float:
    """A momentum in (0, 1): Nesterov needs a positive momentum."""
    number = check_unit_interval(owner, field_name, value)
    if number == 0.0:
        raise InvalidValueError(
            f"{owner}: {field_name} must be in (0, 1) for Nesterov, got {value!r}"
        )
    return number


_FLAGS: dict[str, Validator] = {"maximize": check_bool, "foreach": check_optional_bool}


def _twin(twin: type[torch.optim.Optimizer], **fixed: Any) -> PopulationForm:
    return PopulationForm("twin", twin=twin, fixed=fixed)


def _optional_line_search(owner: str, field_name: str, value: Any) -> str | None:
    return None if value is None else _LINE_SEARCH(owner, field_name, value)


_LINE_SEARCH = choice_field(("strong_wolfe",))


_REGISTRY: dict[str, OptimizerSpec] = {}


def register(spec: OptimizerSpec, *, replace: bool = False) -> OptimizerSpec:
    """Add an entry (third-party optimizers too); ``replace=True`` to overwrite a name."""
    if spec.name in _REGISTRY and not replace:
        raise InvalidValueError(f"optimizer name {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(_REGISTRY)


LEARNED_PREFIX = "learned:"
"""``learned:<path>`` names a :class:`optlab.optim.learned.Learned` over a policy file."""


def _sha256(owner: str, field_name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 64 or set(value) - set("0123456789abcdef"):
        raise InvalidValueError(
            f"{owner}: {field_name} must be 64 lowercase hex digits, got {value!r}"
        )
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
        {"lr": learning_rate_field, "sha256": _sha256},
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
    "lr": learning_rate_field,
    "weight_decay": check_non_negative,
    **_FLAGS,
}
_adam_like: dict[str, Validator] = {
    "lr": learning_rate_field,
    "betas": betas_field,
    "eps": check_non_negative,
    "weight_decay": check_non_negative,
    "amsgrad": check_bool,
    "fused": check_optional_bool,
    **_FLAGS,
}
_ADAM_KIT = {
    "lr": 0.05,
    "group_variation": {"betas": (0.5, 0.9)},
    "invalid_combinations": (ONE_PATH_VIOLATION,),
}

# Kit budgets: (ill-conditioned quadratic, 2-D Rosenbrock), f - f* <= 1e-6 unless stated,
# measured with ``benchmarks/contract_budgets.py`` (steps needed x about 1.5, in comments).
register(
    OptimizerSpec(
        "sgd",
        torch.optim.SGD,
        _sgd_common,
        "stochastic gradient descent (torch.optim.SGD)",
        supports_sparse=True,
        foreach_bitwise=True,
        population=_twin(twins.SGD),
        kit=KitData(
            lr=0.1,
            quadratic=ConvergenceBudget(1e-3, 10_000),  # 6558
            rosenbrock=ConvergenceBudget(2e-3, 11_000),  # 7493
            group_variation={"weight_decay": 0.1},
        ),
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
        population=_twin(twins.SGD, momentum=0.9),
        kit=KitData(
            lr=0.05,
            quadratic=ConvergenceBudget(2e-3, 400),  # 260
            rosenbrock=ConvergenceBudget(2e-3, 1_200),  # 769
            group_variation={"momentum": 0.5},
        ),
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
        population=_twin(twins.SGD, momentum=0.9, nesterov=True),
        kit=KitData(
            lr=0.05,
            quadratic=ConvergenceBudget(1e-3, 900),  # 603
            rosenbrock=ConvergenceBudget(1e-3, 2_200),  # 1426
            group_variation={"momentum": 0.5},
        ),
    )
)
register(
    OptimizerSpec(
        "adagrad",
        torch.optim.Adagrad,
        {
            "lr": learning_rate_field,
            "lr_decay": check_non_negative,
            "weight_decay": check_non_negative,
            "initial_accumulator_value": check_non_negative,
            "eps": check_non_negative,
            **_FLAGS,
        },
        "AdaGrad (torch.optim.Adagrad)",
        supports_sparse=True,
        population=_twin(twins.Adagrad),
        kit=KitData(
            lr=0.1,
            quadratic=ConvergenceBudget(0.2, 150),  # 91
            rosenbrock=ConvergenceBudget(0.5, 12_000),  # 7898
            group_variation={"lr_decay": 0.1},
        ),
    )
)
register(
    OptimizerSpec(
        "rmsprop",
        torch.optim.RMSprop,
        {
            "lr": learning_rate_field,
            "alpha": check_unit_interval,
            "eps": check_non_negative,
            "weight_decay": check_non_negative,
            "momentum": check_unit_interval,
            "centered": check_bool,
            **_FLAGS,
        },
        "RMSprop (torch.optim.RMSprop)",
        population=_twin(twins.RMSprop),
        kit=KitData(
            lr=0.01,
            quadratic=ConvergenceBudget(1e-2, 300),  # 190
            # RMSprop's constant lr leaves it hovering at a floor that shrinks with lr: on
            # Rosenbrock it reaches 1e-4 (10,635 steps at lr 3e-4), not 1e-6 within 20,000.
            rosenbrock=ConvergenceBudget(3e-4, 16_000, tolerance=1e-4),
            group_variation={"alpha": 0.9},
        ),
    )
)
register(
    OptimizerSpec(
        "adam",
        torch.optim.Adam,
        _adam_like,
        "Adam (torch.optim.Adam)",
        cross_checks=(one_path,),
        population=_twin(twins.Adam),
        kit=KitData(
            quadratic=ConvergenceBudget(0.05, 250),  # 151
            rosenbrock=ConvergenceBudget(0.5, 1_000),  # 618
            reference="adam",
            **_ADAM_KIT,
        ),
    )
)
register(
    OptimizerSpec(
        "adamw",
        torch.optim.AdamW,
        _adam_like,
        "AdamW (torch.optim.AdamW)",
        cross_checks=(one_path,),
        population=_twin(twins.AdamW),
        kit=KitData(
            quadratic=ConvergenceBudget(0.05, 250),  # 151
            # AdamW's default weight decay (0.01) moves the minimum unless lr is small.
            rosenbrock=ConvergenceBudget(2e-3, 17_000),  # 11728
            **_ADAM_KIT,
        ),
    )
)
register(
    OptimizerSpec(
        "lbfgs",
        LBFGS,
        {
            "lr": learning_rate_field,
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
        kit=KitData(
            lr=0.5,
            quadratic=ConvergenceBudget(1.0, 10),  # 2
            rosenbrock=ConvergenceBudget(1.0, 10),  # 3
        ),
    )
)
register(imo.RECORD)
register(mamgd.RECORD)
register(scaled_adam.RECORD)
