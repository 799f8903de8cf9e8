"""A population whose members are lone runs: each member's record, as ``train`` would write it.

:func:`train_members` trains a stacked :class:`~optlab.train.population.Population` with ONE
optimizer and returns, for every member, the :class:`~optlab.train.loop.TrainResult` that
:func:`optlab.train.loop.train` returns for that member trained alone: the same budget in
gradient evaluations (one per step: no L-BFGS here), the same validation checkpoints (every
``eval_every`` evaluations and at the end), the same early stopping (patience) and divergence
rule through the loop's own :func:`~optlab.train.loop.record_evaluation`, a member that stops
leaving the population (sliced out of the parameters, the optimizer state, per-member
hyperparameters and, with per-member data, its batch stream), and its test split read once
with its final parameters. Validation and test numbers are computed member by member with the
lone run's :func:`~optlab.train.loop.evaluate` (the member's parameters loaded into the
problem's model); only the training steps are vectorised, so the numbers agree with lone runs
to float rounding (a stacked matmul rounds its last bit differently). ``seconds`` of a member
is its share of the population's training time (each step's time divided by the members
alive in it). With ``config.record_trajectory`` each member keeps its parameter vector after
every step, as a lone run does.

Two users in the bench: a learning-rate grid (members share the init and the batches and
differ in a 1-D ``lr``) and the reported seeds of one optimizer (members differ in init seed
and data-order seed: :class:`~optlab.train.population.MemberBatches`).
"""

from __future__ import annotations

import time

import torch

from optlab.problems.base import ProblemInstance
from optlab.train.core import BatchStream, EvaluationSchedule, training_step
from optlab.train.loop import (
    CURVE_FIELDS,
    TrainConfig,
    TrainResult,
    check_lr_fits,
    evaluate,
    record_evaluation,
    summarise,
)
from optlab.train.population.stacked import Population
from optlab.train.population.streams import MemberBatches


def load_member(instance: ProblemInstance, population: Population, position: int) -> None:
    """Copy member ``position``'s parameters and buffers into ``instance.model``."""
    with torch.no_grad():
        for name, param in instance.model.named_parameters():
            param.copy_(population.params[f"model.{name}"][position])
        for name, buffer in instance.model.named_buffers():
            stacked = population.buffers.get(f"model.{name}")
            if stacked is not None:
                buffer.copy_(stacked[position])


def member_vector(population: Population, position: int) -> list[float]:
    """Member ``position``'s parameters as one float64 list (a lone run's trajectory point)."""
    parts = [tensor.detach()[position].reshape(-1) for tensor in population.params.values()]
    return torch.cat(parts).double().tolist()


def train_members(
    instance: ProblemInstance,
    population: Population,
    optimizer: torch.optim.Optimizer,
    batches: BatchStream | MemberBatches,
    config: TrainConfig,
) -> list[TrainResult]:
    """Train every member of ``population`` (labelled ``0 .. N-1`` in ``population.seeds``)
    as a lone run (module docstring); ``instance`` is the problem whose model evaluates each
    member. ``batches``: one shared stream, or :class:`MemberBatches` (one per member).
    Returns the results in member order."""
    count = len(population)
    if sorted(population.seeds) != list(range(count)):
        raise ValueError("train_members: label the members 0 .. N-1 (population.seeds)")
    check_lr_fits(optimizer)
    per_member = isinstance(batches, MemberBatches)
    validation = instance.data.validation if instance.data else None
    results = [
        TrainResult(
            curve={name: [] for name in CURVE_FIELDS},
            trajectory=[] if config.record_trajectory else None,
        )
        for _ in range(count)
    ]

    def record_points() -> None:
        for position, member in enumerate(population.seeds):
            results[member].trajectory.append(member_vector(population, position))

    if config.record_trajectory:
        record_points()
    seconds = [0.0] * count
    steps, schedule = 0, EvaluationSchedule(config.eval_every, config.steps)
    while steps < config.steps and len(population):
        started = time.perf_counter()  # the batch draw counts, as in a lone run's seconds
        batch = next(batches)
        losses = training_step(
            optimizer,
            lambda: population.losses(batch, per_member=per_member),  # noqa: B023
        )
        share = (time.perf_counter() - started) / len(population)
        steps += 1
        for member in population.seeds:
            seconds[member] += share
        if config.record_trajectory:
            record_points()
        if not schedule.due(steps):
            continue
        last = steps >= config.steps
        train_losses = losses.detach().tolist()
        stopped = []
        for position, member in enumerate(population.seeds):
            load_member(instance, population, position)
            result = results[member]
            value, accuracy = evaluate(instance, validation)
            done = record_evaluation(
                instance, config, result, steps, steps, seconds[member],
                train_losses[position], value, accuracy,
            )  # fmt: skip
            if done or last:
                result.steps = result.evaluations = steps
                result.seconds = seconds[member]
                summarise(instance, result)
                stopped.append(position)
        if stopped:
            kept = [p for p in range(len(population)) if p not in stopped]
            if not kept:
                break
            population.keep(kept, optimizer)  # per-member learning rates included
            if per_member:
                batches.keep(kept)
    return results
