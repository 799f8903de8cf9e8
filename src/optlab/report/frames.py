"""Read a results store into plain records for the report.

:func:`load` reads ``ResultsStore.runs_frame()`` and ``ResultsStore.tuning_frame()`` and
turns each row into a :class:`Run` or a :class:`TuningOutcome`: typed, with missing values
made explicit (``None`` for "does not exist", NaN/inf kept for losses of diverged runs), so
the rest of the report never touches pandas' mixture of None and NaN.

Only reported runs (``purpose == "report"``) become :class:`Run`; tuning trials are counted.
Runs of one optimizer on one problem are grouped into one *series*; when the store holds
runs of the same optimizer in several configurations on a problem (two suites in one
store: another lr, budget, instance seed or fixed hyperparameters), each is its own series,
labelled by what differs, e.g. ``"adam (lr=0.01)"``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from optlab.bench.store import ResultsStore
from optlab.errors import OptlabError
from optlab.inputs import PathError, check_path, check_writable_folder
from optlab.report.formatting import short


class ReportError(OptlabError):
    """A report cannot be written (no store at the path given, unusable output folder)."""


@dataclass(frozen=True)
class Run:
    """One reported training run (see ``optlab.bench.store`` for the fields)."""

    key: str
    problem: str
    optimizer: str
    lr: float | None
    seed: tuple[int | None, int | None, int | None]  # (instance, init, data-order)
    diverged: bool
    steps: int | None
    evaluations: int | None
    seconds: float | None
    final_val_loss: float
    best_val_loss: float
    test_loss: float
    final_val_accuracy: float | None
    test_accuracy: float | None
    steps_to_target: int | None
    evaluations_to_target: int | None
    seconds_to_target: float | None
    target: float | None
    optimum: float | None
    curve: Mapping[str, Sequence[Any]]
    trajectory: Sequence[Sequence[float]] | None
    series: str = ""
    budget: int | None = None
    hyperparameters: str = ""  # the untuned hyperparameters besides lr, as sorted JSON
    path: str = "lone"  # "population": trained with other seeds at once (its seconds a share)

    @property
    def has_accuracy(self) -> bool:
        """Whether the problem measures accuracy (any accuracy value was recorded)."""
        curve_accuracy = any(a is not None for a in self.curve.get("val_accuracy", ()) or ())
        return (
            self.test_accuracy is not None or self.final_val_accuracy is not None or curve_accuracy
        )


@dataclass(frozen=True)
class TuningOutcome:
    """One tuning record: the chosen learning rate and every trial."""

    problem: str
    optimizer: str
    best_lr: float | None
    best_value: float | None
    all_diverged: bool
    trials: tuple[tuple[float, float], ...]  # (lr, value), value inf when diverged
    trial_count: int
    lr_range: tuple[float, float] | None
    sampler: str | None
    seed: int | None
    budget: int | None


@dataclass
class StoreView:
    """What the report reads from a store."""

    root: Path
    runs: list[Run] = field(default_factory=list)
    tuning: list[TuningOutcome] = field(default_factory=list)
    tuning_trials: int = 0

    @property
    def problems(self) -> list[str]:
        """Problems with reported runs, sorted."""
        return sorted({run.problem for run in self.runs})

    @property
    def optimizers(self) -> list[str]:
        """Optimizers with reported runs, sorted."""
        return sorted({run.optimizer for run in self.runs})

    @property
    def series(self) -> list[str]:
        """Series labels (optimizers, or optimizer at one lr), sorted."""
        return sorted({run.series for run in self.runs})

    @property
    def seeds(self) -> list[tuple[int | None, int | None, int | None]]:
        """Distinct (instance, init, data-order) seeds of the reported runs."""
        return sorted({run.seed for run in self.runs}, key=seed_order)

    def runs_of(self, problem: str) -> list[Run]:
        """Reported runs on ``problem``."""
        return [run for run in self.runs if run.problem == problem]

    def tuning_of(self, problem: str) -> list[TuningOutcome]:
        """Tuning outcomes on ``problem``."""
        return [outcome for outcome in self.tuning if outcome.problem == problem]


def seed_order(seed: tuple[int | None, ...]) -> tuple[int, ...]:
    """A sort key for seeds that may hold None."""
    return tuple(-1 if value is None else value for value in seed)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:
        return False


def optional_float(value: Any) -> float | None:
    """``value`` as a float; None (and NaN, which pandas puts for None) become None."""
    if _missing(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def optional_int(value: Any) -> int | None:
    """``value`` as an int; None/NaN/inf become None."""
    number = optional_float(value)
    if number is None or not math.isfinite(number):
        return None
    return round(number)


def loss_value(value: Any) -> float:
    """A loss: NaN when missing, kept as is (NaN/inf) when the run diverged."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _row_runs(row: Mapping[str, Any]) -> Run:
    curve = row.get("curve")
    trajectory = row.get("trajectory")
    diverged = bool(row.get("diverged")) or row.get("status") == "diverged"
    return Run(
        key=str(row.get("key", "")),
        problem=str(row.get("problem")),
        optimizer=str(row.get("optimizer")),
        lr=optional_float(row.get("lr")),
        seed=(
            optional_int(row.get("instance_seed")),
            optional_int(row.get("init_seed")),
            optional_int(row.get("data_seed")),
        ),
        diverged=diverged,
        steps=optional_int(row.get("steps")),
        evaluations=optional_int(row.get("evaluations")),
        seconds=optional_float(row.get("seconds")),
        final_val_loss=loss_value(row.get("final_val_loss")),
        best_val_loss=loss_value(row.get("best_val_loss")),
        test_loss=loss_value(row.get("test_loss")),
        final_val_accuracy=optional_float(row.get("final_val_accuracy")),
        test_accuracy=optional_float(row.get("test_accuracy")),
        steps_to_target=optional_int(row.get("steps_to_target")),
        evaluations_to_target=optional_int(row.get("evaluations_to_target")),
        seconds_to_target=optional_float(row.get("seconds_to_target")),
        target=optional_float(row.get("target")),
        optimum=optional_float(row.get("optimum")),
        curve=curve if isinstance(curve, Mapping) else {},
        trajectory=trajectory if isinstance(trajectory, list) and trajectory else None,
        budget=optional_int(row.get("budget")),
        path="population" if row.get("path") == "population" else "lone",
        hyperparameters=_other_hyperparameters(row.get("hyperparameters")),
    )


