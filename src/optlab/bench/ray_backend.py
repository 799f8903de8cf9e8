"""The Ray backend (extra ``ray``): the same bench grids and the same halving on a Ray cluster.

``optlab bench --backend ray [--address auto|HOST:PORT]`` and ``optlab multi-init --backend
ray`` run their work as Ray Tune trials; without ``--address`` a local Ray is started with
``--workers`` CPUs (and shut down afterwards), ``auto`` joins the cluster this machine belongs
to, ``HOST:PORT`` (or ``ray://HOST:PORT``) a given head node. Ray is imported only here and
only when asked for: the local path needs no Ray installed; without it, ``--backend ray``
fails with one line naming ``pip install 'optlab[ray]'``.

The bench (:func:`run_suite_on_ray`): :func:`optlab.bench.runner.run_suite` itself, with its
runs sent to Ray instead of a process pool: each task is one Ray Tune trial (a function
trainable with one CPU; a grid that trains as a population, :mod:`optlab.bench.population_tuning`,
is one trial, every other run one trial). A trial reports each finished run back to the
driver, which writes it into the results store the moment it arrives, under the same key the
local path uses; so a local re-run reuses what Ray ran and a Ray re-run reuses what ran
locally, and a killed driver keeps every run already written. Tuning records, their keys and
the learning rates chosen are the local path's. The trials must find the data where the
driver's ``--data-dir`` says (a shared path on a cluster); nothing else is shared: the store
stays on the driver, Ray Tune's own files go to a temporary folder that is removed afterwards.
TPE tuning asks for one trial at a time (a Tuner each): prefer the grid sampler on Ray.

The halving (:func:`successive_halving_on_ray`): one Ray Tune trial per init seed, each a lone
model from that seed trained on the shared data order (``data_seed``), reporting its
validation loss after every round of ``steps_per_round`` steps (Tune's ``training_iteration``
is the round). Ray Tune's ``ASHAScheduler`` (``time_attr="training_iteration"``,
``metric="val_loss"``, ``mode="min"``, ``reduction_factor = 1 / reduce_factor``, i.e. 2 for
the default 0.5, ``grace_period=1``, ``max_t`` = the rounds the in-process rule needs to get
down to one member) decides which trials stop; optlab writes no scheduler of its own.

What Ray's halving keeps, and what it does not: the members (the same init seeds), their data
order, the round length, the reduction factor, and the winner rule at the end (the lowest
validation loss among the members that trained longest; ties to the smaller seed); the winner
is then retrained, in the driver, from its seed for all its rounds plus ``final_steps`` and
evaluated on the validation and test splits. ASHA is asynchronous: a trial reaching a rung is
compared with the trials recorded at that rung *so far* (kept if in the best
``1 / reduction_factor`` of them), not with the whole round, so the first trials to arrive
survive more easily, the number kept per rung is not exactly ``ceil(n x reduce_factor)``, and
rungs fall at rounds 1, 2, 4, ... (ASHA's geometric milestones), not after every round. The
survivors, and possibly the winner, may differ from the in-process exact rule
(:func:`optlab.train.population.successive_halving`) and from one Ray run to the next; the
exact-survivor rules hold for the in-process path only. The record says so: ``backend =
"ray"`` is part of its config (so it never stands in for an exact in-process record, nor the
reverse) and its result names the scheduler and its settings. Each round of the record lists
the members that reported it, their validation losses, and those that went on to the next
round.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from optlab import optim, problems
from optlab.bench.population_runs import Group, execute_population, task_configs
from optlab.bench.runner import Progress, SuiteOutcome, run_suite
from optlab.bench.runs import RUN_THREADS, DataOptions, RunConfig, RunError, execute
from optlab.bench.store import ResultsStore
from optlab.bench.suite import Suite
from optlab.errors import OptlabError
from optlab.problems.base import BuildContext, ProblemInstance
from optlab.train.core import BatchStream, rank, training_step
from optlab.train.loop import evaluate
from optlab.train.population import HalvingConfig, kept_count

BACKENDS = ("local", "ray")
"""Where a bench or a halving runs: in this process (or its pool), or on Ray."""

INSTALL_HINT = "pip install 'optlab[ray]'"
_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5})$")


class RayBackendError(OptlabError):
    """Ray is missing, cannot be reached, or a Ray trial failed."""


def check_backend(backend: str, address: str | None = None) -> None:
    """Validate ``--backend`` and ``--address`` (the address only goes with ``ray``)."""
    if backend not in BACKENDS:
        raise RayBackendError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None:
        if backend != "ray":
            raise RayBackendError(f"--address goes with --backend ray, got --backend {backend}")
        if not _ADDRESS.match(address):
            raise RayBackendError(
                f"--address must be auto or HOST:PORT (or ray://HOST:PORT), got {address!r}"
            )


def import_ray() -> Any:
    """The ``ray`` module with Ray Tune, or :class:`RayBackendError` naming the extra."""
    try:
        import ray
        import ray.tune  # Ray Tune is an extra of ray: check it too
    except ImportError as error:
        raise RayBackendError(
            f"the ray backend needs Ray Tune, which is not installed: {INSTALL_HINT}"
        ) from error
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Make sure Ray is initialised; return True when this call started it (then the caller
    shuts it down). ``address``: None starts a local Ray with ``num_cpus`` CPUs; ``auto`` or
    ``HOST:PORT`` joins a running cluster. A Ray already initialised (by a test, a notebook)
    is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
    }
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = "start a local Ray" if address is None else f"reach Ray at --address {address}"
        raise RayBackendError(f"cannot {where}: {text}") from error
    return True


def _last_line(error: BaseException | None) -> str:
    """The last line of a Ray error (its text is a remote traceback ending in the cause)."""
    text = str(error or "").strip()
    return text.splitlines()[-1] if text else type(error).__name__


def _store_callback(tune: Any, on_report: Callable[[Any, dict[str, Any]], None]) -> Any:
    """A Ray Tune callback (runs in the driver) that hands every trial report to
    ``on_report(trial, result)``."""

    class _OnReport(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            if self.on_report is not None:
                self.on_report(trial, result)

        def __getstate__(self) -> dict[str, Any]:
            # Tune pickles its run config for a later restore; the store writer (and the
            # progress display it updates, which holds locks) stays in this driver.
            return {"on_report": None}

    callback = _OnReport()
    callback.on_report = on_report
    return callback


def _fit(
    trainable: Callable[..., None],
    param_space: dict[str, Any],
    storage: str,
    name: str,
    on_report: Callable[[Any, dict[str, Any]], None],
    scheduler: Any = None,
) -> Any:
    """Run one Ray Tune experiment (one CPU a trial) and raise on any failed trial."""
    import ray.tune as tune

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=True),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            verbose=0,
            callbacks=[_store_callback(tune, on_report)],
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    # Ray Tune's newer console output prints boxes even at verbose=0; its classic reporter
    # prints nothing there (the bench shows its own progress bars).
    quiet = "RAY_AIR_NEW_OUTPUT" not in os.environ
    if quiet:
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        results = tuner.fit()
    finally:
        if quiet:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
    if results.errors:
        raise RayBackendError(
            f"{len(results.errors)} Ray trial(s) failed; first: {_last_line(results.errors[0])}"
        )
    return results


# ---------------------------------------------------------------------------------- bench
def _bench_trial(
    config: dict[str, Any], tasks: Sequence[RunConfig | Group], data: DataOptions
) -> None:
    """A Ray Tune trial: run one task, report each finished run (config and result, JSON)."""
    import ray.tune as tune

    task = tasks[config["index"]]
    configs = list(task_configs(task))
    results = None
    if isinstance(task, Group):
        results = execute_population(configs, data, task.population)
    if results is not None:
        records = [[c.as_dict(), r] for c, r in zip(configs, results, strict=True)]
        tune.report({"records": json.dumps(records)})
        return
    for run in configs:
        tune.report({"records": json.dumps([[run.as_dict(), execute(run, data)]])})


class RayExecutor:
    """Runs the bench's tasks as Ray Tune trials and stores their runs in the driver (the
    interface of the runner's in-process/pool executor)."""

    def __init__(
        self,
        store: ResultsStore,
        data: DataOptions,
        address: str | None = None,
        workers: int | None = None,
    ) -> None:
        self.store, self.data = store, data
        self.started = connect(address, workers)
        self.storage = tempfile.mkdtemp(prefix="optlab-ray-")
        self.experiments = 0

    def run(
        self,
        tasks: Iterable[RunConfig | Group],
        outcome: SuiteOutcome,
        progress: Progress,
        stage: str,
    ) -> None:
        """Run every task's runs not stored yet, one Ray trial a task."""
        todo: list[RunConfig | Group] = []
        total = done = 0
        for task in tasks:
            configs = task_configs(task)
            missing = tuple(c for c in configs if not self.store.has("runs", c.key))
            total += len(configs)
            done += len(configs) - len(missing)
            outcome.reused += len(configs) - len(missing)
            if missing:
                todo.append(Group(missing, task.population) if isinstance(task, Group) else task)
        progress(stage, done, total)
        if not todo:
            return
        import ray.tune as tune

        counted: set[str] = set()

        def on_report(trial: Any, result: dict[str, Any]) -> None:
            nonlocal done
            for config, record in json.loads(result["records"]):
                stored = self.store.put("runs", config, record)
                if stored["key"] not in counted:
                    counted.add(stored["key"])
                    outcome.ran += 1
                    done += 1
            progress(stage, done, total)

        self.experiments += 1
        _fit(
            tune.with_parameters(_bench_trial, tasks=todo, data=self.data),
            {"index": tune.grid_search(list(range(len(todo))))},
            self.storage,
            f"bench-{self.experiments}",
            on_report,
        )
        expected = [c for t in todo for c in task_configs(t)]
        lost = [c for c in expected if not self.store.has("runs", c.key)]
        if lost:
            raise RunError(f"{len(lost)} run(s) sent to Ray came back without a result")

    def close(self) -> None:
        """Remove Ray Tune's files; shut Ray down if this executor started it."""
        shutil.rmtree(self.storage, ignore_errors=True)
        if self.started:
            import_ray().shutdown()


