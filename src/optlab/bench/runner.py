"""The bench runner: tune every optimizer the same way, then run the reported seeds.

For a suite and a results store, :func:`run_suite` does, for every problem x optimizer:

1. **Tuning** (unless switched off): ``tuning.trials`` learning rates, log-uniform over
   ``tuning.lr_range`` (the grid sampler gives every optimizer the *same* log-spaced points;
   the TPE sampler is Optuna's, seeded), each trained on the validation split with the
   tuning seed (``tuning.seed`` as init and data-order seed, kept apart from the reported
   seeds) and the problem's full budget. The trial value is the final validation loss
   (a diverged trial counts as +inf). The study runs in Optuna; every trial is a run record
   in the store, and the outcome (best lr, every trial) is a tuning record, so a resumed
   sweep reuses them and picks the same learning rates.
2. **Reported runs**: the tuned lr on each reported seed (fresh init and data-order seeds,
   the same problem instance); the test split is read only at the end of these runs.

Every run is written to the store the moment it completes; anything already stored is
skipped, so a killed bench re-run completes the suite keeping all completed runs.
Runs go in-process (``workers=1``) or to a process pool (``workers>1``, one torch thread
each); the grid sampler's trials are independent and go to the pool too.

Populations (:mod:`optlab.bench.population_runs`): with the grid sampler, the trials of an
optimizer that can be vectorised (every elementwise one; not L-BFGS) train as ONE
population, one member per learning rate, where ``[tuning] population`` says it pays; the
reported seeds of such an optimizer train as one population, one member per seed, where the
suite's ``population`` says it pays (``auto``: models up to 60,000 parameters). Each member
is stored as the run it stands for (same key, same result fields, ``path = "population"``),
so the records are the same either way, to rounding; ``path`` says which path produced them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from optlab import problems
from optlab.bench.population_runs import (
    Group,
    execute_group_and_store,
    population_tasks,
    task_configs,
)
from optlab.bench.runs import DataOptions, RunConfig, execute_and_store
from optlab.bench.store import ResultsStore, config_key
from optlab.bench.suite import Suite
from optlab.errors import InvalidValueError

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``."""


def _worker_init() -> None:
    torch.set_num_threads(1)
    _exit_with_parent()


def _exit_with_parent(interval: float = 0.5) -> None:
    """A pool worker ends as soon as its parent is gone (e.g. ``kill -9`` of the bench).

    Without this, ProcessPoolExecutor workers orphaned by a killed parent block forever on
    their task queue (each holding a few hundred MB). A daemon thread polls the parent pid.
    """
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="optlab-exit-with-parent", daemon=True).start()


@dataclass
class SuiteOutcome:
    """What a bench did: tuned learning rates, the keys of its reported runs and of every
    record it used (``keys``: what its report shows), skipped problems."""

    tuned_lrs: dict[tuple[str, str], float] = field(default_factory=dict)
    report_keys: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # every run and tuning record it used
    ran: int = 0
    reused: int = 0


class _Executor:
    """Runs RunConfigs in-process or in a pool, storing each as it completes."""

    def __init__(self, store: ResultsStore, data: DataOptions, workers: int) -> None:
        self.store, self.data, self.workers = store, data, workers
        self.pool = None
        if workers > 1:
            import multiprocessing

            self.pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
            )

    def run(
        self,
        tasks: Iterable[RunConfig | Group],
        outcome: SuiteOutcome,
        progress: Progress,
        stage: str,
    ) -> None:
        """Run every task's configs not stored yet (a :class:`Group` as one task)."""
        todo: list[tuple[RunConfig | Group, int]] = []
        total = done = 0
        for task in tasks:
            configs = task_configs(task)
            missing = sum(not self.store.has("runs", config.key) for config in configs)
            total += len(configs)
            done += len(configs) - missing
            outcome.reused += len(configs) - missing
            if missing:
                todo.append((task, missing))
        progress(stage, done, total)
        root = str(self.store.root)

        def call(task: RunConfig | Group) -> Any:
            if isinstance(task, Group):
                return execute_group_and_store, root, task, self.data
            return execute_and_store, root, task, self.data

        if self.pool is None:
            for task, missing in todo:
                function, *args = call(task)
                function(*args)
                outcome.ran += missing
                done += missing
                progress(stage, done, total)
            return
        futures = {self.pool.submit(*call(task)): missing for task, missing in todo}
        for future in as_completed(futures):
            future.result()
            outcome.ran += futures[future]
            done += futures[future]
            progress(stage, done, total)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _trial_config(
    suite: Suite, problem: str, optimizer: str, lr: float, fingerprint: str | None
) -> RunConfig:
    spec = problems.spec(problem)
    return RunConfig(
        problem=problem,
        optimizer=optimizer,
        hyperparameters={**suite.fixed_hyperparameters(optimizer), "lr": lr},
        instance_seed=suite.instance_seed,
        init_seed=suite.tuning.seed,
        data_seed=suite.tuning.seed,
        steps=suite.budget(problem),
        eval_every=spec.eval_every,
        purpose="tune",
        data=fingerprint,
    )


