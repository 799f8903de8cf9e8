"""Convex problems: seeds, splits, the closed-form optimum, the reference targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optlab import problems
from optlab.problems import BuildContext
from optlab.problems.convex import SPECS, TARGET_MARGINS, spd_minimiser

CONVEX = [entry.name for entry in SPECS]
DATA = ["logistic", "robust-regression", "breast-cancer"]
SIZES = {"logistic": 600, "robust-regression": 500, "breast-cancer": 569}


def _parameters(instance: problems.ProblemInstance) -> list[torch.Tensor]:
    return [p.detach().clone() for p in instance.model.parameters()]


def _same(first: list[torch.Tensor], second: list[torch.Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_the_convex_set() -> None:
    assert CONVEX == ["spd-quadratic", "logistic", "robust-regression", "breast-cancer"]
    assert all(problems.spec(name).kind == "convex" for name in CONVEX)


@pytest.mark.parametrize("name", CONVEX)
def test_same_seeds_same_problem(name: str) -> None:
    context = BuildContext(instance_seed=5, init_seed=6)
    first, second = problems.build(name, context), problems.build(name, context)
    assert _same(_parameters(first), _parameters(second))
    assert first.target == second.target
    if first.data is not None:
        for a, b in zip(
            (first.data.train, first.data.validation, first.data.test),
            (second.data.train, second.data.validation, second.data.test),
            strict=True,
        ):
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("name", CONVEX)
def test_instance_seed_changes_the_problem_init_seed_the_start(name: str) -> None:
    base = problems.build(name, BuildContext(instance_seed=1, init_seed=1))
    other_instance = problems.build(name, BuildContext(instance_seed=2, init_seed=1))
    other_init = problems.build(name, BuildContext(instance_seed=1, init_seed=2))
    assert _same(_parameters(base), _parameters(other_instance))
    assert not _same(_parameters(base), _parameters(other_init))
    assert base.target == other_init.target
    if base.data is None:
        assert not torch.equal(base.model.objective.matrix, other_instance.model.objective.matrix)
    else:
        assert not torch.equal(base.data.train[0], other_instance.data.train[0])
    assert base.target != other_instance.target


@pytest.mark.parametrize("name", CONVEX)
def test_float64_finite_gradient_and_target_above_optimum(name: str) -> None:
    instance = problems.build(name)
    batch = None if instance.data is None else instance.data.train
    loss = instance.loss(instance.model, batch)
    loss.backward()
    assert loss.dtype == torch.float64 and torch.isfinite(loss)
    for parameter in instance.model.parameters():
        assert parameter.dtype == torch.float64 and torch.isfinite(parameter.grad).all()
    assert instance.batch_size is None
    if instance.optimum is not None:
        assert instance.target >= instance.optimum
    validation = None if instance.data is None else instance.data.validation
    with torch.no_grad():
        assert instance.loss(instance.model, validation).item() > instance.target


@pytest.mark.parametrize("name", DATA)
def test_splits_are_60_20_20_and_accuracy_is_a_fraction(name: str) -> None:
    instance = problems.build(name)
    data = instance.data
    sizes = [len(split[1]) for split in (data.train, data.validation, data.test)]
    assert sum(sizes) == SIZES[name]
    assert sizes[0] == pytest.approx(0.6 * SIZES[name], abs=2)
    assert sizes[1] == pytest.approx(0.2 * SIZES[name], abs=2)
    rows = torch.cat([data.train[0], data.validation[0], data.test[0]])
    assert len(torch.unique(rows, dim=0)) == SIZES[name]  # disjoint, nothing repeated
    if name == "robust-regression":
        assert instance.accuracy is None
    else:
        accuracy = float(instance.accuracy(instance.model, data.validation))
        assert 0.0 <= accuracy <= 1.0
        assert set(data.train[1].tolist()) == {0.0, 1.0}


def test_spd_quadratic_closed_form() -> None:
    instance = problems.build("spd-quadratic", BuildContext(instance_seed=3))
    form = instance.model.objective
    eigenvalues = torch.linalg.eigvalsh(form.matrix)
    assert float(eigenvalues.min()) == pytest.approx(1.0)
    assert float(eigenvalues.max()) == pytest.approx(30.0)
    assert torch.allclose(form.matrix, form.matrix.T)
    minimiser = spd_minimiser(instance)
    assert float(form(minimiser)) == pytest.approx(instance.optimum, rel=1e-12)
    exact = np.linalg.solve(form.matrix.numpy(), -form.vector.numpy())
    assert np.allclose(minimiser.numpy(), exact, atol=1e-12)
    assert instance.target == pytest.approx(instance.optimum + TARGET_MARGINS["spd-quadratic"])
    # L-BFGS from the instance's start agrees with the closed form
    optimizer = torch.optim.LBFGS(
        instance.model.parameters(),
        max_iter=300,
        tolerance_grad=1e-12,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = instance.loss(instance.model, None)
        value.backward()
        return value

    optimizer.step(closure)
    assert instance.loss(instance.model, None).item() == pytest.approx(instance.optimum, abs=1e-10)
    assert torch.allclose(instance.model.x.detach(), minimiser, atol=1e-6)


@pytest.mark.parametrize("name", ["logistic", "breast-cancer"])
def test_target_is_the_validation_loss_at_the_training_minimiser(name: str) -> None:
    instance = problems.build(name, BuildContext(instance_seed=11, init_seed=12))
    optimizer = torch.optim.LBFGS(
        instance.model.parameters(),
        max_iter=500,
        tolerance_grad=1e-10,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = instance.loss(instance.model, instance.data.train)
        value.backward()
        return value

    optimizer.step(closure)
    with torch.no_grad():
        reached = instance.loss(instance.model, instance.data.validation).item()
    assert reached == pytest.approx(instance.target - TARGET_MARGINS[name], abs=1e-7)


def test_breast_cancer_is_standardised_with_train_statistics() -> None:
    data = problems.build("breast-cancer").data
    train = data.train[0]
    assert torch.allclose(train.mean(dim=0), torch.zeros(30, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(train.std(dim=0, correction=0), torch.ones(30, dtype=torch.float64))
    assert not torch.allclose(data.validation[0].mean(dim=0), torch.zeros(30, dtype=torch.float64))


def test_robust_regression_has_gross_outliers() -> None:
    data = problems.build("robust-regression").data
    targets = torch.cat([data.train[1], data.validation[1], data.test[1]])
    median = targets.median()
    spread = (targets - median).abs().median()
    far = ((targets - median).abs() > 6 * spread).to(torch.float64).mean()
    assert 0.03 < float(far) < 0.2
