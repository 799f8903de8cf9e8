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
    ("lbfgs", "population"),
    ("lbfgs", "flat_layout"),
}
COMPILED = {"imo", "mamgd"}  # the entries with a ``compiled`` flag
FUSED = {"adam", "adamw", "scaled-adam", "imo", "mamgd"}  # the entries with a ``fused`` flag
WITH_REFERENCE = {"adam", "scaled-adam", "imo", "mamgd"}


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", names())
def test_registry_optimizer_meets_contract(name: str, check: str) -> None:
    subject = subject_from_registry(name)
    ran = run_check(subject, check)
    expected_to_run = (
        (name, check) not in NOT_APPLICABLE
        and (check != "reference" or name in WITH_REFERENCE)
        and (check != "compiled" or name in COMPILED)
        and (check != "fused" or name in FUSED)
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
    checks = ["reference", "foreach", "state_dict", "fused"]
    assert check_optimizer(subject, checks) == checks


class _EachParameter(torch.optim.SGD):
    """SGD's step written out, so that a planted mutant changes one parameter's update."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self.update(param, group)
        return loss

    def update(self, param: torch.Tensor, group: dict) -> None:
        param.add_(param.grad, alpha=-group["lr"])


class _IgnoresLr(_EachParameter):
    """A broken optimizer: it caches lr at construction and ignores the scheduler."""

    def __init__(self, params, lr: float = 0.1) -> None:
        super().__init__(params, lr=lr)
        self._lr = lr

    def update(self, param: torch.Tensor, group: dict) -> None:
        param.add_(param.grad, alpha=-self._lr)


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


class _IgnoresGroupMomentum(torch.optim.SGD):
    """Broken: uses the constructor's momentum for every group."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["momentum_saved"] = group["momentum"]
            group["momentum"] = self.defaults["momentum"]
        try:
            return super().step(closure)
        finally:
            for group in self.param_groups:
                group["momentum"] = group.pop("momentum_saved")


def test_kit_catches_ignored_per_group_hyperparameter() -> None:
    subject = ContractSubject(
        "ignores-group-momentum",
        _IgnoresGroupMomentum,
        {"lr": 0.05, "momentum": 0.9},
        group_variation={"momentum": 0.0},
    )
    with pytest.raises(ContractFailure, match="per-group hyperparameters"):
        check_optimizer(subject, ["param_groups"])


class _ForgetfulCopy(torch.optim.SGD):
    """Broken: a deepcopy loses its state and restarts momentum from zero."""

    def __deepcopy__(self, memo):
        import copy as copy_module

        params = [copy_module.deepcopy(p, memo) for p in self.param_groups[0]["params"]]
        return _ForgetfulCopy(params, lr=self.defaults["lr"], momentum=self.defaults["momentum"])


def test_kit_catches_a_deepcopy_that_does_not_continue() -> None:
    subject = ContractSubject("forgetful", _ForgetfulCopy, {"lr": 0.05, "momentum": 0.9})
    with pytest.raises(ContractFailure, match="does not continue"):
        check_optimizer(subject, ["deepcopy"])


def test_kit_lists_a_crashing_check_and_runs_the_others() -> None:
    subject = ContractSubject("torch-lbfgs", torch.optim.LBFGS, {"lr": 0.5}, elementwise=False)
    with pytest.raises(ContractFailure) as failure:
        check_optimizer(subject, ["non_contiguous", "closure"])
    message = str(failure.value)
    assert "non_contiguous: raised RuntimeError" in message
    assert "closure:" not in message  # the closure check ran after the crash, and passed


def test_kit_field_names_must_stand_as_words() -> None:
    def vague(params, **kwargs):
        if "eps" in kwargs:
            raise ValueError("training steps would diverge")
        return torch.optim.SGD(params, lr=0.1)

    subject = ContractSubject("vague", vague, {}, invalid=[("eps", -1.0)])
    with pytest.raises(ContractFailure, match="without naming 'eps'"):
        check_optimizer(subject, ["invalid_hyperparameters"])


class _NormalisedSGD(_EachParameter):
    """Not elementwise: divides each gradient by its tensor's norm (a per-tensor reduction)."""

    def update(self, param: torch.Tensor, group: dict) -> None:
        param.add_(param.grad / param.grad.norm(), alpha=-group["lr"])


def test_kit_catches_a_per_tensor_reduction_declared_elementwise() -> None:
    subject = ContractSubject("normalised-sgd", _NormalisedSGD, {"lr": 0.1})
    with pytest.raises(ContractFailure, match="stacked population differs"):
        check_optimizer(subject, ["population"])


# ------------------------------------------------------------- planted mutants, new checks
class _ContiguousCopySGD(_EachParameter):
    """Broken on strides: updates ``param.contiguous()``, a copy for a strided parameter."""

    def update(self, param: torch.Tensor, group: dict) -> None:
        param.contiguous().add_(param.grad, alpha=-group["lr"])


def test_kit_catches_an_optimizer_that_loses_updates_on_strided_parameters() -> None:
    subject = ContractSubject("contiguous-copy", _ContiguousCopySGD, {"lr": 0.1})
    check_optimizer(subject, ["loss_decreases"])  # fine on contiguous parameters ...
    with pytest.raises(ContractFailure, match="non-contiguous parameter 0"):
        check_optimizer(subject, ["non_contiguous"])  # ... wrong on strided ones


class _NumpySGD(torch.optim.SGD):
    """Broken with create_graph: an old-style step (``param.data``, no ``no_grad``) that
    reads gradients through NumPy, which refuses a gradient that carries a graph."""

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    grad = torch.from_numpy(param.grad.numpy().copy())
                    param.data.add_(grad, alpha=-group["lr"])
        return loss


def test_kit_catches_an_optimizer_that_fails_on_gradients_with_a_graph() -> None:
    subject = ContractSubject("numpy-sgd", _NumpySGD, {"lr": 0.1})
    check_optimizer(subject, ["closure"])
    with pytest.raises(ContractFailure, match="create_graph: raised RuntimeError"):
        check_optimizer(subject, ["create_graph"])


class _LrAtFirstStep(torch.optim.SGD):
    """Broken for schedulers built early: groups get their lr only at the first step."""

    def __init__(self, params, lr: float = 0.1) -> None:
        super().__init__(params, lr=lr)
        self._pending_lr = lr
        for group in self.param_groups:
            del group["lr"]

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group.setdefault("lr", self._pending_lr)
        return super().step(closure)


def test_kit_catches_an_optimizer_that_sets_lr_at_its_first_step() -> None:
    subject = ContractSubject("late-lr", _LrAtFirstStep, {"lr": 0.1}, supports_param_groups=False)
    check_optimizer(subject, ["closure", "loss_decreases"])  # it steps fine alone ...
    with pytest.raises(ContractFailure, match="scheduler_before_first_step: raised KeyError"):
        check_optimizer(subject, ["scheduler_before_first_step"])


class _HardCodedGroupLr(torch.optim.SGD):
    """Broken: a group given without lr gets a hard-coded 1e-3, not the constructor's lr."""

    def add_param_group(self, param_group: dict) -> None:
        param_group.setdefault("lr", 1e-3)
        super().add_param_group(param_group)


def test_kit_catches_a_group_without_lr_that_ignores_the_default() -> None:
    subject = ContractSubject("hard-coded-lr", _HardCodedGroupLr, {"lr": 0.1})
    with pytest.raises(ContractFailure, match=r"not the default 0\.1"):
        check_optimizer(subject, ["group_default_lr"])


class _OpaqueRepr(torch.optim.SGD):
    """Broken repr: Python's default, which names neither the groups nor the lr."""

    __repr__ = object.__repr__


def test_kit_catches_an_unreadable_repr() -> None:
    check_optimizer(ContractSubject("sgd", torch.optim.SGD, {"lr": 0.1}), ["repr"])
    with pytest.raises(ContractFailure, match="does not list parameter group 0"):
        check_optimizer(ContractSubject("opaque", _OpaqueRepr, {"lr": 0.1}), ["repr"])


def test_kit_catches_an_accepted_invalid_combination() -> None:
    subject = ContractSubject(
        "imo-without-cross-check",
        lambda params, **kw: torch.optim.SGD(params, lr=kw.get("lr", 0.1)),
        {"lr": 0.1},
        invalid_combinations=[("mass_min", {"mass_min": 5.0, "mass_max": 1.0})],
    )
    with pytest.raises(ContractFailure, match="was accepted"):
        check_optimizer(subject, ["invalid_hyperparameters"])


class _SkipsGraphGradients(_EachParameter):
    """Broken with create_graph, silently: leaves a parameter whose gradient carries a graph
    unchanged (a guard meant for something else), so nothing crashes."""

    def update(self, param: torch.Tensor, group: dict) -> None:
        if not param.grad.requires_grad:
            param.add_(param.grad, alpha=-group["lr"])


def test_kit_catches_an_optimizer_that_skips_gradients_with_a_graph() -> None:
    subject = ContractSubject("skips-graph", _SkipsGraphGradients, {"lr": 0.1})
    check_optimizer(subject, ["closure", "loss_decreases"])
    with pytest.raises(ContractFailure, match="moved differently with create_graph"):
        check_optimizer(subject, ["create_graph"])


class _LrFixedAtFirstStep(torch.optim.SGD):
    """Broken, silently: reads each group's lr at its first step and keeps it."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group.setdefault("frozen_lr", group["lr"])
        saved = [group["lr"] for group in self.param_groups]
        for group in self.param_groups:
            group["lr"] = group["frozen_lr"]
        try:
            return super().step(closure)
        finally:
            for group, lr in zip(self.param_groups, saved, strict=True):
                group["lr"] = lr


def test_kit_catches_scheduled_learning_rates_that_are_ignored() -> None:
    subject = ContractSubject("frozen-lr", _LrFixedAtFirstStep, {"lr": 0.1})
    check_optimizer(subject, ["closure", "loss_decreases"])
    with pytest.raises(ContractFailure, match="were not used"):
        check_optimizer(subject, ["scheduler_before_first_step"])


def test_new_checks_pass_third_party_optimizers_with_their_own_defaults() -> None:
    """Subjects without an lr of their own (torch's defaults, 1e-2 for Adagrad and RMSprop)
    and with a tensor lr, which schedulers update in place."""
    checks = ["scheduler_before_first_step", "group_default_lr", "repr", "create_graph"]
    for factory in (torch.optim.Adagrad, torch.optim.RMSprop):
        assert check_optimizer(ContractSubject(factory.__name__, factory), checks) == checks
    tensor_lr = ContractSubject("adam", torch.optim.Adam, {"lr": torch.tensor(0.01)})
    assert check_optimizer(tensor_lr, checks[:2]) == checks[:2]
