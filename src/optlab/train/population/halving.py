"""Successive halving of a population, exact and resumable.

:func:`successive_halving` trains all members for ``steps_per_round`` steps, evaluates each
on the validation split, keeps the best ``ceil(N x reduce_factor)``, capped at ``N - 1`` so
every round eliminates (:func:`kept_count`; lowest validation loss; a diverged member ranks
last) by slicing the survivors out of the parameters AND the
optimizer state, nothing restarted, and repeats while more than one member is left; the
last one then trains for ``final_steps`` more steps. The batch stream and the training step
are the training core's (:mod:`optlab.train.core`).

Resuming (``checkpoint_dir``): after every completed round the survivors' stacked
parameters and buffers, the optimizer's state dict, the mini-batch stream (generator state,
the epoch's permutation, the position in it), torch's global RNG state and the rounds so
far are written as a checkpoint (:mod:`optlab.train.population.checkpoints`). A later call
with the same arguments loads the latest checkpoint and continues with round K+1, and its
result equals an uninterrupted run's bit for bit. A checkpoint that cannot be read, or was
written by other arguments, is ignored with a :class:`CheckpointWarning` (it is validated
whole before anything is used).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from optlab import optim
from optlab.problems.base import ProblemInstance
from optlab.train.core import BatchStream, ranked
from optlab.train.population.checkpoints import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointWarning,
    load_latest,
    plain,
    save_checkpoint,
)
from optlab.train.population.graphs import GraphedStep
from optlab.train.population.optimizer import population_optimizer
from optlab.train.population.stacked import Population, PopulationError
from optlab.train.population.streams import DATA_ORDERS, MemberBatches, make_batches

MAX_MEMBERS = 100_000
"""At most this many members in a halving run (``--num-models``)."""


@dataclass(frozen=True)
class HalvingConfig:
    """Successive halving: ``members`` models, keep ``ceil(n x reduce_factor)`` (at most
    ``n - 1``) per round.

    Attributes:
        members: population size N (>= 1).
        reduce_factor: fraction kept each round, in (0, 1).
        steps_per_round: optimizer steps between eliminations (>= 1).
        final_steps: steps the last survivor trains on afterwards (>= 0).
        data_seed: seeds the shared mini-batch order ("shared"), or the first member's
            ("per-member": member i, by position among the init seeds, draws with
            ``data_seed + i``).
        data_order: ``"shared"`` (every member sees the same mini-batch: member i follows a
            lone model from init seed i exactly) or ``"per-member"`` (each member its own
            seeded order, stacked along the population axis; full-batch and analytic
            problems have one order either way).
        cuda_graph: capture each round's training step as a CUDA graph and replay it
            (CUDA only; see the module docstring).
    """

    members: int = 16
    reduce_factor: float = 0.5
    steps_per_round: int = 100
    final_steps: int = 0
    data_seed: int = 42
    cuda_graph: bool = False
    data_order: str = "shared"

    def __post_init__(self) -> None:
        def integer(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise PopulationError(f"{name} must be an integer >= {low}, got {value!r}")

        integer("members", 1)
        if self.members > MAX_MEMBERS:  # a model copy each: a larger count is a typo
            raise PopulationError(f"members must be <= {MAX_MEMBERS:,}, got {self.members:,}")
        integer("steps_per_round", 1)
        integer("final_steps", 0)
        factor = self.reduce_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise PopulationError(f"reduce_factor must be in (0, 1), got {factor!r}")
        if not isinstance(self.cuda_graph, bool):
            raise PopulationError(f"cuda_graph must be True or False, got {self.cuda_graph!r}")
        if self.data_order not in DATA_ORDERS:
            raise PopulationError(
                f"data_order must be one of {', '.join(DATA_ORDERS)}, got {self.data_order!r}"
            )
        if self.cuda_graph and self.data_order == "per-member":
            raise PopulationError(
                "cuda_graph=True needs data_order='shared' (one static batch buffer)"
            )


@dataclass
class HalvingResult:
    """What a halving run did: per round, who was alive, their validation losses, who stayed."""

    rounds: list[dict[str, list[Any]]] = field(default_factory=list)
    winner_seed: int | None = None
    final_val_loss: float = math.nan
    test_loss: float = math.nan


def kept_count(alive: int, reduce_factor: float) -> int:
    """How many of ``alive`` members a round keeps: ``ceil(alive x reduce_factor)``, but at
    least 1 and at most ``alive - 1``, so every round eliminates someone (with a factor
    above 0.5, ceil(2 r) = 2 would otherwise keep two members forever)."""
    if alive <= 1:
        return alive
    return max(1, min(alive - 1, math.ceil(alive * reduce_factor)))


def survivors(losses: torch.Tensor, reduce_factor: float) -> list[int]:
    """Indices of the best :func:`kept_count` members (a diverged one ranks last, as the
    training core ranks it: :func:`optlab.train.core.ranked`), best first."""
    count = kept_count(len(losses), reduce_factor)
    ranks = ranked(losses)
    order = sorted(range(len(losses)), key=lambda i: (float(ranks[i]), i))
    return order[:count]


def _identity(
    optimizer: str, hyperparameters: dict[str, Any], config: HalvingConfig, seeds: Sequence[int]
) -> dict[str, Any]:
    """What a checkpoint must have been written by (compared whole on resume)."""
    return {
        "optimizer": optimizer,
        "hyperparameters": plain(hyperparameters),
        "config": asdict(config),
        "init_seeds": [int(seed) for seed in seeds],
    }


def round_sizes(config: HalvingConfig) -> list[int]:
    """Members alive at the start of each round: N, ceil(N r), ... down to 2."""
    sizes, alive = [], config.members
    while alive > 1:
        sizes.append(alive)
        alive = kept_count(alive, config.reduce_factor)
    return sizes


@dataclass
class _Run:
    """The live state of a halving run (what a checkpoint holds)."""

    population: Population
    optimizer: torch.optim.Optimizer
    batches: BatchStream | MemberBatches
    result: HalvingResult


def _checkpoint_payload(run: _Run, identity: dict[str, Any]) -> dict[str, Any]:
    population = run.population
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "identity": identity,
        "round": len(run.result.rounds),
        "rounds": run.result.rounds,
        "seeds": list(population.seeds),
        "params": {name: tensor.detach() for name, tensor in population.params.items()},
        "buffers": dict(population.buffers),
        "optimizer": run.optimizer.state_dict(),
        "batches": run.batches.state(),
        "rng": torch.get_rng_state(),
    }


def _restore(
    payload: Any,
    number: int,
    identity: dict[str, Any],
    build: Callable[[int], ProblemInstance],
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    config: HalvingConfig,
    batched: bool | None,
) -> _Run:
    """A run rebuilt from a loaded checkpoint; raises ValueError/KeyError/RuntimeError when
    anything in it does not fit (then nothing of it is used)."""
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("not an optlab halving checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint version {payload.get('version')!r}")
    if payload["identity"] != identity:
        raise ValueError("written by a run with other arguments")
    rounds, seeds = list(payload["rounds"]), [int(seed) for seed in payload["seeds"]]
    sizes = round_sizes(config)
    if payload["round"] != number or len(rounds) != number or not 1 <= number <= len(sizes):
        raise ValueError(f"round {payload['round']!r} in a file named round {number}")
    expected = sizes[number] if number < len(sizes) else 1
    if len(seeds) != expected or seeds != [int(s) for s in rounds[-1]["kept"]]:
        raise ValueError(f"{len(seeds)} survivors where round {number} keeps {expected}")
    population = Population([build(seed) for seed in seeds], seeds, batched=batched)
    for kind in ("params", "buffers"):
        current: dict[str, torch.Tensor] = getattr(population, kind)
        saved: dict[str, torch.Tensor] = payload[kind]
        if set(saved) != set(current):
            raise ValueError(f"{kind} {sorted(saved)} where the model has {sorted(current)}")
        for name, tensor in current.items():
            value = saved[name]
            if value.shape != tensor.shape or value.dtype != tensor.dtype:
                raise ValueError(
                    f"{name} is {tuple(value.shape)} {value.dtype}, expected "
                    f"{tuple(tensor.shape)} {tensor.dtype}"
                )
            value = value.to(tensor.device).clone()
            current[name] = value.requires_grad_(True) if kind == "params" else value
    optimizer = make_optimizer(list(population.params.values()))
    optimizer.load_state_dict(payload["optimizer"])
    batches = make_batches(
        population.template, config.data_order, config.data_seed, len(seeds), payload["batches"]
    )
    rng = payload["rng"]
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8:
        raise ValueError("the RNG state is not a byte tensor")
    result = HalvingResult(rounds=rounds)
    torch.set_rng_state(rng)
    return _Run(population, optimizer, batches, result)


def successive_halving(
    build: Callable[[int], ProblemInstance],
    init_seeds: Sequence[int],
    optimizer: str,
    hyperparameters: dict[str, Any],
    config: HalvingConfig,
    *,
    on_round: Callable[[dict[str, list[Any]]], None] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_key: str | None = None,
    batched: bool | None = None,
) -> tuple[HalvingResult, Population]:
    """Train a population from ``init_seeds`` and halve it until one member is left.

    Args:
        build: the problem instance of an init seed.
        init_seeds: one per member (``config.members`` of them).
        optimizer: an elementwise registry name; ``hyperparameters`` its settings.
        config: the halving schedule (and ``cuda_graph``).
        on_round: called with each round's record (after its checkpoint is written).
        checkpoint_dir: where to checkpoint each round and resume from (module docstring);
            None: no checkpoints.
        checkpoint_key: what ``build`` builds, named by the caller (e.g. a hash of the
            problem, instance seed and data): ``build`` itself cannot be compared, so a
            checkpoint of another problem with same-shaped models is told apart only by
            this key (the CLI passes its record's config key).
        batched: the :class:`Population` path (None: automatic).
    """
    if len(init_seeds) != config.members:
        raise PopulationError(
            f"members is {config.members} but {len(init_seeds)} init seeds were given"
        )
    entry = optim.spec(optimizer)
    if not entry.elementwise or entry.requires_closure:
        elementwise = ", ".join(n for n in optim.names() if optim.spec(n).elementwise)
        raise PopulationError(
            f"{optimizer} cannot be vectorised over a population (it is not elementwise); "
            f"elementwise optimizers: {elementwise}"
        )

    def make_optimizer(params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return population_optimizer(
            optimizer, params, hyperparameters, capturable=config.cuda_graph
        )

    identity = _identity(optimizer, hyperparameters, config, init_seeds)
    identity["checkpoint_key"] = checkpoint_key
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    run = None
    if folder is not None:

        def restore(payload: Any, number: int) -> _Run:
            return _restore(payload, number, identity, build, make_optimizer, config, batched)

        run = load_latest(folder, restore)
    if run is None:
        population = Population([build(seed) for seed in init_seeds], init_seeds, batched=batched)
        run = _Run(
            population,
            make_optimizer(list(population.params.values())),
            make_batches(population.template, config.data_order, config.data_seed, len(init_seeds)),
            HalvingResult(),
        )
    population, opt, batches, result = run.population, run.optimizer, run.batches, run.result
    validation = population.template.data.validation if population.template.data else None
    graphed = GraphedStep(population, opt) if config.cuda_graph else None

    def train(steps: int) -> None:
        per_member = isinstance(batches, MemberBatches)
        for _ in range(steps):
            batch = next(batches)
            if graphed is not None:
                graphed.step(batch)
            else:
                population.step(opt, batch, per_member=per_member)

    while len(population) > 1:
        train(config.steps_per_round)
        losses = population.evaluate(validation)
        record = {"seeds": list(population.seeds), "val_loss": losses.tolist()}
        kept = survivors(losses, config.reduce_factor)
        record["kept"] = [population.seeds[i] for i in kept]
        result.rounds.append(record)
        population.keep(kept, opt)
        if isinstance(batches, MemberBatches):
            batches.keep(kept)
        if graphed is not None:
            graphed = GraphedStep(population, opt)  # new tensors: capture again
        if folder is not None:
            try:
                save_checkpoint(folder, len(result.rounds), _checkpoint_payload(run, identity))
            except OSError as error:  # a lost checkpoint costs a re-run, not this run
                warnings.warn(
                    f"could not write a halving checkpoint in {folder}: {error}",
                    CheckpointWarning,
                    stacklevel=2,
                )
        if on_round is not None:
            on_round(record)
    if config.final_steps:
        train(config.final_steps)
    result.winner_seed = population.seeds[0]
    result.final_val_loss = float(population.evaluate(validation)[0])
    test = population.template.data.test if population.template.data else None
    result.test_loss = float(population.evaluate(test)[0])
    return result, population
