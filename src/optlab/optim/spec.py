"""One record per optimizer: what a registry entry builds, checks and declares.

As torch's ``optim_db`` (``torch/testing/_internal/common_optimizers.py``) describes each
optimizer once for every generic test, an :class:`OptimizerSpec` holds every fact about
one entry, in one place:

- how to build it (``factory``, fixed ``defaults``);
- its hyperparameter checks (one validator per field) and its cross-field checks;
- its capabilities (elementwise, sparse gradients, foreach, closure, param groups);
- its population form (:class:`PopulationForm`): how a population with one learning rate
  per member is built (the rule takes them itself, an elementwise twin, or an identity
  that rewrites it into another entry);
- its contract-kit data (:class:`KitData`): the small-problem lr, convergence budgets, the
  per-group variation, the NumPy reference rule's name and tolerances.

The registry (:mod:`optlab.optim.registry`), optlab's classes (their constructors call
:meth:`OptimizerSpec.check_group`), the contract kit (:mod:`optlab.testing`), the bench and
the demo all read these records; nothing else restates them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from optlab.optim.errors import InvalidTypeError, InvalidValueError

Validator = Callable[[str, str, Any], Any]
"""``validator(owner, field, value)`` raises TypeError/ValueError naming the field."""

CrossCheck = Callable[[str, Mapping[str, Any]], None]
"""``check(owner, hyperparameters)`` raises ValueError naming the fields that disagree;
it sees every hyperparameter (the given ones over the entry's and the factory's defaults)."""


@dataclass(frozen=True)
class ConvergenceBudget:
    """Converge to ``f - f* <= tolerance`` within ``steps`` steps at learning rate ``lr``."""

    lr: float
    steps: int
    tolerance: float = 1e-6
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KitData:
    """What the contract kit (:mod:`optlab.testing`) needs to check an entry.

    Attributes:
        lr: a learning rate that suits the kit's small smooth problems.
        quadratic, rosenbrock: convergence budgets on the ill-conditioned quadratic and the
            2-D Rosenbrock function (None: not claimed); measured with
            ``benchmarks/contract_budgets.py`` (steps needed x about 1.5).
        group_variation: a non-lr hyperparameter and value that the per-group check sets on
            one group only (it must change the result).
        reference: the name of its NumPy reference rule in
            :data:`optlab.testing.references.REFERENCE_RULES` (None: none).
        population_bitwise: a stacked population equals separate optimizers bit for bit
            (False: within 1e-12 relative, e.g. torch's fused CPU kernels round their
            vectorised body and scalar tail differently).
        invalid_combinations: ``(field, hyperparameters)`` pairs that each pass the
            per-field checks but must be refused together, naming ``field``.
    """

    lr: float = 1e-3
    quadratic: ConvergenceBudget | None = None
    rosenbrock: ConvergenceBudget | None = None
    group_variation: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None
    population_bitwise: bool = True
    invalid_combinations: Sequence[tuple[str, Mapping[str, Any]]] = ()


@dataclass(frozen=True)
class PopulationForm:
    """How the entry runs a population with one learning rate per member (a 1-D ``lr``).

    - ``native``: the entry's own class takes a 1-D lr (optlab's elementwise rules);
    - ``twin``: ``twin(params, **fixed, **hyperparameters)``, an elementwise twin of a
      torch class (:mod:`optlab.optim.twins`) with the entry's fixed hyperparameters;
    - ``identity``: ``rewrite(hyperparameters) -> (other entry, its hyperparameters)``, an
      exact identity with another entry (ScaledAdam(lr, eps, s) = Adam(lr/sqrt s, eps/sqrt s)).
    """

    kind: Literal["native", "twin", "identity"]
    twin: Callable[..., torch.optim.Optimizer] | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)
    rewrite: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]] | None = None


NATIVE = PopulationForm("native")
"""The entry's class takes per-member learning rates itself."""


@dataclass(frozen=True)
class OptimizerSpec:
    """What a registry entry builds and declares (see the module docstring).

    Attributes:
        name: the stable registry name.
        factory: ``factory(params, **hyperparameters) -> Optimizer``.
        hyperparameters: the accepted keyword arguments, each with its validator.
        summary: one line for listings.
        defaults: hyperparameters the entry fixes unless given (e.g. momentum=0.9).
        cross_checks: checks across fields (e.g. IMO's mass_min <= mass_max).
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
        population: how per-member learning rates are run (None: they are not).
        kit: the contract kit's data.
    """

    name: str
    factory: Callable[..., torch.optim.Optimizer]
    hyperparameters: Mapping[str, Validator]
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    cross_checks: Sequence[CrossCheck] = ()
    elementwise: bool = True
    supports_sparse: bool = False
    supports_foreach: bool = True
    foreach_bitwise: bool = False
    requires_closure: bool = False
    supports_param_groups: bool = True
    optlab_rule: bool = False
    population: PopulationForm | None = None
    kit: KitData = field(default_factory=KitData)

    def validate(self, hyperparameters: Mapping[str, Any]) -> None:
        """Raise TypeError/ValueError naming the first invalid or unknown hyperparameter,
        then run the cross-field checks over the given values and the defaults."""
        for key, value in hyperparameters.items():
            validator = self.hyperparameters.get(key)
            if validator is None:
                allowed = ", ".join(sorted(self.hyperparameters))
                raise InvalidTypeError(
                    f"{self.name}: unknown hyperparameter {key!r}; allowed: {allowed}"
                )
            validator(self.name, key, value)
        if self.cross_checks:
            merged = {**_factory_defaults(self.factory), **self.defaults, **hyperparameters}
            for check in self.cross_checks:
                check(self.name, merged)

    def check_group(self, group: Mapping[str, Any], owner: str) -> None:
        """Check a parameter group's hyperparameters (what a constructor or
        ``add_param_group`` is given), messages starting with ``owner`` (the class name):
        every declared field present, then the cross-field checks. Keys that are no
        hyperparameter (``params``, ``initial_lr``, ...) pass."""
        for key, validator in self.hyperparameters.items():
            if key in group:
                validator(owner, key, group[key])
        for check in self.cross_checks:
            check(owner, group)

    def member_lr_optimizer(
        self, params: list[torch.Tensor], hyperparameters: Mapping[str, Any]
    ) -> torch.optim.Optimizer:
        """The optimizer over stacked ``params`` whose ``hyperparameters["lr"]`` is a 1-D
        tensor of per-member learning rates, built by the entry's population form.
        Raises ValueError naming the entry when it has none."""
        form = self.population
        if form is None:
            raise InvalidValueError(f"{self.name} takes no per-member learning rates")
        fixed = {k: v for k, v in hyperparameters.items() if k != "lr"}
        self.validate(fixed)
        if form.kind == "twin" and form.twin is not None:
            return form.twin(params, **{**form.fixed, **hyperparameters})
        if form.kind == "identity" and form.rewrite is not None:
            from optlab.optim.registry import spec

            other, rewritten = form.rewrite(dict(hyperparameters))
            return spec(other).member_lr_optimizer(params, rewritten)
        return self.factory(params, **{**self.defaults, **hyperparameters})


@functools.cache
def _signature_defaults(factory: Callable[..., Any]) -> tuple[tuple[str, Any], ...]:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return ()
    return tuple(
        (parameter.name, parameter.default)
        for parameter in parameters
        if parameter.default is not inspect.Parameter.empty
    )


def _factory_defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of ``factory`` (a class, function or partial)."""
    try:
        return dict(_signature_defaults(factory))
    except TypeError:  # an unhashable factory
        return {}
