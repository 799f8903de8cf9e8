"""Every registry optimizer passes every applicable point of the contract kit."""

from __future__ import annotations

import pytest
import torch

from optlab.optim import names
from optlab.testing import (
    CHECKS,
    ContractFailure,
    ContractSubject,
    ConvergenceBudget,
    check_optimizer,
    run_check,
    subject_from_registry,
)

# Checks that cannot apply to an entry, by its declared capabilities (anything else must run).
NOT_APPLICABLE = {
    ("lbfgs", "foreach"),
    ("lbfgs", "param_groups"),
    ("lbfgs", "nonfinite_gradients"),
}
WITH_REFERENCE = {"adam", "scaled-adam", "imo", "mamgd"}


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", names())
def test_registry_optimizer_meets_contract(name: str, check: str) -> None:
    subject = subject_from_registry(name)
    ran = run_check(subject, check)
    expected_to_run = (name, check) not in NOT_APPLICABLE and (
        check != "reference" or name in WITH_REFERENCE
    )
    assert ran == expected_to_run


@pytest.mark.parametrize(
    ("name", "hyperparameters"),
    [
        ("imo", {"step_form": "algorithm-box"}),
        ("mamgd", {"as_published": True}),
        ("scaled-adam", {"scale": 2.5}),
        ("mamgd", {"k": 0.01, "betas": (0.8, 0.99)}),
    ],
)
def test_variants_match_reference_and_foreach(name: str, hyperparameters: dict) -> None:
    subject = subject_from_registry(name, **hyperparameters)
    assert check_optimizer(subject, ["reference", "foreach", "state_dict"]) == [
        "reference",
        "foreach",
        "state_dict",
    ]


class _IgnoresLr(torch.optim.SGD):
    """A broken optimizer: it caches lr at construction and ignores the scheduler."""

    def __init__(self, params, lr: float = 0.1) -> None:
        super().__init__(params, lr=lr)
        self._lr = lr

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.add_(param.grad, alpha=-self._lr)
        return loss


def test_kit_catches_an_optimizer_that_ignores_the_scheduler() -> None:
    subject = ContractSubject("ignores-lr", _IgnoresLr, {"lr": 0.1})
    with pytest.raises(ContractFailure, match="lr to 0"):
        check_optimizer(subject, ["lr_scheduler"])


def test_kit_catches_a_wrong_reference() -> None:
    wrong = subject_from_registry("adam", betas=(0.8, 0.999))
    # The reference adapter sees the same betas, so this passes ...
    check_optimizer(wrong, ["reference"])
    # ... but a subject whose optimizer silently differs from its reference fails.
    liar = ContractSubject(
        "liar",
        lambda params, **kw: torch.optim.Adam(params, **{**kw, "betas": (0.8, 0.999)}),
        {"lr": 0.05},
        reference=wrong.reference,
    )
    with pytest.raises(ContractFailure, match="differs from the reference"):
        check_optimizer(liar, ["reference"])


def test_kit_reports_unmet_convergence_budget() -> None:
    subject = ContractSubject(
        "slow-sgd",
        torch.optim.SGD,
        {"lr": 1e-4},
        rosenbrock=ConvergenceBudget(lr=1e-4, steps=50),
    )
    with pytest.raises(ContractFailure, match="Rosenbrock"):
        check_optimizer(subject, ["converges"])


def test_kit_catches_accepted_invalid_hyperparameter() -> None:
    subject = ContractSubject("sgd", torch.optim.SGD, {"lr": 0.1}, invalid=[("momentum", "x")])
    with pytest.raises(ContractFailure, match="momentum"):
        check_optimizer(subject, ["invalid_hyperparameters"])
