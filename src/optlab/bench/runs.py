"""One run of the bench: its configuration (whose hash is its store key) and its execution.

A :class:`RunConfig` names everything that determines a run: problem, optimizer and
hyperparameters, the instance, init and data-order seeds, the budget, the evaluation
schedule, the purpose (a tuning trial or a reported run) and the content hash of the data
on disk. :func:`execute` builds the problem and the optimizer and trains with the one
training loop (:func:`optlab.train.loop.train`) with :data:`RUN_THREADS` torch threads;
:func:`execute_and_store` stores the result under the config's key, unless it is stored
already. Runs trained together as a population are :mod:`optlab.bench.population_runs`'.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from optlab import optim, problems
from optlab.bench.store import ResultsStore, config_key
from optlab.errors import OptlabError
from optlab.problems.base import BuildContext, ProblemInstance
from optlab.train.loop import TrainConfig, TrainResult, train


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run; its hash is the record's key."""

    problem: str
    optimizer: str
    hyperparameters: dict[str, Any]
    instance_seed: int
    init_seed: int
    data_seed: int
    steps: int
    eval_every: int
    patience: int | None = 3
    purpose: str = "report"  # "report" or "tune"
    data: str | None = None  # content hash of the data set on disk (None: none needed)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with hyperparameters in a canonical form (tuples become lists)."""
        config = asdict(self)
        config["hyperparameters"] = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in sorted(self.hyperparameters.items())
        }
        rule = problems.start_rule(self.problem, self.init_seed)
        if rule is not None:  # only where the start changed: other keys stay as they were
            config["start"] = rule
        return config

    @property
    def key(self) -> str:
        """The store key of this run."""
        return config_key(self.as_dict())


@dataclass(frozen=True)
class DataOptions:
    """Where data sets live on disk, and whether missing ones may be downloaded."""

    data_dir: str | None = None
    download: bool = False


class RunError(OptlabError):
    """A run failed for another reason than divergence (which is a result, not an error)."""


RUN_THREADS = 1
"""torch threads inside a run: fixed, so a run's numbers do not depend on ``workers``."""


def execute(config: RunConfig, data: DataOptions = DataOptions()) -> dict[str, Any]:
    """Build the problem and the optimizer, train, and return the result as a dict.

    Runs with :data:`RUN_THREADS` torch threads (restored afterwards), so the same config
    gives the same numbers in-process and in a pool. An exception becomes a one-line
    :class:`RunError` naming the run.
    """
    what = (
        f"run {config.problem} / {config.optimizer} {config.hyperparameters} "
        f"(seed {config.init_seed})"
    )
    with run_context(what):
        return _execute(config, data)


@contextlib.contextmanager
def run_context(what: str) -> Iterator[None]:
    """Run with :data:`RUN_THREADS` torch threads (restored afterwards); an exception other
    than an :class:`OptlabError` becomes a one-line :class:`RunError` naming ``what``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(RUN_THREADS)
    try:
        yield
    except OptlabError:
        raise
    except Exception as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise RunError(f"{what} failed: {type(error).__name__}: {text}") from error
    finally:
        torch.set_num_threads(threads)


def build_instance(config: RunConfig, data: DataOptions) -> ProblemInstance:
    """The problem instance of ``config``, initialised from its init seed."""
    torch.manual_seed(config.init_seed)
    context = BuildContext(
        instance_seed=config.instance_seed,
        init_seed=config.init_seed,
        data_dir=Path(data.data_dir) if data.data_dir else None,
        download=data.download,
    )
    return problems.build(config.problem, context)


def train_config(config: RunConfig, instance: ProblemInstance) -> TrainConfig:
    """The training loop's settings for ``config``: its budget, checkpoints, patience and
    data order; a reported run of a problem with a plot records its trajectory."""
    return TrainConfig(
        steps=config.steps,
        eval_every=config.eval_every,
        patience=config.patience,
        data_seed=config.data_seed,
        record_trajectory=instance.plot_bounds is not None and config.purpose == "report",
    )


def run_result(instance: ProblemInstance, result: TrainResult) -> dict[str, Any]:
    """A run record's result: the training result with the problem's target and optimum."""
    return {**result.as_dict(), "target": instance.target, "optimum": instance.optimum}


def _execute(config: RunConfig, data: DataOptions) -> dict[str, Any]:
    instance = build_instance(config, data)
    parameters = instance.model.parameters()
    optimizer = optim.create(config.optimizer, parameters, **config.hyperparameters)
    return run_result(instance, train(instance, optimizer, train_config(config, instance)))


def execute_and_store(store_root: str, config: RunConfig, data: DataOptions) -> str:
    """Run ``config`` unless stored already; store it; return its key (pool-friendly)."""
    store = ResultsStore(store_root)
    if not store.has("runs", config.key):
        store.put("runs", config.as_dict(), execute(config, data))
    return config.key