def run_suite_on_ray(
    suite: Suite,
    store: ResultsStore,
    *,
    data: DataOptions | None = None,
    address: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> SuiteOutcome:
    """:func:`optlab.bench.runner.run_suite` with every run on Ray (module docstring)."""
    check_backend("ray", address)
    data = data or DataOptions()
    executor = RayExecutor(store, data, address, workers)
    return run_suite(suite, store, data=data, progress=progress, executor=executor)


# ---------------------------------------------------------------------------------- halving
def halving_rounds(members: int, reduce_factor: float) -> int:
    """Rounds the in-process rule needs to get ``members`` down to one (at least 1)."""
    rounds = 0
    while members > 1:
        members = kept_count(members, reduce_factor)
        rounds += 1
    return max(rounds, 1)


def _build_member(
    problem: str, instance_seed: int, seed: int, data: DataOptions
) -> ProblemInstance:
    context = BuildContext(
        instance_seed=instance_seed,
        init_seed=seed,
        data_dir=None if data.data_dir is None else Path(data.data_dir),
        download=data.download,
    )
    return problems.build(problem, context)


def _train_member(
    problem: str,
    optimizer: str,
    hyperparameters: dict[str, Any],
    instance_seed: int,
    seed: int,
    data: DataOptions,
    data_seed: int,
    rounds: int,
    steps_per_round: int,
    on_round: Callable[[float], None] | None = None,
    final_steps: int = 0,
) -> tuple[ProblemInstance, float]:
    """A lone member: ``rounds`` rounds (``on_round(val_loss)`` after each), then
    ``final_steps`` more steps; returns the instance and its last validation loss."""
    instance = _build_member(problem, instance_seed, seed, data)
    opt = optim.create(optimizer, instance.model.parameters(), **hyperparameters)
    batches = BatchStream(instance, data_seed)
    validation = instance.data.validation if instance.data else None

    def train(steps: int) -> None:
        for _ in range(steps):
            batch = next(batches)
            training_step(opt, lambda: instance.loss(instance.model, batch))  # noqa: B023

    value = math.nan
    for _ in range(rounds):
        train(steps_per_round)
        value, _ = evaluate(instance, validation)
        if on_round is not None:
            on_round(value)
    if final_steps:
        train(final_steps)
        value, _ = evaluate(instance, validation)
    return instance, value


def _halving_trial(config: dict[str, Any], job: dict[str, Any]) -> None:
    """A Ray Tune trial: one member, reporting its validation loss after every round."""
    import ray.tune as tune

    def report(value: float) -> None:  # a diverged member ranks last
        tune.report({"val_loss": rank(value), "raw_val_loss": json.dumps(value)})

    torch.set_num_threads(RUN_THREADS)
    _train_member(seed=config["seed"], on_round=report, **job)


def _final_member(job: dict[str, Any], seed: int, final_steps: int) -> tuple[float, float]:
    """The winner retrained from its seed (in the driver, with the trials' thread count, so
    along the same trajectory) for its rounds plus ``final_steps``: (val, test) losses."""
    threads = torch.get_num_threads()
    torch.set_num_threads(RUN_THREADS)
    try:
        instance, value = _train_member(seed=seed, final_steps=final_steps, **job)
        test = instance.data.test if instance.data else None
        return value, evaluate(instance, test)[0]
    finally:
        torch.set_num_threads(threads)


def successive_halving_on_ray(
    problem: str,
    optimizer: str,
    hyperparameters: dict[str, Any],
    config: HalvingConfig,
    init_seeds: Sequence[int],
    *,
    instance_seed: int = 42,
    data: DataOptions | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Successive halving of ``init_seeds`` as Ray Tune trials under ASHA (module docstring);
    returns the halving record's result: ``rounds``, ``winner_seed``, ``final_val_loss``,
    ``test_loss``, ``backend`` and ``scheduler``."""
    check_backend("ray", address)
    data = data or DataOptions()
    if len(init_seeds) != config.members:
        raise RayBackendError(
            f"members is {config.members} but {len(init_seeds)} init seeds were given"
        )
    entry = optim.spec(optimizer)
    if not entry.elementwise or entry.requires_closure:
        raise RayBackendError(
            f"{optimizer} cannot run successive halving (it is not elementwise); elementwise "
            f"optimizers: {', '.join(n for n in optim.names() if optim.spec(n).elementwise)}"
        )
    optim.spec(optimizer).validate(hyperparameters)
    if config.data_order != "shared":
        raise RayBackendError(
            f"data_order {config.data_order!r} is not offered on Ray: its trials share the "
            "data order (--data-order shared), or run the halving locally"
        )
    rounds = halving_rounds(config.members, config.reduce_factor)
    factor = 1.0 / config.reduce_factor
    job = {
        "problem": problem,
        "optimizer": optimizer,
        "hyperparameters": dict(hyperparameters),
        "instance_seed": instance_seed,
        "data": data,
        "data_seed": config.data_seed,
        "rounds": rounds,
        "steps_per_round": config.steps_per_round,
    }
    started = connect(address, workers)
    storage = tempfile.mkdtemp(prefix="optlab-ray-")
    reports: dict[int, list[float]] = {int(seed): [] for seed in init_seeds}
    try:
        import ray.tune as tune
        from ray.tune.schedulers import ASHAScheduler

        def on_report(trial: Any, result: dict[str, Any]) -> None:
            reports[int(trial.config["seed"])].append(float(json.loads(result["raw_val_loss"])))

        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            metric="val_loss",
            mode="min",
            max_t=rounds,
            grace_period=1,
            reduction_factor=factor,
        )
        _fit(
            tune.with_parameters(_halving_trial, job=job),
            {"seed": tune.grid_search([int(seed) for seed in init_seeds])},
            storage,
            "halving",
            on_report,
            scheduler,
        )
        winner = _winner(reports)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        if started:
            import_ray().shutdown()
    final_val, test = _final_member(
        {**job, "rounds": len(reports[winner])}, winner, config.final_steps
    )
    return {
        "rounds": _rounds(reports, [int(seed) for seed in init_seeds], winner),
        "winner_seed": winner,
        "final_val_loss": final_val,
        "test_loss": test,
        "backend": "ray",
        "scheduler": {
            "name": "ASHAScheduler",
            "time_attr": "training_iteration",
            "metric": "val_loss",
            "mode": "min",
            "reduction_factor": factor,
            "grace_period": 1,
            "max_t": rounds,
            "asynchronous": True,
        },
    }


def _winner(reports: dict[int, list[float]]) -> int:
    """Among the members that trained the most rounds, the lowest last validation loss
    (a diverged one last, :func:`optlab.train.core.rank`; ties to the smaller seed)."""
    longest = max(len(values) for values in reports.values())
    if longest == 0:
        raise RayBackendError("no Ray halving trial reported a validation loss")
    finalists = [seed for seed, values in reports.items() if len(values) == longest]
    return min(finalists, key=lambda seed: (rank(reports[seed][-1]), seed))


def _rounds(
    reports: dict[int, list[float]], seeds: list[int], winner: int
) -> list[dict[str, list[Any]]]:
    """Per round: the members that reported it, their validation losses, and those that
    reported the next round (after the last: the winner)."""
    longest = max(len(values) for values in reports.values())
    rounds = []
    for index in range(longest):
        alive = [seed for seed in seeds if len(reports[seed]) > index]
        kept = (
            [seed for seed in alive if len(reports[seed]) > index + 1]
            if index + 1 < longest
            else [winner]
        )
        kept.sort(key=lambda seed: (rank(reports[seed][index]), seed))
        rounds.append(
            {"seeds": alive, "val_loss": [reports[s][index] for s in alive], "kept": kept}
        )
    return rounds
