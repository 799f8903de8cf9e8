"""``optlab multi-init`` as a library: successive halving of N initialisations, stored.

:func:`prepare` validates a :class:`MultiInitRequest` (every check before any work: seeds,
epochs, backend, the seed study's settings, the problem, an elementwise optimizer, its
hyperparameters), builds the problem once (missing data fails here) and fixes the record's
config. :func:`run_halving` trains (in this process, resumable from
``OUT/halving/<key>.partial``, or on Ray under ASHA) and stores the record under
``OUT/halving``; :func:`reuse_halving` finds it there. :func:`run_seed_study` and
:func:`reuse_seed_study` do the same for the seed study (winner against the default seed and
the median of N). :func:`round_rows` and :func:`study_sentence` state the results for
people. The command line only parses, shows progress and prints.

Record keys: the record config is the one the command has always stored (``data_order``
only when it is not ``shared`` and ``backend`` only for Ray, so older records keep their
keys); a re-run reuses what is stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optlab import optim, problems
from optlab.bench.ray_backend import check_backend
from optlab.bench.store import ResultsStore, config_key
from optlab.errors import OptlabError
from optlab.problems.base import ProblemInstance
from optlab.train import population
from optlab.train.population import HalvingConfig, remove_checkpoints


@dataclass(frozen=True)
class MultiInitRequest:
    """What ``optlab multi-init`` asks for (its options, unvalidated).

    Attributes:
        problem: a registry problem name.
        optimizer: an elementwise registry optimizer.
        num_models: initialisations trained at once (N).
        reduce_factor: fraction kept per round.
        steps_per_round: steps between eliminations.
        epochs: epochs the survivor trains afterwards.
        lr: learning rate (None: the optimizer's default).
        seed: the first init seed (then seed + 1, ...) and the data-order seed.
        data_order: ``shared`` or ``per-member``.
        data_dir: where MNIST/CIFAR live (None: the default).
        download: download missing data sets.
        backend: ``local`` (exact halving) or ``ray`` (ASHA).
        address: with ``ray``: ``auto`` or ``HOST:PORT`` (None: a local Ray).
        seed_study: also measure the winner against the default seed and the median of N.
        repeats: seed-study repeats.
        study_steps: seed-study budget per arm (None: the problem's).
    """

    problem: str
    optimizer: str = "adam"
    num_models: int = 16
    reduce_factor: float = 0.5
    steps_per_round: int = 100
    epochs: float = 1.0
    lr: float | None = None
    seed: int = 42
    data_order: str = "shared"
    data_dir: Path | None = None
    download: bool = False
    backend: str = "local"
    address: str | None = None
    seed_study: bool = False
    repeats: int = 3
    study_steps: int | None = None


@dataclass
class MultiInit:
    """A validated request: its problem built once, its halving schedule and record config.

    Attributes:
        request: what was asked for.
        template: the problem instance of the default seeds (its target, its data).
        config: the halving schedule.
        hyperparameters: the optimizer's settings (``lr`` when given).
        seeds: the init seeds, ``seed ... seed + N - 1``.
        instance_seed: the problem's instance seed.
        record_config: the stored record's config (its key names the run).
    """

    request: MultiInitRequest
    template: ProblemInstance
    config: HalvingConfig
    hyperparameters: dict[str, Any]
    seeds: list[int]
    instance_seed: int
    record_config: dict[str, Any]

    @property
    def key(self) -> str:
        """The halving record's key."""
        return config_key(self.record_config)

    def partial(self, store: ResultsStore) -> Path:
        """The folder of this run's halving checkpoints in ``store``."""
        return store.root / "halving" / f"{self.key}.partial"

    def build(self, init_seed: int) -> ProblemInstance:
        """The problem instance of an init seed (the halving's and the seed study's)."""
        request = self.request
        context = problems.BuildContext(
            init_seed=init_seed, data_dir=request.data_dir, download=request.download
        )
        return problems.build(request.problem, context)


def prepare(request: MultiInitRequest) -> MultiInit:
    """Validate ``request`` (an :class:`OptlabError`, ``ValueError`` or registry error naming
    the option, before any training) and build what the run needs."""
    seed, members = request.seed, request.num_models
    if not 0 <= seed <= 2**63 - 1 - max(members, 0):
        raise OptlabError(f"--seed must be in [0, 2**63 - 1 - N], got {seed}")
    if not (request.epochs >= 0 and math.isfinite(request.epochs)):
        raise OptlabError(f"--epochs must be >= 0, got {request.epochs}")
    check_backend(request.backend, request.address)
    repeats, study_steps = request.repeats, request.study_steps
    if request.seed_study and (repeats < 1 or (study_steps is not None and study_steps < 1)):
        raise OptlabError(
            f"--repeats and --study-steps must be >= 1, got {repeats} and {study_steps}"
        )
    problems.spec(request.problem)
    entry = optim.spec(request.optimizer)
    if not entry.elementwise or entry.requires_closure:
        elementwise = ", ".join(n for n in optim.names() if optim.spec(n).elementwise)
        raise OptlabError(
            f"--optimizer {request.optimizer} cannot be vectorised over a population (it is "
            f"not elementwise); elementwise optimizers: {elementwise}"
        )
    context = problems.BuildContext(data_dir=request.data_dir, download=request.download)
    template = problems.build(request.problem, context)  # fails early on missing data
    rows = len(template.data.train[0]) if template.data else 1
    per_epoch = math.ceil(rows / template.batch_size) if template.batch_size else 1
    config = HalvingConfig(
        members=members,
        reduce_factor=request.reduce_factor,
        steps_per_round=request.steps_per_round,
        final_steps=round(request.epochs * per_epoch),
        data_seed=seed,
        data_order=request.data_order,
    )
    hyperparameters = {} if request.lr is None else {"lr": request.lr}
    entry.validate(hyperparameters)  # e.g. --lr nan, named, before any work
    seeds = list(range(seed, seed + members))
    record_config = {
        "problem": request.problem,
        "optimizer": request.optimizer,
        "hyperparameters": hyperparameters,
        "members": members,
        "reduce_factor": request.reduce_factor,
        "steps_per_round": request.steps_per_round,
        "final_steps": config.final_steps,
        "init_seeds": seeds,
        "data_seed": seed,
        "instance_seed": context.instance_seed,
        "data": problems.data_fingerprint(request.problem, request.data_dir),
    }
    if request.data_order != "shared":  # (absent when shared: older records keep their keys)
        record_config["data_order"] = request.data_order
    if request.backend == "ray":  # ASHA's survivors are not the exact rule's: its own record
        record_config["backend"] = "ray"
    return MultiInit(
        request, template, config, hyperparameters, seeds, context.instance_seed, record_config
    )


def reuse_halving(run: MultiInit, store: ResultsStore) -> dict[str, Any] | None:
    """The stored halving record of ``run``, or None; a stored record's leftover checkpoints
    (a run killed after storing it) are removed."""
    stored = store.get("halving", run.key)
    if stored is not None:
        remove_checkpoints(run.partial(store))
    return stored


def run_halving(
    run: MultiInit,
    store: ResultsStore,
    *,
    on_round: Callable[[dict[str, list[Any]]], None] | None = None,
) -> dict[str, Any]:
    """Train the halving of ``run`` (``on_round`` after each local round), store its record
    and return it; the local path resumes from, then removes, its checkpoints."""
    request = run.request
    if request.backend == "ray":
        from optlab.bench.ray_backend import successive_halving_on_ray
        from optlab.bench.runs import DataOptions

        data_dir = str(request.data_dir) if request.data_dir else None
        result = successive_halving_on_ray(
            request.problem,
            request.optimizer,
            run.hyperparameters,
            run.config,
            run.seeds,
            instance_seed=run.instance_seed,
            data=DataOptions(data_dir, request.download),
            address=request.address,
        )
        return store.put("halving", run.record_config, result)
    partial = run.partial(store)
    halving, _ = population.successive_halving(
        run.build, run.seeds, request.optimizer, run.hyperparameters, run.config,
        on_round=on_round, checkpoint_dir=partial, checkpoint_key=run.key,
    )  # fmt: skip
    stored = store.put(
        "halving",
        run.record_config,
        {
            "rounds": halving.rounds,
            "winner_seed": halving.winner_seed,
            "final_val_loss": halving.final_val_loss,
            "test_loss": halving.test_loss,
        },
    )
    remove_checkpoints(partial)
    return stored


def round_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Per round of a halving record's result: round, alive, best and median validation
    loss (diverged members left out), kept seeds, as text."""
    rows = []
    for number, record in enumerate(result["rounds"], start=1):
        losses = sorted(v for v in record["val_loss"] if v == v)
        median = losses[len(losses) // 2] if losses else math.nan
        rows.append(
            (str(number), str(len(record["seeds"])), f"{min(losses, default=math.nan):.4g}",
             f"{median:.4g}", ", ".join(map(str, record["kept"])))
        )  # fmt: skip
    return rows


def study_config(run: MultiInit) -> dict[str, Any]:
    """The seed-study record's config (the halving's, less its own budget and seeds)."""
    request = run.request
    budget = problems.spec(request.problem).steps
    budget = budget if request.study_steps is None else request.study_steps
    excluded = ("final_steps", "init_seeds")
    return {
        **{k: v for k, v in run.record_config.items() if k not in excluded},
        "study": "seed-study",
        "repeats": request.repeats,
        "steps": budget,
        "eval_every": max(1, budget // 60),
        "default_seed": request.seed,
        "first_seed": request.seed + request.num_models,
    }


def reuse_seed_study(run: MultiInit, store: ResultsStore) -> dict[str, Any] | None:
    """The stored seed-study record of ``run``, or None."""
    return store.get("halving", config_key(study_config(run)))


def run_seed_study(
    run: MultiInit, store: ResultsStore, *, on_repeat: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Measure the seed study of ``run`` (``on_repeat`` after each repeat), store its record
    and return it."""
    request, config = run.request, study_config(run)
    measured = population.seed_study(
        run.build, request.optimizer, run.hyperparameters, run.config, steps=config["steps"],
        eval_every=config["eval_every"], repeats=request.repeats, default_seed=request.seed,
        first_seed=config["first_seed"], on_repeat=on_repeat,
    )  # fmt: skip
    return store.put("halving", config, measured.as_record())


def study_sentence(run: MultiInit, result: dict[str, Any]) -> str:
    """A seed-study record's result in one sentence: each arm's steps to the target (mean
    and std, or in how many repeats it reached it) and the winner's saving."""
    summary, members = result["summary"], run.request.num_models
    arms = []
    for arm, label in (("winner", "winner"), ("default", "default seed"),
                       ("median", f"median of {members}")):  # fmt: skip
        reached = sum(1 for value in result[arm] if math.isfinite(value))
        if reached == len(result[arm]):
            arms.append(f"{label} {summary[arm + '_mean']:.1f} ± {summary[arm + '_std']:.1f}")
        else:
            arms.append(f"{label} reached it in {reached} of {len(result[arm])} repeats")
    saving = summary["saving_vs_default_mean"]
    config = study_config(run)
    return (
        f"steps to the validation target {run.template.target:g} within {config['steps']} "
        f"steps, over {config['repeats']} repeats: "
        + ", ".join(arms)
        + (
            f"; the winner saves {saving:.1%} ± {summary['saving_vs_default_std']:.1%} "
            "against the default seed"
            if math.isfinite(saving)
            else "; no saving to state (an arm missed the target; raise --study-steps)"
        )
    )