def _other_hyperparameters(value: Any) -> str:
    if not isinstance(value, Mapping):
        return ""
    others = {k: v for k, v in value.items() if k != "lr"}
    return json.dumps(others, sort_keys=True) if others else ""


def _trials(value: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list):
        return ()
    trials = []
    for trial in value:
        if not isinstance(trial, Mapping):
            continue
        lr = optional_float(trial.get("lr"))
        if lr is None:
            continue
        trial_value = optional_float(trial.get("value"))
        if trial_value is None or not math.isfinite(trial_value):
            trial_value = math.inf
        trials.append((lr, trial_value))
    return tuple(sorted(trials))


def _row_tuning(row: Mapping[str, Any]) -> TuningOutcome:
    trials = _trials(row.get("trials"))
    # The config's ``trials`` (a count) and the result's ``trials`` (a list) share a name.
    count = row.get("trials")
    trial_count = len(trials) if isinstance(count, list) else (optional_int(count) or len(trials))
    lr_range = row.get("lr_range")
    if isinstance(lr_range, list | tuple) and len(lr_range) == 2:
        low, high = optional_float(lr_range[0]), optional_float(lr_range[1])
        bounds = (low, high) if low is not None and high is not None else None
    else:
        bounds = (trials[0][0], trials[-1][0]) if trials else None
    best_value = optional_float(row.get("best_value"))
    return TuningOutcome(
        problem=str(row.get("problem")),
        optimizer=str(row.get("optimizer")),
        best_lr=optional_float(row.get("best_lr")),
        best_value=best_value,
        all_diverged=bool(row.get("all_diverged"))
        or (bool(trials) and all(not math.isfinite(v) for _, v in trials)),
        trials=trials,
        trial_count=trial_count,
        lr_range=bounds,
        sampler=None if _missing(row.get("sampler")) else str(row.get("sampler")),
        seed=optional_int(row.get("seed")),
        budget=optional_int(row.get("steps")),
    )


