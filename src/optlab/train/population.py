"""Many models in one process: a stacked population and successive halving (in-process core).

A :class:`Population` holds N copies of a problem's model, built from N init seeds, as ONE
set of tensors stacked along a leading population axis (``torch.func.stack_module_state``).
Its loss runs the problem's own loss for every member at once under ``torch.func.vmap`` of
``torch.func.functional_call``, and ONE optimizer steps the stacked tensors: for an
elementwise rule that is exactly N independent optimizers (the contract kit's
``population`` check proves it for every elementwise registry entry; rules with per-tensor
reductions, such as L-BFGS, are refused).

:func:`successive_halving` trains all members for ``steps_per_round`` steps, evaluates each
on the validation split, keeps the best ``ceil(N x reduce_factor)`` (lowest validation loss;
a diverged member ranks last) by slicing the survivors out of the parameters AND the
optimizer state, nothing restarted, and repeats while more than one member is left; the
last one then trains for ``final_steps`` more steps.

Members share each mini-batch (the same data order, seeded by ``data_seed``), so member i
follows exactly the trajectory a lone model from init seed i would.

Per-member learning rates: pass ``lr`` as a 1-D tensor (one per member) to optlab's
elementwise rules, or to torch's baselines through their twins (:func:`population_optimizer`).

Not here yet (see the population issue): seed-aware reporting, the bench tuner on
populations, a report section, and the Ray path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.func import functional_call, stack_module_state, vmap

from optlab import optim
from optlab.errors import OptlabError
from optlab.optim.twins import TWINS
from optlab.problems.base import Batch, ProblemInstance
from optlab.train.loop import EVAL_CHUNK, minibatches


class PopulationError(OptlabError):
    """Invalid population settings, or an optimizer that cannot be vectorised."""


class _LossOf(torch.nn.Module):
    """Wraps a problem's model and loss so that ``functional_call`` swaps every parameter the
    loss touches (a penalty reading ``model.weight`` included)."""

    def __init__(self, instance: ProblemInstance) -> None:
        super().__init__()
        self.model = instance.model
        self._loss = instance.loss

    def forward(self, batch: Batch | None) -> torch.Tensor:
        return self._loss(self.model, batch)


class Population:
    """N models stacked along a leading axis (see the module docstring)."""

    def __init__(self, instances: Sequence[ProblemInstance], seeds: Sequence[int]) -> None:
        if len(instances) < 1:
            raise PopulationError("a population needs at least 1 member")
        if len(instances) != len(seeds):
            raise PopulationError("one init seed per member is needed")
        self.template = instances[0]
        self.seeds = list(seeds)
        params, buffers = stack_module_state([instance.model for instance in instances])
        self.params = {f"model.{name}": tensor for name, tensor in params.items()}
        self.buffers = {f"model.{name}": tensor for name, tensor in buffers.items()}
        self._module = _LossOf(self.template)

    def __len__(self) -> int:
        return len(self.seeds)

    def losses(self, batch: Batch | None) -> torch.Tensor:
        """Each member's loss on ``batch`` (shape ``[N]``)."""

        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]):
            return functional_call(self._module, (params, buffers), (batch,))

        return vmap(one)(self.params, self.buffers)

    @torch.no_grad()
    def evaluate(self, split: Batch | None) -> torch.Tensor:
        """Each member's mean loss on a split (None: the analytic objective)."""
        if split is None:
            return self.losses(None).detach()
        inputs, targets = split
        total = torch.zeros(len(self), dtype=torch.float64)
        for start in range(0, len(inputs), EVAL_CHUNK):
            chunk = (inputs[start : start + EVAL_CHUNK], targets[start : start + EVAL_CHUNK])
            total += self.losses(chunk).double() * len(chunk[0])
        return total / len(inputs)

    def keep(self, members: Sequence[int], optimizer: torch.optim.Optimizer) -> None:
        """Keep only ``members`` (indices into the current population), in the parameters
        and in ``optimizer``'s state, which survivors carry over unchanged."""
        index = torch.as_tensor(list(members), dtype=torch.long)
        size = len(self)
        replacements: dict[int, torch.Tensor] = {}
        for name, old in list(self.params.items()):
            new = old.detach()[index].clone().requires_grad_(True)
            self.params[name] = new
            replacements[id(old)] = new
        for name, buffer in list(self.buffers.items()):
            self.buffers[name] = buffer[index].clone()
        new_state: dict[torch.Tensor, dict[str, Any]] = {}
        for old, state in optimizer.state.items():
            new = replacements.get(id(old))
            if new is None:
                continue
            new_state[new] = {
                key: value[index].clone()
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == size
                else value
                for key, value in state.items()
            }
        for group in optimizer.param_groups:
            group["params"] = [replacements.get(id(param), param) for param in group["params"]]
        optimizer.state.clear()
        optimizer.state.update(new_state)
        self.seeds = [self.seeds[i] for i in members]


