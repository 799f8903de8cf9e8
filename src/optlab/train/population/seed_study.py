"""The seed study: is a halving winner better, or just lucky?

:func:`seed_study` measures steps to the validation target for three arms per repeat (the
winner retrained on a fresh data order, the default seed on that order, the median of all
inits); the batch stream, the evaluation schedule, the training step and the target rule
are the training core's (:mod:`optlab.train.core`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from optlab.problems.base import ProblemInstance
from optlab.train.core import BatchStream, EvaluationSchedule, reached_target
from optlab.train.population.halving import HalvingConfig, successive_halving
from optlab.train.population.optimizer import population_optimizer
from optlab.train.population.stacked import Population, PopulationError


@dataclass
class SeedStudy:
    """Seed-aware halving: is the winner better, or just lucky?

    Per repeat (a fresh block of N init seeds and a fresh selection data order):
    ``winner`` is the halving winner retrained alone with a *fresh* data-order seed,
    ``default`` the default init seed trained with that same fresh data order, and
    ``median`` the median over all N inits trained without elimination (selection data
    order). Each value is the number of steps to reach the problem's validation target
    (``target``; ``inf`` when never reached within the budget). ``curves`` holds, per repeat, the
    validation loss of each arm at every evaluated step (``"step"``, ``"winner"``,
    ``"default"``, and ``"median"``: at each step the median over the N inits).
    """

    winner: list[float] = field(default_factory=list)
    default: list[float] = field(default_factory=list)
    median: list[float] = field(default_factory=list)
    winner_seeds: list[int] = field(default_factory=list)
    curves: list[dict[str, list[float]]] = field(default_factory=list)
    target: float = math.nan

    def summary(self) -> dict[str, float]:
        """Mean and std (sample, n - 1) of each arm over the repeats, and the winner's
        relative saving in steps against the default seed, ``(default - winner) /
        default`` per repeat (the seeds' "14.3% faster" is this number). An arm that never
        reached the target in some repeat has an infinite mean."""

        def mean_std(values: list[float]) -> tuple[float, float]:
            finite = torch.tensor(values, dtype=torch.float64)
            if not torch.isfinite(finite).all():
                return math.inf, math.nan
            return float(finite.mean()), float(finite.std()) if len(values) > 1 else 0.0

        out: dict[str, float] = {}
        for arm in ("winner", "default", "median"):
            out[f"{arm}_mean"], out[f"{arm}_std"] = mean_std(getattr(self, arm))
        savings = [
            (d - w) / d for w, d in zip(self.winner, self.default, strict=True) if math.isfinite(d)
        ]
        out["saving_vs_default_mean"], out["saving_vs_default_std"] = (
            mean_std(savings) if savings else (math.nan, math.nan)
        )
        return out

    def as_record(self) -> dict[str, Any]:
        """Plain values for the results store (``optlab multi-init --seed-study``)."""
        return {
            "winner": list(self.winner),
            "default": list(self.default),
            "median": list(self.median),
            "winner_seeds": list(self.winner_seeds),
            "curves": [dict(curve) for curve in self.curves],
            "target": self.target,
            "summary": self.summary(),
        }


def _track(
    population: Population,
    optimizer: torch.optim.Optimizer,
    steps: int,
    eval_every: int,
    data_seed: int,
) -> tuple[list[float], list[int], list[list[float]]]:
    """Train every member; (first step at the target per member, evaluated steps, each
    member's validation loss at those steps)."""
    template = population.template
    batches = BatchStream(template, data_seed)
    schedule = EvaluationSchedule(eval_every, steps)
    validation = template.data.validation if template.data else None
    reached = [math.inf] * len(population)
    evaluated: list[int] = []
    curves: list[list[float]] = [[] for _ in range(len(population))]
    for step in range(1, steps + 1):
        population.step(optimizer, next(batches))
        if not schedule.due(step):
            continue
        losses = population.evaluate(validation)
        evaluated.append(step)
        for member, value in enumerate(losses.tolist()):
            curves[member].append(value)
            if reached_target(value, template.target) and math.isinf(reached[member]):
                reached[member] = float(step)
    return reached, evaluated, curves


def steps_to_target(
    population: Population,
    optimizer: torch.optim.Optimizer,
    steps: int,
    eval_every: int,
    data_seed: int,
) -> list[float]:
    """Train every member for ``steps`` steps; each member's first evaluated step at which
    its validation loss reached the problem's target (``inf`` if never)."""
    return _track(population, optimizer, steps, eval_every, data_seed)[0]


def seed_study(
    build: Callable[[int], ProblemInstance],
    optimizer: str,
    hyperparameters: dict[str, Any],
    config: HalvingConfig,
    *,
    steps: int,
    eval_every: int,
    repeats: int = 3,
    default_seed: int = 42,
    first_seed: int = 1000,
    on_repeat: Callable[[int], None] | None = None,
) -> SeedStudy:
    """Measure halving honestly (see :class:`SeedStudy`); ``steps`` is each arm's budget.

    Repeat ``r`` uses init seeds ``first_seed + r*N ... first_seed + r*N + N - 1``, the
    selection data order ``10_000 + r`` and the fresh data order ``20_000 + r``;
    ``on_repeat(r)`` is called after each repeat.
    """
    checks = (("repeats", repeats, 1), ("steps", steps, 1), ("eval_every", eval_every, 1),
              ("first_seed", first_seed, 0))  # fmt: skip
    for name, value, low in checks:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise PopulationError(f"{name} must be an integer >= {low}, got {value!r}")
    study = SeedStudy()
    for repeat in range(repeats):
        seeds = [first_seed + repeat * config.members + i for i in range(config.members)]
        selection_seed, fresh_seed = 10_000 + repeat, 20_000 + repeat
        halving = HalvingConfig(
            members=config.members,
            reduce_factor=config.reduce_factor,
            steps_per_round=config.steps_per_round,
            data_seed=selection_seed,
        )
        result, _ = successive_halving(build, seeds, optimizer, hyperparameters, halving)
        everyone = Population([build(seed) for seed in seeds], seeds)
        all_steps, evaluated, all_curves = _track(
            everyone,
            population_optimizer(optimizer, list(everyone.params.values()), hyperparameters),
            steps,
            eval_every,
            selection_seed,
        )
        pair = Population([build(result.winner_seed), build(default_seed)], [0, 1])
        study.target = float(pair.template.target)
        (winner, default), _, (winner_curve, default_curve) = _track(
            pair,
            population_optimizer(optimizer, list(pair.params.values()), hyperparameters),
            steps,
            eval_every,
            fresh_seed,
        )
        median_curve = torch.tensor(all_curves, dtype=torch.float64).median(dim=0).values
        study.winner.append(winner)
        study.default.append(default)
        study.median.append(float(torch.tensor(all_steps).median()))
        study.winner_seeds.append(int(result.winner_seed))
        study.curves.append(
            {
                "step": [float(step) for step in evaluated],
                "winner": winner_curve,
                "default": default_curve,
                "median": median_curve.tolist(),
            }
        )
        if on_repeat is not None:
            on_repeat(repeat)
    return study