def _tuning_config(
    suite: Suite, problem: str, optimizer: str, fingerprint: str | None
) -> dict[str, Any]:
    config = {
        "data": fingerprint,
        "problem": problem,
        "optimizer": optimizer,
        "hyperparameters": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in sorted(suite.fixed_hyperparameters(optimizer).items())
        },
        "instance_seed": suite.instance_seed,
        "seed": suite.tuning.seed,
        "trials": suite.tuning.trials,
        "lr_range": list(suite.tuning.lr_range),
        "sampler": suite.tuning.sampler,
        "steps": suite.budget(problem),
    }
    rule = problems.start_rule(problem, suite.tuning.seed)
    if rule is not None:  # its trials start from a drawn point (see RunConfig.as_dict)
        config["start"] = rule
    return config


def _trial_record(store: ResultsStore, config: RunConfig) -> dict[str, Any]:
    record = store.get("runs", config.key)
    if record is None:
        raise RuntimeError(f"tuning trial {config.key} missing from the store")
    return record


def _trial_value(store: ResultsStore, config: RunConfig) -> float:
    result = _trial_record(store, config)["result"]
    value = result.get("final_val_loss", math.nan)
    return math.inf if result["status"] != "ok" or not math.isfinite(value) else float(value)


def _study(suite: Suite, problem: str, optimizer: str) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if suite.tuning.sampler == "grid":
        sampler = optuna.samplers.GridSampler({"lr": suite.tuning.grid()}, seed=suite.tuning.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=suite.tuning.seed)
    return optuna.create_study(
        study_name=f"{problem}/{optimizer}", direction="minimize", sampler=sampler
    )


def tune(
    suite: Suite,
    problem: str,
    optimizer: str,
    fingerprint: str | None,
    store: ResultsStore,
    executor: Executor,
    outcome: SuiteOutcome,
    progress: Progress,
) -> float:
    """The tuned lr of ``optimizer`` on ``problem`` (from the store when already tuned).

    With the grid sampler, :func:`run_suite` has already run the trials (all pairs at once);
    with TPE the trials run here one after another, as Optuna asks for them. The tuning
    record holds ``best_lr``, ``best_value``, ``all_diverged``, every trial's ``lr`` and
    ``value``, and ``path``: ``"population"`` or ``"sequential"`` (how its trials were
    trained; ``"mixed"`` when a resumed sweep used both). Its key does not depend on the path.
    """
    import optuna

    config = _tuning_config(suite, problem, optimizer, fingerprint)
    key = config_key(config)
    outcome.keys.append(key)
    stored = store.get("tuning", key)
    if stored is not None:
        trials = stored["result"]["trials"]
        outcome.reused += len(trials)
        outcome.keys.extend(
            _trial_config(suite, problem, optimizer, t["lr"], fingerprint).key for t in trials
        )
        return float(stored["result"]["best_lr"])
    low, high = suite.tuning.lr_range
    distribution = optuna.distributions.FloatDistribution(low, high, log=True)
    study = _study(suite, problem, optimizer)
    runs: list[RunConfig] = []
    if suite.tuning.sampler == "grid":
        runs = _grid_trials(suite, problem, optimizer, fingerprint)
        for run in runs:
            study.add_trial(
                optuna.trial.create_trial(
                    params={"lr": run.hyperparameters["lr"]},
                    distributions={"lr": distribution},
                    value=_trial_value(store, run),
                )
            )
    else:
        stage = f"tune {problem} / {optimizer}"
        for index in range(suite.tuning.trials):
            trial = study.ask({"lr": distribution})
            run = _trial_config(suite, problem, optimizer, trial.params["lr"], fingerprint)
            executor.run([run], outcome, progress, f"{stage} ({index + 1}/{suite.tuning.trials})")
            study.tell(trial, _trial_value(store, run))
            runs.append(run)
    outcome.keys.extend(run.key for run in runs)
    paths = {_trial_record(store, run)["result"].get("path", "sequential") for run in runs}
    values = [(t.value, t.params["lr"]) for t in study.trials]
    finite = [(v, lr) for v, lr in values if math.isfinite(v)]
    # Ties (e.g. several lrs reaching an analytic minimum exactly) go to the smaller lr.
    best_value, best_lr = min(finite) if finite else (math.inf, min(lr for _, lr in values))
    store.put(
        "tuning",
        config,
        {
            "best_lr": best_lr,
            "best_value": best_value,
            "all_diverged": not finite,
            "trials": [{"lr": lr, "value": v} for v, lr in sorted(values, key=lambda x: x[1])],
            "path": paths.pop() if len(paths) == 1 else "mixed",
        },
    )
    return best_lr