@dataclass(frozen=True)
class HalvingConfig:
    """Successive halving: ``members`` models, keep ``ceil(n x reduce_factor)`` per round.

    Attributes:
        members: population size N (>= 1).
        reduce_factor: fraction kept each round, in (0, 1).
        steps_per_round: optimizer steps between eliminations (>= 1).
        final_steps: steps the last survivor trains on afterwards (>= 0).
        data_seed: seeds the shared mini-batch order.
    """

    members: int = 16
    reduce_factor: float = 0.5
    steps_per_round: int = 100
    final_steps: int = 0
    data_seed: int = 42

    def __post_init__(self) -> None:
        def integer(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise PopulationError(f"{name} must be an integer >= {low}, got {value!r}")

        integer("members", 1)
        integer("steps_per_round", 1)
        integer("final_steps", 0)
        factor = self.reduce_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise PopulationError(f"reduce_factor must be in (0, 1), got {factor!r}")


@dataclass
class HalvingResult:
    """What a halving run did: per round, who was alive, their validation losses, who stayed."""

    rounds: list[dict[str, list[Any]]] = field(default_factory=list)
    winner_seed: int | None = None
    final_val_loss: float = math.nan
    test_loss: float = math.nan


def survivors(losses: torch.Tensor, reduce_factor: float) -> list[int]:
    """Indices of the best ``ceil(n x reduce_factor)`` members (NaN ranks last), best first."""
    count = max(1, math.ceil(len(losses) * reduce_factor))
    ranked = torch.where(torch.isnan(losses), torch.inf, losses)
    order = sorted(range(len(losses)), key=lambda i: (float(ranked[i]), i))
    return order[:count]


def population_optimizer(
    name: str, params: list[torch.Tensor], hyperparameters: dict[str, Any]
) -> torch.optim.Optimizer:
    """The registry optimizer ``name`` over stacked parameters; with per-member learning
    rates (a 1-D ``lr`` tensor) torch's baselines become their elementwise twins
    (``optlab.optim.twins``), which accept them."""
    lr = hyperparameters.get("lr")
    if isinstance(lr, torch.Tensor) and lr.numel() > 1 and name in TWINS:
        twin, fixed = TWINS[name]
        optim.spec(name).validate({k: v for k, v in hyperparameters.items() if k != "lr"})
        return twin(params, **{**fixed, **hyperparameters})
    return optim.create(name, params, **hyperparameters)


def _batches(instance: ProblemInstance, seed: int) -> Iterator[Batch | None]:
    if instance.data is None:
        while True:
            yield None
    yield from minibatches(instance.data.train, instance.batch_size, seed)


def successive_halving(
    build: Callable[[int], ProblemInstance],
    init_seeds: Sequence[int],
    optimizer: str,
    hyperparameters: dict[str, Any],
    config: HalvingConfig,
    *,
    on_round: Callable[[dict[str, list[Any]]], None] | None = None,
) -> tuple[HalvingResult, Population]:
    """Train a population from ``init_seeds`` and halve it until one member is left."""
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
    population = Population([build(seed) for seed in init_seeds], init_seeds)
    opt = population_optimizer(optimizer, list(population.params.values()), hyperparameters)
    batches = _batches(population.template, config.data_seed)
    validation = population.template.data.validation if population.template.data else None
    result = HalvingResult()

    def train(steps: int) -> None:
        for _ in range(steps):
            batch = next(batches)
            opt.zero_grad(set_to_none=True)
            population.losses(batch).sum().backward()
            opt.step()

    while len(population) > 1:
        train(config.steps_per_round)
        losses = population.evaluate(validation)
        record = {"seeds": list(population.seeds), "val_loss": losses.tolist()}
        kept = survivors(losses, config.reduce_factor)
        record["kept"] = [population.seeds[i] for i in kept]
        result.rounds.append(record)
        population.keep(kept, opt)
        if on_round is not None:
            on_round(record)
    if config.final_steps:
        train(config.final_steps)
    result.winner_seed = population.seeds[0]
    result.final_val_loss = float(population.evaluate(validation)[0])
    test = population.template.data.test if population.template.data else None
    result.test_loss = float(population.evaluate(test)[0])
    return result, population


@dataclass
class SeedStudy:
    """Seed-aware halving: is the winner better, or just lucky?

    Per repeat (a fresh block of N init seeds and a fresh selection data order):
    ``winner`` is the halving winner retrained alone with a *fresh* data-order seed,
    ``default`` the default init seed trained with that same fresh data order, and
    ``median`` the median over all N inits trained without elimination (selection data
    order). Each value is the number of steps to reach the problem's validation target
    (``inf`` when never reached within the budget).
    """

    winner: list[float] = field(default_factory=list)
    default: list[float] = field(default_factory=list)
    median: list[float] = field(default_factory=list)
    winner_seeds: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Mean and std of each arm over the repeats, and the winner's relative saving in
        steps against the default seed (the seeds' "14.3% faster" is this number)."""

        def mean_std(values: list[float]) -> tuple[float, float]:
            finite = torch.tensor(values, dtype=torch.float64)
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


def steps_to_target(
    population: Population,
    optimizer: torch.optim.Optimizer,
    steps: int,
    eval_every: int,
    data_seed: int,
) -> list[float]:
    """Train every member for ``steps`` steps; each member's first evaluated step at which
    its validation loss reached the problem's target (``inf`` if never)."""
    template = population.template
    batches = _batches(template, data_seed)
    validation = template.data.validation if template.data else None
    reached = [math.inf] * len(population)
    for step in range(1, steps + 1):
        batch = next(batches)
        optimizer.zero_grad(set_to_none=True)
        population.losses(batch).sum().backward()
        optimizer.step()
        if step % eval_every == 0 or step == steps:
            losses = population.evaluate(validation)
            for member, value in enumerate(losses.tolist()):
                if value <= template.target and math.isinf(reached[member]):
                    reached[member] = float(step)
    return reached


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
) -> SeedStudy:
    """Measure halving honestly (see :class:`SeedStudy`); ``steps`` is each arm's budget."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise PopulationError(f"repeats must be an integer >= 1, got {repeats!r}")
    study = SeedStudy()
    for repeat in range(repeats):
        seeds = [1000 + repeat * config.members + i for i in range(config.members)]
        selection_seed, fresh_seed = 10_000 + repeat, 20_000 + repeat
        halving = HalvingConfig(
            members=config.members,
            reduce_factor=config.reduce_factor,
            steps_per_round=config.steps_per_round,
            data_seed=selection_seed,
        )
        result, _ = successive_halving(build, seeds, optimizer, hyperparameters, halving)
        everyone = Population([build(seed) for seed in seeds], seeds)
        all_steps = steps_to_target(
            everyone,
            population_optimizer(optimizer, list(everyone.params.values()), hyperparameters),
            steps,
            eval_every,
            selection_seed,
        )
        pair = Population([build(result.winner_seed), build(default_seed)], [0, 1])
        winner, default = steps_to_target(
            pair,
            population_optimizer(optimizer, list(pair.params.values()), hyperparameters),
            steps,
            eval_every,
            fresh_seed,
        )
        study.winner.append(winner)
        study.default.append(default)
        study.median.append(float(torch.tensor(all_steps).median()))
        study.winner_seeds.append(int(result.winner_seed))
    return study
