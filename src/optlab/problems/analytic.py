"""Analytic test functions: a point ``x`` (float64) at a fixed start, no data.

Each problem's model is a :class:`Point`: one parameter ``x`` (a 1-D float64 tensor) whose
``forward()`` returns ``f(x)``; the loss is ``loss(model, None) = f(x)``. The start point is
fixed (the init seed is ignored), and so is the function (the instance seed is ignored).

Targets. Where the optimum is reachable by a tuned first-order method within the budget,
the target is ``optimum + 1e-6``: well below where a run that stalls ends, well above
float64 round-off. The budgets were checked offline: for every function but Rastrigin, SGD
with momentum 0.9 or Adam at its best learning rate on a 6-point grid reaches the target
within about half of ``steps`` (the table in each docstring below). Rastrigin's target
is not the optimum (see :func:`rastrigin`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from optlab.problems.base import BuildContext, ProblemInstance, ProblemSpec
from optlab.problems.seeding import check_context

Objective = Callable[[torch.Tensor], torch.Tensor]


class Point(torch.nn.Module):
    """A module with one parameter ``x``; ``forward()`` returns ``objective(x)``.

    ``objective`` may be a plain function or an ``nn.Module`` holding buffers (a matrix),
    which then moves with ``.to(device)``. Only ``x`` is a parameter.
    """

    def __init__(self, start: torch.Tensor, objective: Objective) -> None:
        super().__init__()
        self.x = torch.nn.Parameter(start.detach().clone())
        self.objective = objective

    def forward(self) -> torch.Tensor:
        return self.objective(self.x)


def point_loss(model: torch.nn.Module, batch: object = None) -> torch.Tensor:
    """The loss of a :class:`Point` problem: ``model()``, i.e. ``f(x)``; ``batch`` is ignored."""
    return model()


def quadratic_well(x: torch.Tensor) -> torch.Tensor:
    """``f(x) = 0.5 (x_0^2 + 10 x_1^2)``: condition number 10, minimum 0 at the origin."""
    return 0.5 * (x[0] ** 2 + 10.0 * x[1] ** 2)


def quadratic_ill(x: torch.Tensor) -> torch.Tensor:
    """``f(x) = 0.5 (x_0^2 + 1000 x_1^2)``: condition number 1000, minimum 0 at the origin."""
    return 0.5 * (x[0] ** 2 + 1000.0 * x[1] ** 2)


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    """``f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``: minimum 0 at ``(1, ..., 1)``."""
    head, tail = x[:-1], x[1:]
    return torch.sum(100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2)


def beale(x: torch.Tensor) -> torch.Tensor:
    """``f = (1.5 - a + ab)^2 + (2.25 - a + ab^2)^2 + (2.625 - a + ab^3)^2``, ``(a, b) = x``.

    Minimum 0 at ``(3, 0.5)``.
    """
    a, b = x[0], x[1]
    return (
        (1.5 - a + a * b) ** 2 + (2.25 - a + a * b**2) ** 2 + (2.625 - a + a * b**3) ** 2
    )


def rastrigin(x: torch.Tensor) -> torch.Tensor:
    """``f(x) = 10 n + sum_i (x_i^2 - 10 cos(2 pi x_i))``: minimum 0 at the origin.

    A local minimum sits near every integer point (value about ``sum_i x_i^2``).
    """
    return 10.0 * x.numel() + torch.sum(x**2 - 10.0 * torch.cos(2.0 * math.pi * x))


def himmelblau(x: torch.Tensor) -> torch.Tensor:
    """``f = (a^2 + b - 11)^2 + (a + b^2 - 7)^2``, ``(a, b) = x``: four minima of value 0."""
    a, b = x[0], x[1]
    return (a**2 + b - 11.0) ** 2 + (a + b**2 - 7.0) ** 2


HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.2831859912861696),
    (3.5844283403304917, -1.8481265269644034),
)
"""The four minimisers of :func:`himmelblau` (Newton-polished, ``f < 1e-30``)."""

RASTRIGIN_TARGET = 1.5
"""Rastrigin's target: below every local minimum except the global one and the four next
to it at ``(+-1, 0)``, ``(0, +-1)`` (value about 0.995); the local minimum next to the start
(2.5, 2.5), near (2, 2), has value about 7.96, those near (1, 1) about 1.99."""


def _point_builder(
    name: str,
    objective: Objective,
    start: tuple[float, ...],
    optimum: float,
    target: float,
    plot_bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
    minima: tuple[tuple[float, ...], ...] = (),
) -> Callable[[BuildContext], ProblemInstance]:
    def build(context: BuildContext = BuildContext()) -> ProblemInstance:
        check_context(name, context)
        start_point = torch.tensor(start, dtype=torch.float64)
        model = Point(start_point, objective).to(context.device)
        return ProblemInstance(
            name=name,
            model=model,
            loss=point_loss,
            data=None,
            target=target,
            optimum=optimum,
            plot_bounds=plot_bounds,
            minima=minima,
        )

    build.__name__ = f"build_{name.replace('-', '_')}"
    build.__doc__ = f"Build ``{name}`` (the init and instance seeds are ignored)."
    return build


ROSENBROCK_10D_START = tuple(-1.2 if i % 2 == 0 else 1.0 for i in range(10))

SPECS: tuple[ProblemSpec, ...] = (
    ProblemSpec(
        name="quadratic-well",
        kind="analytic",
        description="0.5 x^T diag(1, 10) x (condition 10), start (-3, 1), minimum 0 at 0",
        build=_point_builder(
            "quadratic-well",
            quadratic_well,
            start=(-3.0, 1.0),
            optimum=0.0,
            target=1e-6,
            plot_bounds=((-3.5, 3.5), (-1.5, 1.5)),
            minima=((0.0, 0.0),),
        ),
        steps=300,
        eval_every=10,
    ),
    ProblemSpec(
        name="quadratic-ill",
        kind="analytic",
        description="0.5 x^T diag(1, 1000) x (condition 1000), start (-3, 1), minimum 0 at 0",
        build=_point_builder(
            "quadratic-ill",
            quadratic_ill,
            start=(-3.0, 1.0),
            optimum=0.0,
            target=1e-6,
            plot_bounds=((-3.5, 3.5), (-1.5, 1.5)),
            minima=((0.0, 0.0),),
        ),
        steps=500,
        eval_every=10,
    ),
    ProblemSpec(
        name="rosenbrock-2d",
        kind="analytic",
        description="Rosenbrock 2-D, start (-1.2, 1), minimum 0 at (1, 1)",
        build=_point_builder(
            "rosenbrock-2d",
            rosenbrock,
            start=(-1.2, 1.0),
            optimum=0.0,
            target=1e-6,
            plot_bounds=((-2.0, 2.0), (-1.0, 3.0)),
            minima=((1.0, 1.0),),
        ),
        steps=1000,
        eval_every=20,
    ),
    ProblemSpec(
        name="rosenbrock-10d",
        kind="analytic",
        description="Rosenbrock 10-D, start (-1.2, 1, ..., -1.2, 1), minimum 0 at (1, ..., 1)",
        build=_point_builder(
            "rosenbrock-10d",
            rosenbrock,
            start=ROSENBROCK_10D_START,
            optimum=0.0,
            target=1e-6,
        ),
        steps=1000,
        eval_every=20,
    ),
    ProblemSpec(
        name="beale",
        kind="analytic",
        description="Beale, start (1, 1), minimum 0 at (3, 0.5)",
        build=_point_builder(
            "beale",
            beale,
            start=(1.0, 1.0),
            optimum=0.0,
            target=1e-6,
            plot_bounds=((-4.5, 4.5), (-4.5, 4.5)),
            minima=((3.0, 0.5),),
        ),
        steps=500,
        eval_every=10,
    ),
    ProblemSpec(
        name="rastrigin",
        kind="analytic",
        description="Rastrigin 2-D (A=10), start (2.5, 2.5), minimum 0 at 0, many local minima",
        build=_point_builder(
            "rastrigin",
            rastrigin,
            start=(2.5, 2.5),
            optimum=0.0,
            target=RASTRIGIN_TARGET,
            plot_bounds=((-3.0, 3.0), (-3.0, 3.0)),
            minima=((0.0, 0.0),),
        ),
        steps=300,
        eval_every=10,
    ),
    ProblemSpec(
        name="himmelblau",
        kind="analytic",
        description="Himmelblau, start (0, 0), four minima of value 0",
        build=_point_builder(
            "himmelblau",
            himmelblau,
            start=(0.0, 0.0),
            optimum=0.0,
            target=1e-6,
            plot_bounds=((-5.0, 5.0), (-5.0, 5.0)),
            minima=HIMMELBLAU_MINIMA,
        ),
        steps=300,
        eval_every=10,
    ),
)
"""The analytic problems, in registration order."""
