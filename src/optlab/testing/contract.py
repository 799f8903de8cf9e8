"""The optimizer contract kit: one call checks that an optimizer behaves like a torch one.

Like torch's own optimizer-info table (``torch/testing/_internal/common_optimizers.py``), a
:class:`ContractSubject` declares what an optimizer supports, and each check in
:data:`CHECKS` runs where it applies. The ten points (``shared/DESIGN.md``):

1. ``reference``: matches its NumPy reference over 100 float64 steps (1e-10 relative);
2. ``foreach``: the ``foreach`` path equals the per-tensor loop (params and every state entry);
3. ``state_dict``: ``state_dict()`` -> new optimizer -> ``load_state_dict()`` continues
   bit-identically;
4. ``param_groups``: per-group hyperparameters are respected (a two-group optimizer equals
   two one-group ones), ``add_param_group`` works, a group with lr=0 stays unchanged;
5. ``closure``: ``step(closure)`` returns the closure's loss; params without grad untouched;
6. ``invalid_hyperparameters`` (each raises naming the field) and ``sparse_gradients``
   (raise clearly unless supported);
7. ``loss_decreases`` on a small problem; ``converges`` on the ill-conditioned quadratic and
   the 2-D Rosenbrock function within a stated budget at a stated lr;
8. ``lr_scheduler``: ``group["lr"]`` is read at every step;
9. ``dtypes`` (float32 and float64) and ``non_contiguous`` parameters (transposed, and
   slices with gaps: torch's fused CPU Adam gets those wrong);
10. ``deepcopy`` and ``repr``.

torch's API, as user code drives it: ``create_graph`` (``step(closure)`` whose closure
calls ``backward(create_graph=True)``), ``scheduler_before_first_step`` (StepLR,
ExponentialLR, ReduceLROnPlateau built before the first step), ``group_default_lr`` (a
group given without ``lr`` takes the default).

Plus ``nonfinite_gradients``: NaN/inf gradients propagate into the parameters (optlab's
documented behaviour, as torch's), never silently skipped; ``population``: an
elementwise optimizer over parameters stacked along a leading axis equals N separate
optimizers (what the population trainer relies on); ``flat_layout``: on parameters placed
in one buffer by :func:`optlab.optim.flat.flatten_parameters` an elementwise optimizer
gives the numbers of the per-tensor path (float64, bit for bit), and a state dict saved on
either layout continues identically on the other; ``compiled``: where the optimizer has a
``compiled`` flag, its compiled step equals the eager one within float rounding
(1e-12 relative in float64), per tensor and on the flat layout; ``fused``: where it has a
``fused`` flag (torch's Adam, optlab's fused CPU kernels), ``fused=True`` equals
``fused=False`` the same way.

Use it on your own optimizer::

    from optlab.testing import ContractSubject, ConvergenceBudget, check_optimizer
    check_optimizer(ContractSubject("mine", MyOptimizer, hyperparameters={"lr": 0.01},
                                    rosenbrock=ConvergenceBudget(lr=0.01, steps=5000)))

or on a registry entry: ``check_optimizer(subject_from_registry("imo"))`` (its data comes
from the entry's record, :class:`optlab.optim.spec.KitData`). The checks live in
:mod:`optlab.testing.checks` (the rule and torch's API) and :mod:`optlab.testing.paths`
(population, flat layout, compiled, fused); this module runs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from optlab.testing.checks import (
    check_closure,
    check_converges,
    check_create_graph,
    check_deepcopy,
    check_dtypes,
    check_foreach,
    check_group_default_lr,
    check_invalid_hyperparameters,
    check_loss_decreases,
    check_lr_scheduler,
    check_non_contiguous,
    check_nonfinite_gradients,
    check_param_groups,
    check_reference,
    check_repr,
    check_scheduler_before_first_step,
    check_sparse_gradients,
    check_state_dict,
)
from optlab.testing.paths import check_compiled, check_flat_layout, check_fused, check_population
from optlab.testing.references import REFERENCE_RULES
from optlab.testing.subject import (
    ContractFailure,
    ContractSubject,
    ConvergenceBudget,
    NotApplicable,
)

__all__ = ["CHECKS", "ContractFailure", "ContractSubject", "ConvergenceBudget", "check_optimizer"]


CHECKS: dict[str, Callable[[ContractSubject], None]] = {
    "reference": check_reference,
    "foreach": check_foreach,
    "state_dict": check_state_dict,
    "param_groups": check_param_groups,
    "closure": check_closure,
    "invalid_hyperparameters": check_invalid_hyperparameters,
    "sparse_gradients": check_sparse_gradients,
    "loss_decreases": check_loss_decreases,
    "converges": check_converges,
    "lr_scheduler": check_lr_scheduler,
    "dtypes": check_dtypes,
    "non_contiguous": check_non_contiguous,
    "deepcopy": check_deepcopy,
    "repr": check_repr,
    "create_graph": check_create_graph,
    "scheduler_before_first_step": check_scheduler_before_first_step,
    "group_default_lr": check_group_default_lr,
    "nonfinite_gradients": check_nonfinite_gradients,
    "population": check_population,
    "flat_layout": check_flat_layout,
    "compiled": check_compiled,
    "fused": check_fused,
}


def run_check(subject: ContractSubject, name: str) -> bool:
    """Run one check by name; False if it does not apply to the subject, True if it passed.

    Raises :class:`ContractFailure` (an AssertionError) if it failed; an exception raised
    by the optimizer itself propagates as it is (``check_optimizer`` lists it instead).
    """
    try:
        CHECKS[name](subject)
    except NotApplicable:
        return False
    return True


def check_optimizer(subject: ContractSubject, checks: Sequence[str] | None = None) -> list[str]:
    """Run every applicable check (or those named); return the names that ran.

    Raises :class:`ContractFailure` listing every failed check with its reason.
    """
    failures, ran = [], []
    for name in checks or CHECKS:
        try:
            if run_check(subject, name):
                ran.append(name)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
        except Exception as error:  # a crash inside a check is a failure of that check
            failures.append(f"{name}: raised {type(error).__name__}: {error}")
    if failures:
        raise ContractFailure(f"{subject.name} fails the contract:\n  " + "\n  ".join(failures))
    return ran


# ---------------------------------------------------------------------------- registry
# Invalid values by field name, tried on every entry that has the field; each entry's own
# data (small-problem lr, budgets, group variation, reference) is its record's ``kit``.
_GENERIC_INVALID: dict[str, list[Any]] = {
    "lr": [-0.1, math.nan, math.inf, "0.1", None],
    "betas": [(1.0, 0.999), (0.9, -0.1), (math.nan, 0.9), 0.9],
    "eps": [-1e-8, math.nan],
    "momentum": [-0.1, 1.5, "high"],
    "weight_decay": [-1.0, math.inf],
    "alpha": [-1.0, math.nan],
    "beta": [-1.0],
    "mass_min": [-0.1, 0.0],
    "mass_max": [-1.0],
    "k": [-1e-5, math.inf],
    "scale": [0.0, -1.1, math.nan],
    "as_published": ["yes", 1],
    "step_form": ["bogus"],
    "foreach": ["yes"],
    "max_iter": [0, 2.5],
    "history_size": [0],
    "line_search_fn": ["armijo"],
}


def subject_from_registry(name: str, **hyperparameters: Any) -> ContractSubject:
    """The contract subject of a registry entry, with its declared capabilities."""
    from optlab.optim import registry

    entry = registry.spec(name)
    invalid = [
        (field_name, value)
        for field_name, values in _GENERIC_INVALID.items()
        if field_name in entry.hyperparameters
        for value in values
    ]
    kit = entry.kit
    return ContractSubject(
        name=name,
        factory=lambda params, **kw: registry.create(name, params, **kw),
        hyperparameters={"lr": kit.lr, **hyperparameters},
        elementwise=entry.elementwise,
        supports_sparse=entry.supports_sparse,
        supports_foreach=entry.supports_foreach,
        foreach_bitwise=entry.foreach_bitwise,
        requires_closure=entry.requires_closure,
        supports_param_groups=entry.supports_param_groups,
        reference=REFERENCE_RULES[kit.reference] if kit.reference else None,
        invalid=invalid,
        invalid_combinations=kit.invalid_combinations,
        group_variation=kit.group_variation,
        quadratic=kit.quadratic,
        rosenbrock=kit.rosenbrock,
        supports_compiled="compiled" in entry.hyperparameters,
        supports_fused="fused" in entry.hyperparameters,
        population_bitwise=kit.population_bitwise,
    )


def with_hyperparameters(subject: ContractSubject, **hyperparameters: Any) -> ContractSubject:
    """The same subject with more hyperparameters (its reference sees them too)."""
    return replace(subject, hyperparameters={**subject.hyperparameters, **hyperparameters})