def _label_series(runs: list[Run]) -> list[Run]:
    """One series per distinct configuration besides the seeds: a store holding two
    suites' runs of one optimizer (another lr, budget, instance or fixed hyperparameters)
    shows them apart, labelled by what differs."""

    def parts(run: Run) -> tuple[tuple[str, str], ...]:
        return (
            ("lr", short(run.lr)),
            ("budget", str(run.budget)),
            ("instance", str(run.seed[0])),
            ("", run.hyperparameters),
        )

    variants: dict[tuple[str, str], set[tuple[tuple[str, str], ...]]] = {}
    for run in runs:
        variants.setdefault((run.problem, run.optimizer), set()).add(parts(run))
    labelled = []
    for run in runs:
        seen = variants[(run.problem, run.optimizer)]
        if len(seen) == 1:
            label = run.optimizer
        else:
            differing = [
                f"{name}={value}" if name else value
                for index, (name, value) in enumerate(parts(run))
                if len({variant[index] for variant in seen}) > 1
            ]
            label = f"{run.optimizer} ({', '.join(differing)})"
        labelled.append(replace(run, series=label))
    return labelled


def _records(frame: Any) -> list[dict[str, Any]]:
    if frame is None or len(frame) == 0:
        return []
    return [dict(row) for row in frame.to_dict(orient="records")]


def open_store(store: ResultsStore | str | os.PathLike[str]) -> ResultsStore:
    """``store`` itself, or the store at that path (which must exist: a typo is an error;
    it is only read)."""
    if isinstance(store, ResultsStore):
        return store
    path = check_path("results store", store)
    if not path.is_dir():
        raise ReportError(f"no results store at {path}: the folder does not exist")
    return ResultsStore(path, read_only=True)


def results_folder(directory: str | os.PathLike[str]) -> ResultsStore:
    """The store of a results folder written by ``optlab bench`` (``optlab report DIR``),
    opened to be read; :class:`ReportError` (one line) if ``directory`` is not one."""
    path = check_path("results folder", directory)
    if not (path / "runs").is_dir():
        raise ReportError(f"{path} is not a results folder (no runs/ inside)")
    return ResultsStore(path, read_only=True)


def check_destination(out_dir: str | os.PathLike[str]) -> Path:
    """The report folder ``out_dir``, made and proven writable, with nothing but files
    where ``report.md`` / ``report.html`` go and nothing but a folder where ``figures``
    goes; :class:`ReportError` (one line) otherwise. ``optlab bench`` calls it before any
    run, so a report that cannot be written never waits behind hours of runs."""
    try:
        out = check_writable_folder("report folder", out_dir)
    except PathError as error:
        raise ReportError(str(error)) from None
    for name, folder in (("report.md", False), ("report.html", False), ("figures", True)):
        path = out / name
        if path.exists() and path.is_dir() != folder:
            kind = "a folder" if folder else "a file"
            raise ReportError(f"report folder {out}: {name} exists and is not {kind}")
    return out


def load(
    store: ResultsStore | str | os.PathLike[str], keys: Collection[str] | None = None
) -> StoreView:
    """Read the reported runs and tuning outcomes of ``store`` (see the module docstring).

    ``keys``: only the run and tuning records with these keys (one bench's records in a
    store shared with others); None reads everything.
    """
    results = open_store(store)
    wanted = None if keys is None else set(keys)
    runs, trials = [], 0
    for row in _records(results.runs_frame()):
        if wanted is not None and row.get("key") not in wanted:
            continue
        purpose = row.get("purpose")
        if purpose == "report" or _missing(purpose):
            runs.append(_row_runs(row))
        else:
            trials += 1
    tuning = [
        _row_tuning(row)
        for row in _records(results.tuning_frame())
        if wanted is None or row.get("key") in wanted
    ]
    tuning.sort(key=lambda t: (t.problem, t.optimizer))
    runs.sort(key=lambda r: (r.problem, r.optimizer, r.lr or 0.0, seed_order(r.seed)))
    return StoreView(
        root=results.root, runs=_label_series(runs), tuning=tuning, tuning_trials=trials
    )
