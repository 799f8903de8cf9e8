"""optlab's public optimizer contract kit (see :mod:`optlab.testing.contract`)."""

from optlab.testing.contract import (
    CHECKS,
    check_optimizer,
    run_check,
    subject_from_registry,
    with_hyperparameters,
)
from optlab.testing.objectives import ILL_CONDITIONED_QUADRATIC, ROSENBROCK_2D, Objective
from optlab.testing.references import REFERENCE_RULES, ReferenceRule
from optlab.testing.subject import ContractFailure, ContractSubject, ConvergenceBudget

__all__ = [
    "CHECKS",
    "ILL_CONDITIONED_QUADRATIC",
    "REFERENCE_RULES",
    "ROSENBROCK_2D",
    "ContractFailure",
    "ContractSubject",
    "ConvergenceBudget",
    "Objective",
    "ReferenceRule",
    "check_optimizer",
    "run_check",
    "subject_from_registry",
    "with_hyperparameters",
]
