"""Runs of the bench trained together: one population for the runs of a :class:`Group`.

A :class:`Group` is the runs of one problem x optimizer that may train as ONE stacked
population (:mod:`optlab.train.population.members`), of one of two kinds:

- **a learning-rate grid** (``"lr"``): tuning trials that differ only in their lr. Members
  share the tuning init and batches; the optimizer takes a 1-D ``lr``
  (:func:`optlab.bench.population_tuning.train_lr_sweep`). Switch: ``[tuning] population``.
- **the reported seeds** (``"seeds"``): reported runs that differ only in their init seed and
  data-order seed. Member i starts from the parameters init seed i gives a lone run and draws
  its own batches from data-order seed i (:class:`~optlab.train.population.MemberBatches`);
  all share the tuned lr, so the optimizer is the registry's own class over the stacked
  tensors (an elementwise rule over stacked tensors is exactly N independent optimizers: the
  contract kit's ``population`` check). Switch: the suite's top-level ``population``.

Either way each member is stored under its lone run's key with the lone run's result fields,
plus ``path = "population"`` and ``population`` (the number of members); a group trains as a
population only where its mode says so (``"auto"``: the model has at most
:data:`~optlab.bench.population_tuning.AUTO_MAX_PARAMETERS` parameters; ``"on"``: always;
``"off"``: never) and the optimizer can be stacked (not L-BFGS, whose step is not
elementwise and calls its closure many times). Otherwise its runs go one by one, each a task
of its own, so a process pool spreads them (:func:`population_tasks`; a net over the cap is
known from its model alone, before any data is loaded).

Numbers agree with lone runs to float rounding (a stacked forward/backward rounds a matrix
product's last bit differently; chaotic trajectories, e.g. MAMGD's secant curvature, can
amplify it). Time differs by design: a member's ``seconds`` is its share of the population's
training time (each step's time divided by the members alive in it), smaller than a lone
run's where vectorising pays; the report says which series were timed that way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from optlab import optim, problems
from optlab.bench.runs import (
    DataOptions,
    RunConfig,
    build_instance,
    execute_and_store,
    run_context,
    train_config,
)
from optlab.bench.store import ResultsStore
from optlab.problems.nets import NetBuilder
from optlab.train.core import BatchStream
from optlab.train.population import MemberBatches, Population, population_optimizer
from optlab.train.population.members import train_members
from optlab.train.population.streams import draws_per_member

GROUP_KINDS = ("lr", "seeds")
"""What a group's runs differ in: the learning rate (a tuning grid) or the seeds."""


@dataclass(frozen=True)
class Group:
    """Runs of one problem x optimizer that differ only in their lr or only in their seeds
    (module docstring): one task, trained as a population where ``population`` (a
    :data:`~optlab.bench.suite.POPULATION_MODES` value) says so, else run by run."""

    configs: tuple[RunConfig, ...]
    population: str = "auto"

    @property
    def kind(self) -> str:
        """``"lr"`` or ``"seeds"`` (:func:`group_kind`)."""
        return group_kind(self.configs)


def _without_lr(config: RunConfig) -> RunConfig:
    fixed = {k: v for k, v in config.hyperparameters.items() if k != "lr"}
    return replace(config, hyperparameters=fixed)


def group_kind(configs: Sequence[RunConfig]) -> str:
    """``"lr"`` when ``configs`` differ at most in their lr, ``"seeds"`` when they differ
    only in their init and data-order seeds; :class:`ValueError` for anything else."""
    first = configs[0]
    if all(_without_lr(c) == _without_lr(first) for c in configs):
        return "lr"
    seeds = {"init_seed": first.init_seed, "data_seed": first.data_seed}
    if all(replace(c, **seeds) == first for c in configs):
        return "seeds"
    raise ValueError("a group's runs must differ only in their lr, or only in their seeds")


def stacks(optimizer: str) -> bool:
    """Whether the registry optimizer steps stacked members as independent optimizers:
    elementwise, and one gradient per step (not L-BFGS)."""
    entry = optim.spec(optimizer)
    return entry.elementwise and not entry.requires_closure


