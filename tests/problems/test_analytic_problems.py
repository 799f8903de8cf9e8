"""Analytic problems: seeded starts, value at the minimisers, finite gradients, targets."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from optlab import problems
from optlab.problems import BuildContext
from optlab.problems.analytic import (
    CLASSICAL_SEED,
    SPECS,
    START_RULE,
    Point,
    PointBuilder,
    rastrigin,
    rosenbrock,
    start_point,
)

ANALYTIC = [entry.name for entry in SPECS]
MINIMISERS = {
    "quadratic-well": [(0.0, 0.0)],
    "quadratic-ill": [(0.0, 0.0)],
    "rosenbrock-2d": [(1.0, 1.0)],
    "rosenbrock-10d": [(1.0,) * 10],
    "beale": [(3.0, 0.5)],
    "rastrigin": [(0.0, 0.0)],
    "himmelblau": [
        (3.0, 2.0),
        (-2.805118, 3.131312),
        (-3.779310, -3.283186),
        (3.584428, -1.848126),
    ],
}


def _value(instance: problems.ProblemInstance, point: tuple[float, ...]) -> float:
    with torch.no_grad():
        instance.model.x.copy_(torch.tensor(point, dtype=torch.float64))
        return float(instance.loss(instance.model, None))


def test_the_analytic_set() -> None:
    assert list(MINIMISERS) == ANALYTIC
    assert all(problems.spec(name).kind == "analytic" for name in ANALYTIC)


@pytest.mark.parametrize("name", ANALYTIC)
def test_one_float64_parameter_started_by_the_init_seed(name: str) -> None:
    first = problems.build(name, BuildContext(instance_seed=1, init_seed=1))
    other_instance = problems.build(name, BuildContext(instance_seed=2, init_seed=1))
    other_init = problems.build(name, BuildContext(instance_seed=1, init_seed=3))
    parameters = dict(first.model.named_parameters())
    assert list(parameters) == ["x"]
    x = parameters["x"]
    assert x.dtype == torch.float64 and x.dim() == 1
    assert torch.equal(x, other_instance.model.x)  # the instance seed changes nothing
    assert not torch.equal(x, other_init.model.x)  # the init seed moves the start
    assert first.data is None and first.batch_size is None and first.accuracy is None
    assert first.model() == first.loss(first.model, None)


@pytest.mark.parametrize("name", ANALYTIC)
def test_seeded_starts_lie_in_the_documented_box(name: str) -> None:
    builder = problems.spec(name).build
    assert isinstance(builder, PointBuilder)
    centre = torch.tensor(builder.start, dtype=torch.float64)
    classical = problems.build(name, BuildContext(init_seed=CLASSICAL_SEED)).model.x
    assert torch.equal(classical.detach(), centre)
    starts = torch.stack(
        [problems.build(name, BuildContext(init_seed=s)).model.x.detach() for s in range(43, 63)]
    )
    offsets = (starts - centre).abs()
    assert float(offsets.max()) <= builder.start_radius
    assert float(offsets.max()) > 0.5 * builder.start_radius  # they spread over the box
    assert len({tuple(row.tolist()) for row in starts}) == len(starts)
    again = problems.build(name, BuildContext(init_seed=43)).model.x.detach()
    assert torch.equal(again, starts[0])


def test_start_point_rule() -> None:
    generator = torch.Generator().manual_seed(7)
    u = torch.rand((2,), generator=generator, dtype=torch.float64)
    expected = torch.tensor([-1.2, 1.0], dtype=torch.float64) + 0.2 * (2.0 * u - 1.0)
    assert torch.equal(start_point((-1.2, 1.0), 0.2, 7), expected)
    assert start_point((-1.2, 1.0), 0.2, CLASSICAL_SEED).tolist() == [-1.2, 1.0]


def test_only_runs_from_a_drawn_start_get_a_new_store_key() -> None:
    """Keys of existing configs stay: seed 42 and data problems keep theirs; an analytic run
    at another init seed (a new start) says so in its config, so old records are not reused."""
    from optlab.bench.runs import RunConfig
    from optlab.bench.store import config_key

    def config(problem: str, seed: int) -> RunConfig:
        return RunConfig(problem, "adam", {"lr": 0.1}, 42, seed, seed, 100, 10)

    for unchanged in (config("beale", 42), config("digits-mlp", 43), config("logistic", 7)):
        assert unchanged.key == config_key(dataclasses.asdict(unchanged))
        assert "start" not in unchanged.as_dict()
    moved = config("beale", 43)
    assert moved.as_dict()["start"] == START_RULE
    assert moved.key != config_key(dataclasses.asdict(moved))
    assert problems.start_rule("no-such-problem", 43) is None
    # tuning records: their trials run at the tuning seed (1042), so the same rule applies
    from optlab.bench.runner import _tuning_config
    from optlab.bench.suite import load_suite

    quick = load_suite("quick")
    assert _tuning_config(quick, "beale", "adam", None)["start"] == START_RULE
    assert "start" not in _tuning_config(quick, "digits-mlp", "adam", None)


@pytest.mark.parametrize("name", ANALYTIC)
def test_minimisers_give_the_optimum(name: str) -> None:
    instance = problems.build(name)
    assert instance.optimum == 0.0
    for point in MINIMISERS[name]:
        assert _value(instance, point) == pytest.approx(instance.optimum, abs=1e-9)
    for point in instance.minima:
        assert _value(instance, point) == pytest.approx(instance.optimum, abs=1e-20)


@pytest.mark.parametrize("name", ANALYTIC)
def test_gradient_is_finite_and_start_is_not_solved(name: str) -> None:
    instance = problems.build(name)
    loss = instance.loss(instance.model, None)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(instance.model.x.grad).all()
    assert instance.model.x.grad.abs().sum() > 0
    assert instance.target >= instance.optimum
    assert loss.item() > instance.target


@pytest.mark.parametrize("name", ANALYTIC)
def test_plot_bounds_show_the_start_and_the_minima(name: str) -> None:
    instance = problems.build(name)
    if instance.model.x.numel() != 2:
        assert instance.plot_bounds is None and instance.minima == ()
        return
    (x_low, x_high), (y_low, y_high) = instance.plot_bounds
    start = instance.model.x.tolist()
    for x, y in [start, *instance.minima]:
        assert x_low <= x <= x_high and y_low <= y <= y_high
    assert len(instance.minima) == len(MINIMISERS[name])


def test_start_points() -> None:
    assert problems.build("rosenbrock-2d").model.x.tolist() == [-1.2, 1.0]
    assert problems.build("rosenbrock-10d").model.x.tolist() == [-1.2, 1.0] * 5
    assert problems.build("rastrigin").model.x.tolist() == [2.5, 2.5]


def test_quadratic_conditioning() -> None:
    for name, condition in (("quadratic-well", 10.0), ("quadratic-ill", 1000.0)):
        instance = problems.build(name)
        hessian = torch.autograd.functional.hessian(instance.model.objective, instance.model.x)
        eigenvalues = torch.linalg.eigvalsh(hessian)
        assert float(eigenvalues.max() / eigenvalues.min()) == pytest.approx(condition)


def test_function_values() -> None:
    start = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    assert float(rosenbrock(start)) == pytest.approx(24.2)
    near_two = torch.tensor([2.0, 2.0], dtype=torch.float64)
    assert float(rastrigin(near_two)) == pytest.approx(8.0)
    point = Point(near_two, rastrigin)
    assert math.isclose(problems.build("rastrigin").loss(point, None).item(), 8.0)


def test_rastrigin_target_is_below_every_other_local_minimum() -> None:
    instance = problems.build("rastrigin")
    assert instance.optimum < instance.target < 0.99
