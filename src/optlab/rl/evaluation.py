"""Held-out comparisons of a learned policy with torch's optimizers.

:func:`compare_on_instances` runs ``Learned`` and baselines (any registry names with fixed
hyperparameters) from the same starting points on the same instances (the environment's
objective: the full training loss, evaluated with torch) for the same number of steps,
and returns the final objective of every run; :func:`summarise` turns that into
mean +- std per optimizer. The CLI's ``optlab rl bench`` (:mod:`optlab.rl.bench`) runs the
tuned, stored comparison instead.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from optlab import optim
from optlab.optim.learned import Learned, LearnedPolicy
from optlab.rl.instances import (
    MAX_INSTANCES,
    InstanceSeeds,
    Objective,
    check_count,
    instance_seeds,
    problem_name,
)

LEARNED = "learned"


@dataclass
class Comparison:
    """Final objectives per optimizer over (instance, repeat) pairs, plus the curves."""

    problem: str
    steps: int
    instances: list[InstanceSeeds]
    final: dict[str, list[float]] = field(default_factory=dict)
    curves: dict[str, list[list[float]]] = field(default_factory=dict)


def _run(
    objective: Objective,
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    steps: int,
) -> list[float]:
    objective.reset()
    model, batch = objective.instance.model, objective.batch
    optimizer = make(objective.parameters)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = objective.instance.loss(model, batch)
        loss.backward()
        return loss

    curve = []
    with torch.no_grad():
        curve.append(float(objective.instance.loss(model, batch)))
    for _ in range(steps):
        optimizer.step(closure)
        with torch.no_grad():
            value = float(objective.instance.loss(model, batch))
        curve.append(value)
        if not math.isfinite(value):
            curve.extend([value] * (steps + 1 - len(curve)))
            break
    return curve


def compare_on_instances(
    policy: LearnedPolicy,
    problem: str,
    *,
    baselines: Mapping[str, Mapping[str, Any]],
    count: int = 20,
    steps: int = 40,
    split: str = "heldout",
    split_seed: int = 0,
    learned_lr: float | None = None,
) -> Comparison:
    """Run the policy and each baseline ``name -> hyperparameters`` (registry names) on
    ``count`` instances of ``split`` for ``steps`` steps each (same starts for all)."""
    check_count("count", count, high=MAX_INSTANCES)
    check_count("steps", steps)
    name = problem_name(problem)
    seeds = instance_seeds(split, count, split_seed)
    result = Comparison(problem=name, steps=steps, instances=seeds)
    makers: dict[str, Callable[[list[torch.Tensor]], torch.optim.Optimizer]] = {
        LEARNED: lambda params: Learned(params, policy, lr=learned_lr)
    }
    for baseline, hyperparameters in baselines.items():
        optim.spec(baseline)
        makers[baseline] = lambda params, b=baseline, h=dict(hyperparameters): optim.create(
            b, params, **h
        )
    for seed in seeds:
        objective = Objective(name, seed)
        for label, make in makers.items():
            curve = _run(objective, make, steps)
            result.final.setdefault(label, []).append(curve[-1])
            result.curves.setdefault(label, []).append(curve)
    return result


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN when any is non-finite)."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) != len(values) or not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(comparison: Comparison) -> dict[str, dict[str, float]]:
    """Per optimizer: mean, std and median of the final objective, and ``learned_wins``:
    the fraction of (instance, repeat) pairs where the learned policy's final objective is
    lower than this optimizer's (NaN when the comparison has no learned runs)."""
    learned = comparison.final.get(LEARNED)
    table = {}
    for label, values in comparison.final.items():
        mean, std = mean_std(values)
        wins = (
            sum(a < b for a, b in zip(learned, values, strict=True)) / max(len(values), 1)
            if learned is not None and len(learned) == len(values)
            else math.nan
        )
        table[label] = {
            "mean": mean,
            "std": std,
            "median": statistics.median(values) if values else math.nan,
            "learned_wins": wins,
        }
    return table
