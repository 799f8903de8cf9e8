"""Population tuning: a learning-rate grid trained at once, one member per grid point.

The bench's grid tuner (:mod:`optlab.bench.runner`) trains ``tuning.trials`` learning rates
of one optimizer on one problem. With an elementwise optimizer those trials can run as ONE
population (:class:`optlab.train.population.Population`): every member starts from the same
parameters (the tuning init seed), sees the same mini-batches (the tuning data-order seed,
exactly the order a lone trial draws) and differs only in its learning rate, a 1-D ``lr``
tensor along the population axis. :func:`train_lr_sweep` replays :func:`optlab.train.loop.train`
for every member, with the training core's batch stream, schedule and step
(:mod:`optlab.train.core`) and the loop's own :func:`optlab.train.loop.record_evaluation`:
the same budget in gradient evaluations, the same validation checkpoints
(every ``eval_every`` evaluations and at the end), the same early stopping (patience) and
divergence rule, a member that stops leaving the population (sliced out of the parameters and
the optimizer state) and its test split read once, with its final parameters. Each member's
result is the dict a lone trial returns, plus ``path = "population"`` and ``population``
(its size); it is stored under the lone trial's key, so either path reuses the other's
records. Validation and test losses are computed member by member with the lone trial's own
:func:`optlab.train.loop.evaluate`; only the training steps are vectorised, so the numbers
agree with the point-by-point path to float rounding (the stacked forward/backward rounds a
matmul differently in the last bit; analytic and convex problems run in float64). ``seconds``
of a member is its share of the population's training time (each step's time divided by the
members alive in it).

Which optimizers: those :func:`optlab.train.population.population_optimizer` can build with
a per-member ``lr`` (optlab's elementwise rules, torch's baselines through their twins;
``scaled-adam`` through its identity ScaledAdam(lr, eps, s) = Adam(lr/sqrt(s), eps/sqrt(s))
on Adam's twin) with the suite's fixed hyperparameters. L-BFGS (not elementwise, one
closure call per evaluation), or a fixed hyperparameter a twin does not take (``fused``,
``amsgrad``, RMSprop's ``momentum``...), runs the same grid point by point.

Where it pays (``[tuning] population = "auto"``, the default; :func:`pays`): the grid runs
as a population when the optimizer can be vectorised, at least 2 of its trials are still to
run, and the model has at most :data:`AUTO_MAX_PARAMETERS` parameters: every analytic and
convex problem, ``digits-mlp`` and ``mnist-5k`` (784-64-10) of the quick suite. Measured on
2 shared CPU cores (``python benchmarks/population_runs.py --repeats 1``: each problem's
6-point grid, one torch thread, sequential then population in the same process): 2.0x over
the 13 quick problems x adam/sgd/imo/mamgd (rows from 0.7x to 6x; mnist-5k 1.1x to 1.4x), 2.4x
for momentum/nesterov/adagrad/rmsprop/adamw/scaled-adam on beale/logistic/digits-mlp.
Whole benches gain less (L-BFGS's trials, evaluations and reported runs are unchanged):
``optlab bench`` on 6 quick problems x 11 optimizers, 1 seed, 2 workers: tuning stage 70 s
-> 42 s, whole bench 106 s -> 71 s. Larger models (the standard and full suites' nets) train
point by point, unmeasured here. ``population = "on"`` vectorises whatever can be, ``"off"``
never. The choice never changes a record's key: the same tuning record results either way,
its ``path`` field saying which path produced its trials (``"population"``, ``"sequential"``,
or ``"mixed"`` when a resumed sweep combined both).

Agreement: both paths run the same configuration, but not the same float operations, so
their numbers agree to rounding, not bit for bit; where a trajectory is chaotic the rounding
grows: float32 nets at large learning rates (digits-mlp, Adam at lr 1: val losses 2.08 vs
2.37 after 400 steps) and MAMGD, whose secant curvature (g - g_prev) / (theta - theta_prev)
amplifies the last bit even in float64. Stable trials (analytic and convex problems in
float64, and nets at moderate learning rates) agree to about 1e-7 relative or better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from optlab import optim
from optlab.bench.runs import run_result
from optlab.bench.suite import POPULATION_MODES
from optlab.errors import OptlabError
from optlab.problems.base import ProblemInstance
from optlab.problems.nets import trainable_parameters
from optlab.train.core import BatchStream
from optlab.train.loop import TrainConfig, TrainResult
from optlab.train.population import Population, PopulationError, population_optimizer
from optlab.train.population.members import train_members

AUTO_MAX_PARAMETERS = 60_000
"""``auto`` trains a grid, or an optimizer's reported seeds, as a population when the model
has at most this many parameters: the largest model measured to gain in a grid (``mnist-5k``,
784-64-10, has 50,890; ``digits-mlp`` 4,810; analytic and convex problems at most a few
dozen). Seeds gain less (each draws its own batches): ``benchmarks/population_runs.py --kind
seeds``, Adam, 5 seeds, 2 cores: 1.8x on ``mlp-synthetic`` and ``mnist1d-logistic``, 1.2x on
the MNIST-1D nets, 0.97-1.01x on ``mnist-5k`` and ``fmnist-2c2d`` (54,314), 0.89x on
``fmnist-mlp`` (101,770, above the cap)."""


class PopulationTuningError(OptlabError):
    """A grid cannot be trained as a population (use the point-by-point path)."""


def parameter_count(instance: ProblemInstance) -> int:
    """Trainable parameters of one model of ``instance``."""
    return trainable_parameters(instance.model)


def within_auto_cap(parameters: int) -> bool:
    """Whether a model of ``parameters`` trainable parameters is small enough for ``auto``."""
    return parameters <= AUTO_MAX_PARAMETERS


def pays(mode: str, instance: ProblemInstance) -> bool:
    """Whether ``mode`` trains this problem's runs (a grid, or the reported seeds) as a
    population, the optimizer aside."""
    if mode not in POPULATION_MODES:
        raise PopulationTuningError(
            f"population must be one of {', '.join(POPULATION_MODES)}, got {mode!r}"
        )
    if mode == "off":
        return False
    return mode == "on" or within_auto_cap(parameter_count(instance))


def sweep_optimizer(
    name: str,
    params: list[torch.Tensor],
    hyperparameters: dict[str, Any],
    lrs: torch.Tensor,
) -> torch.optim.Optimizer:
    """The registry optimizer ``name`` over stacked ``params`` with per-member learning rates
    ``lrs`` (1-D, one per member); :class:`PopulationTuningError` when it cannot take them."""
    entry = optim.spec(name)
    if entry.population is None or not entry.elementwise or entry.requires_closure:
        raise PopulationTuningError(
            f"{name} takes no per-member learning rates: its grid runs point by point"
        )
    if len(lrs) < 2:
        raise PopulationTuningError(f"a learning-rate population needs >= 2 lrs, got {len(lrs)}")
    fixed = dict(hyperparameters)
    fixed.pop("lr", None)
    try:  # the record's population form: native, a twin, or an identity (scaled-adam)
        return population_optimizer(name, params, {**fixed, "lr": lrs})
    except (TypeError, ValueError, PopulationError) as error:
        raise PopulationTuningError(
            f"{name} with {fixed} cannot take per-member learning rates: {error}"
        ) from error


def can_vectorise(name: str, hyperparameters: dict[str, Any]) -> bool:
    """Whether :func:`sweep_optimizer` builds ``name`` with these fixed hyperparameters (tried
    on a 2-member dummy parameter)."""
    dummy = [torch.zeros(2, 1, dtype=torch.float64, requires_grad=True)]
    try:
        sweep_optimizer(name, dummy, hyperparameters, torch.tensor([1e-3, 1e-2]))
    except PopulationTuningError:
        return False
    return True


def train_lr_sweep(
    instance: ProblemInstance,
    optimizer: str,
    hyperparameters: dict[str, Any],
    lrs: Sequence[float],
    config: TrainConfig,
) -> list[dict[str, Any]]:
    """Train one member per lr from ``instance``'s parameters, each as
    :func:`optlab.train.loop.train` would train it alone (module docstring); return one
    result dict per lr, in the order of ``lrs``."""
    count = len(lrs)
    if config.record_trajectory:
        raise PopulationTuningError("a learning-rate population records no trajectories")
    population = Population([instance] * count, list(range(count)))
    opt = sweep_optimizer(
        optimizer,
        list(population.params.values()),
        hyperparameters,
        torch.tensor([float(lr) for lr in lrs], dtype=torch.float64),
    )
    results = train_members(
        instance, population, opt, BatchStream(instance, config.data_seed), config
    )
    return member_records(instance, results)


def member_records(
    instance: ProblemInstance, results: Sequence[TrainResult]
) -> list[dict[str, Any]]:
    """The run records' results of a population's members: what a lone run returns, plus
    ``path = "population"`` and ``population`` (the number of members)."""
    return [
        {**run_result(instance, result), "path": "population", "population": len(results)}
        for result in results
    ]