def can_train_together(group: Group) -> bool:
    """Whether ``group`` may train as a population at all (its mode aside from ``auto``'s
    size rule): mode not ``off``, and the optimizer takes the group's form (per-member
    learning rates for a grid; stacked parameters for seeds)."""
    from optlab.bench import population_tuning

    first = group.configs[0]
    if group.population == "off":
        return False
    if group.kind == "lr":
        fixed = _without_lr(first).hyperparameters
        return population_tuning.can_vectorise(first.optimizer, fixed)
    return stacks(first.optimizer)


def execute_population(
    configs: Sequence[RunConfig], data: DataOptions, mode: str
) -> list[dict[str, Any]] | None:
    """The results of ``configs`` (a group's runs) trained as one population, or None where
    ``mode`` says it does not pay, there are fewer than 2 runs, or the optimizer cannot be
    stacked (then they run one by one)."""
    from optlab.bench import population_tuning

    group = Group(tuple(configs), mode)
    first = configs[0]
    if len(configs) < 2 or not can_train_together(group):
        return None
    if group.kind == "lr" and first.purpose != "tune":
        return None
    varied = (
        f"lrs {[c.hyperparameters['lr'] for c in configs]} (seed {first.init_seed})"
        if group.kind == "lr"
        else f"seeds {[c.init_seed for c in configs]}"
    )
    what = f"population of {first.problem} / {first.optimizer} {first.hyperparameters} {varied}"
    with run_context(what):
        instance = build_instance(first, data)
        if not population_tuning.pays(mode, instance):
            return None
        settings = train_config(first, instance)
        if group.kind == "lr":
            lrs = [float(config.hyperparameters["lr"]) for config in configs]
            fixed = _without_lr(first).hyperparameters
            return population_tuning.train_lr_sweep(instance, first.optimizer, fixed, lrs, settings)
        models = [instance.model] + [build_instance(c, data).model for c in configs[1:]]
        population = Population(
            [replace(instance, model=model) for model in models], list(range(len(configs)))
        )
        optimizer = population_optimizer(
            first.optimizer, list(population.params.values()), dict(first.hyperparameters)
        )
        data_seeds = [config.data_seed for config in configs]
        batches = (
            MemberBatches(instance, data_seeds)
            if draws_per_member(instance, "per-member")
            else BatchStream(instance, first.data_seed)
        )
        results = train_members(instance, population, optimizer, batches, settings)
        return population_tuning.member_records(instance, results)


def execute_group_and_store(store_root: str, group: Group, data: DataOptions) -> int:
    """Run the runs of ``group`` not stored yet (as a population where it pays), store each;
    return how many ran (pool-friendly)."""
    store = ResultsStore(store_root)
    todo = [config for config in group.configs if not store.has("runs", config.key)]
    results = execute_population(todo, data, group.population) if todo else None
    if results is None:
        for config in todo:
            execute_and_store(store_root, config, data)
    else:
        for config, result in zip(todo, results, strict=True):
            store.put("runs", config.as_dict(), result)
    return len(todo)


def too_big_for_auto(group: Group) -> bool:
    """Whether ``auto`` will train ``group``'s runs one by one for its model's size: a net
    with more than :data:`~optlab.bench.population_tuning.AUTO_MAX_PARAMETERS` parameters
    (counted on its model alone; analytic and convex models have at most a few thousand)."""
    from optlab.bench.population_tuning import within_auto_cap

    build = problems.spec(group.configs[0].problem).build
    return (
        group.population == "auto"
        and isinstance(build, NetBuilder)
        and not within_auto_cap(build.parameter_count())
    )


def task_configs(task: RunConfig | Group) -> tuple[RunConfig, ...]:
    """The runs of a task: a group's, or the one run."""
    return task.configs if isinstance(task, Group) else (task,)


def population_tasks(groups: Iterable[Group]) -> list[RunConfig | Group]:
    """Groups that will train as populations stay whole; the others (L-BFGS, mode ``off``,
    a twin refusing a fixed hyperparameter, a net too big for ``auto``) become one task per
    run, so a pool spreads them."""
    tasks: list[RunConfig | Group] = []
    for group in groups:
        if len(group.configs) > 1 and can_train_together(group) and not too_big_for_auto(group):
            tasks.append(group)
        else:
            tasks.extend(group.configs)
    return tasks