def _grid_trials(
    suite: Suite, problem: str, optimizer: str, fingerprint: str | None
) -> list[RunConfig]:
    return [_trial_config(suite, problem, optimizer, lr, fingerprint) for lr in suite.tuning.grid()]


class Executor(Protocol):
    """Runs tasks (a run, or a :class:`Group`), storing each run as it completes."""

    def run(
        self,
        tasks: Iterable[RunConfig | Group],
        outcome: SuiteOutcome,
        progress: Progress,
        stage: str,
    ) -> None: ...

    def close(self) -> None: ...


def run_suite(
    suite: Suite,
    store: ResultsStore,
    *,
    data: DataOptions | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> SuiteOutcome:
    """Tune and run ``suite`` into ``store`` (see the module docstring).

    ``executor``: where runs go (closed at the end); default in-process or a pool of
    ``workers`` processes (:func:`optlab.bench.ray_backend.run_suite_on_ray` passes Ray's).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers must be an integer >= 1, got {workers!r}")
    progress = progress or (lambda stage, done, total: None)
    data = data or DataOptions()
    outcome = SuiteOutcome()
    data_dir = Path(data.data_dir) if data.data_dir else None
    fingerprints: dict[str, str | None] = {}
    for problem in suite.problems:
        if data.download or problems.available(problem, data_dir):
            fingerprints[problem] = problems.data_fingerprint(problem, data_dir)
        else:
            outcome.skipped[problem] = problems.missing_data_message(problem, data_dir)
    if executor is None:
        executor = _Executor(store, data, workers)
    try:
        if suite.tuning.enabled and suite.tuning.sampler == "grid":
            # The grid's trials are known in advance: run those of every pair in one batch,
            # so a pool stays busy instead of waiting at the end of each pair's trials.
            # Each pair's grid is one task: a population where it pays, else its trials.
            grids = [
                Group(
                    tuple(_grid_trials(suite, problem, optimizer, fingerprint)),
                    suite.tuning.population,
                )
                for problem, fingerprint in fingerprints.items()
                for optimizer in suite.optimizers
                if not store.has(
                    "tuning", config_key(_tuning_config(suite, problem, optimizer, fingerprint))
                )
            ]
            executor.run(population_tasks(grids), outcome, progress, "tuning runs")
        seed_groups: list[Group] = []
        for problem, fingerprint in fingerprints.items():
            spec = problems.spec(problem)
            for optimizer in suite.optimizers:
                if suite.tuning.enabled:
                    lr = tune(
                        suite, problem, optimizer, fingerprint, store, executor, outcome, progress
                    )
                else:
                    lr = suite.untuned_lr(optimizer)
                outcome.tuned_lrs[(problem, optimizer)] = lr
                runs = [
                    RunConfig(
                        problem=problem,
                        optimizer=optimizer,
                        hyperparameters={**suite.fixed_hyperparameters(optimizer), "lr": lr},
                        instance_seed=suite.instance_seed,
                        init_seed=seed,
                        data_seed=seed,
                        steps=suite.budget(problem),
                        eval_every=spec.eval_every,
                        purpose="report",
                        data=fingerprint,
                    )
                    for seed in suite.seeds
                ]
                seed_groups.append(Group(tuple(runs), suite.population))
        # The seeds of one optimizer train as one population where it pays (population_runs).
        executor.run(population_tasks(seed_groups), outcome, progress, "reported runs")
        report_runs = [run for group in seed_groups for run in group.configs]
        outcome.report_keys = [run.key for run in report_runs]
        outcome.keys.extend(outcome.report_keys)
    finally:
        executor.close()
    return outcome


def default_workers() -> int:
    """One worker per core, at most 2 (the harness machine's size)."""
    return max(1, min(2, os.cpu_count() or 1))
