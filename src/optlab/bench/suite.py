"""Suites as data: problems x optimizers x seeds x budget, and how learning rates are tuned.

A :class:`Suite` is a frozen dataclass, validated when built; it can be written as TOML::

    name = "mine"
    problems = ["rosenbrock-2d", "digits-mlp"]
    optimizers = ["adam", "imo"]
    seeds = [42, 43, 44]          # or a count: seeds = 3 (then 42, 43, 44)
    instance_seed = 42            # which problem instance (data, matrices): shared by all runs
    population = "auto"           # an optimizer's reported seeds as one population: "auto"
                                  # (small models), "on", "off"; never changes a record's key

    [tuning]                      # the same procedure and budget for every optimizer
    trials = 6                    # learning rates tried per optimizer and problem (>= 6)
    lr_range = [1e-4, 1.0]        # log-uniform range
    sampler = "grid"              # "grid": the same log-spaced points for all; "tpe": Optuna TPE
    seed = 1042                   # init/data-order seed of the tuning runs (kept apart)
    population = "auto"           # grid as one population: "auto" (small models), "on", "off"

    [steps]                       # budget overrides (gradient evaluations), per problem
    rosenbrock-2d = 500

    [hyperparameters.imo]         # fixed, untuned hyperparameters, per optimizer
    step_form = "algorithm-box"

    [lrs]                         # the learning rates used with --no-tune
    adam = 0.001

Built-in suites: ``quick`` (every analytic and convex problem, ``digits-mlp`` and
``mnist-5k``; all registry optimizers; 3 seeds), ``standard`` (adds ``mlp-synthetic`` and the
full-size real-data problems :data:`REAL_PROBLEMS`, Fashion-MNIST and MNIST-1D; 5 seeds),
``full`` (adds the MNIST nets, which need ``--data-dir``, and CIFAR-10/100; 5 seeds).
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from optlab import optim, problems
from optlab.errors import OptlabError
from optlab.inputs import check_path
from optlab.optim.hyperparameters import MAX_LR  # the largest float32: one rule for every lr

MIN_TUNING_TRIALS = 6
MAX_TUNING_TRIALS = 10_000
"""At most this many learning rates per optimizer and problem (a larger grid is a typo)."""
MAX_SEEDS = 10_000
"""At most this many reported seeds (``seeds = N``, a list, ``--seeds N``)."""
MAX_TUNING_SEED = 2**32 - 1
"""``[tuning] seed`` also seeds Optuna's sampler (NumPy's legacy seeding: 32 bits)."""
POPULATION_MODES = ("auto", "on", "off")
"""``[tuning] population`` (a learning-rate grid) and ``population`` (the reported seeds of
an optimizer): where runs train as one population (:mod:`optlab.bench.population_runs`)."""


class SuiteError(OptlabError):
    """A suite (built in, from TOML or from the command line) is invalid."""


@dataclass(frozen=True)
class Tuning:
    """The tuning procedure every optimizer gets (see the module docstring)."""

    enabled: bool = True
    trials: int = MIN_TUNING_TRIALS
    lr_range: tuple[float, float] = (1e-4, 1.0)
    sampler: str = "grid"
    seed: int = 1042
    population: str = "auto"  # how the grid runs (not part of any key: see population_tuning)

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise SuiteError(f"tuning.enabled must be true or false, got {self.enabled!r}")
        if isinstance(self.trials, bool) or not isinstance(self.trials, int):
            raise SuiteError(f"tuning.trials must be an integer, got {self.trials!r}")
        if self.trials < MIN_TUNING_TRIALS:
            raise SuiteError(
                f"tuning.trials must be >= {MIN_TUNING_TRIALS} (a fair comparison tries at "
                f"least {MIN_TUNING_TRIALS} learning rates), got {self.trials}"
            )
        if self.trials > MAX_TUNING_TRIALS:
            raise SuiteError(f"tuning.trials must be <= {MAX_TUNING_TRIALS:,}, got {self.trials:,}")
        low, high = _pair("tuning.lr_range", self.lr_range)
        if not (0 < low < high <= MAX_LR):
            raise SuiteError(
                "tuning.lr_range must be [low, high] with 0 < low < high <= 3.4e38 (the "
                f"largest float32), got {list(self.lr_range)}"
            )
        if self.sampler not in ("grid", "tpe"):
            raise SuiteError(f"tuning.sampler must be 'grid' or 'tpe', got {self.sampler!r}")
        if self.sampler == "grid":
            points = self.grid()
            if not all(math.isfinite(p) and a < p for a, p in itertools.pairwise(points)):
                raise SuiteError(
                    f"tuning.lr_range {list(self.lr_range)} with {self.trials} trials gives "
                    "repeated or non-finite grid points (6 significant digits each): widen "
                    "or narrow the range, or use fewer trials"
                )
        if (
            isinstance(self.seed, int)
            and not isinstance(self.seed, bool)
            and not 0 <= self.seed <= MAX_TUNING_SEED
        ):
            raise SuiteError(
                f"tuning.seed must be an integer in [0, 2**32 - 1] (it also seeds Optuna's "
                f"sampler), got {self.seed}"
            )
        _seed("tuning.seed", self.seed)
        if self.population not in POPULATION_MODES:
            raise SuiteError(
                f"tuning.population must be one of {', '.join(map(repr, POPULATION_MODES))}, "
                f"got {self.population!r}"
            )

    def grid(self) -> list[float]:
        """The log-spaced learning rates of the grid sampler: low and high exactly, the
        points between rounded to 6 significant digits (inside the range)."""
        low, high = (float(v) for v in self.lr_range)
        try:
            ratio = (high / low) ** (1 / (self.trials - 1))
        except OverflowError:  # a range over 308 decades: refused by validation
            ratio = math.inf
        inner = [
            min(max(float(f"{low * ratio**i:.6g}"), low), high) for i in range(1, self.trials - 1)
        ]
        return [low, *inner, high]


@dataclass(frozen=True)
class Suite:
    """Problems x optimizers x seeds, with budgets and the tuning procedure."""

    name: str
    problems: tuple[str, ...]
    optimizers: tuple[str, ...]
    seeds: tuple[int, ...] = (42, 43, 44)
    instance_seed: int = 42
    tuning: Tuning = field(default_factory=Tuning)
    steps: Mapping[str, int] = field(default_factory=dict)
    hyperparameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    lrs: Mapping[str, float] = field(default_factory=dict)
    population: str = "auto"  # the reported seeds as one population (not part of any key)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SuiteError(f"suite name must be a non-empty string, got {self.name!r}")
        if self.population not in POPULATION_MODES:
            raise SuiteError(
                f"population must be one of {', '.join(map(repr, POPULATION_MODES))}, "
                f"got {self.population!r}"
            )
        _names("problems", self.problems, problems.names())
        _names("optimizers", self.optimizers, _optimizer_names(self.optimizers))
        if not self.seeds:
            raise SuiteError("seeds must name at least one seed")
        if len(self.seeds) > MAX_SEEDS:
            raise SuiteError(f"seeds must be at most {MAX_SEEDS:,}, got {len(self.seeds):,}")
        for seed in self.seeds:
            _seed("seeds", seed)
        if len(set(self.seeds)) != len(self.seeds):
            raise SuiteError(f"seeds must be distinct, got {list(self.seeds)}")
        if self.tuning.seed in self.seeds:
            raise SuiteError(
                f"tuning.seed {self.tuning.seed} is also a reported seed: keep them apart"
            )
        _seed("instance_seed", self.instance_seed)
        for problem, budget in self.steps.items():
            _names("steps", [problem], problems.names())
            if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
                raise SuiteError(f"steps.{problem} must be an integer >= 1, got {budget!r}")
        for name, values in self.hyperparameters.items():
            _names("hyperparameters", [name], _optimizer_names([name]))
            if not isinstance(values, Mapping):
                raise SuiteError(f"[hyperparameters.{name}] must be a table, got {values!r}")
            if "lr" in values:
                raise SuiteError(f"hyperparameters.{name}: lr is tuned (or set in [lrs])")
            try:
                optim.spec(name).validate(values)  # fields, then the record's cross-checks
            except (TypeError, ValueError) as error:
                raise SuiteError(f"hyperparameters.{name}: {error}") from error
        for name, lr in self.lrs.items():
            _names("lrs", [name], _optimizer_names([name]))
            if isinstance(lr, (int, float)) and not isinstance(lr, bool) and abs(lr) > MAX_LR:
                raise SuiteError(f"lrs.{name} must be <= 3.4e38 (the largest float32), got {lr!r}")
            try:
                optim.spec(name).validate({"lr": lr})
            except (TypeError, ValueError) as error:
                raise SuiteError(f"lrs.{name}: {error}") from error

    def budget(self, problem: str) -> int:
        """Gradient evaluations per run on ``problem``."""
        return self.steps.get(problem, problems.spec(problem).steps)

    def fixed_hyperparameters(self, optimizer: str) -> dict[str, Any]:
        """The untuned hyperparameters of ``optimizer`` in this suite. A learned optimizer
        (``learned:<path>``) also gets its policy file's ``sha256``: a run's key names the
        file's content, and a changed file is a new run, never a stale reuse."""
        fixed = dict(self.hyperparameters.get(optimizer, {}))
        if optimizer.startswith(LEARNED_PREFIX):
            from optlab.optim.learned import file_digest

            fixed.setdefault("sha256", file_digest(optimizer[len(LEARNED_PREFIX) :]))
        return fixed

    def untuned_lr(self, optimizer: str) -> float:
        """The lr used with tuning off: the suite's [lrs], else the registry default."""
        if optimizer in self.lrs:
            return float(self.lrs[optimizer])
        return float(_registry_default_lr(optimizer))

    def restricted(
        self,
        *,
        problems_: tuple[str, ...] | None = None,
        optimizers: tuple[str, ...] | None = None,
        seeds: tuple[int, ...] | None = None,
        tune: bool | None = None,
    ) -> Suite:
        """The same suite with fewer problems/optimizers, other seeds, or tuning switched."""
        tuning = self.tuning if tune is None else replace(self.tuning, enabled=tune)
        return replace(
            self,
            problems=problems_ or self.problems,
            optimizers=optimizers or self.optimizers,
            seeds=seeds or self.seeds,
            tuning=tuning,
        )


LEARNED_PREFIX = "learned:"


def _optimizer_names(given: Any) -> tuple[str, ...]:
    """The registry's names plus each ``learned:<path>`` given whose policy file loads
    (a missing or corrupt file fails here, naming it, before any run starts)."""
    known = optim.names()
    if not isinstance(given, (list, tuple)):
        return known
    learned = []
    for name in given:
        if isinstance(name, str) and name.startswith(LEARNED_PREFIX):
            from optlab.optim.learned import load_policy

            try:
                optim.spec(name)
                load_policy(name[len(LEARNED_PREFIX) :])
            except (TypeError, ValueError, OSError, OptlabError) as error:  # PolicyFileError
                raise SuiteError(f"optimizers: {name}: {error}") from error
            learned.append(name)
    return (*known, *learned)


def _registry_default_lr(optimizer: str) -> float:
    import inspect

    if optimizer.startswith(LEARNED_PREFIX):  # the policy's own step scale
        from optlab.optim.learned import load_policy

        return float(load_policy(optimizer[len(LEARNED_PREFIX) :]).config.lr)

    factory = optim.spec(optimizer).factory
    defaults = optim.spec(optimizer).defaults
    if "lr" in defaults:
        return defaults["lr"]
    target = getattr(factory, "func", factory)
    parameter = inspect.signature(target).parameters.get("lr")
    return float(parameter.default) if parameter is not None else 1e-3


def _pair(field_name: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SuiteError(f"{field_name} must be a pair [low, high], got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise SuiteError(f"{field_name} must hold two numbers, got {value!r}")
    return float(value[0]), float(value[1])


MAX_SEED = 2**63 - 1


def _seed(field_name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise SuiteError(f"{field_name} must be integers in [0, 2**63 - 1], got {value!r}")
    return value


def _names(field_name: str, given: Any, known: tuple[str, ...]) -> None:
    if isinstance(given, str) or not isinstance(given, (list, tuple)):
        raise SuiteError(f"{field_name} must be a list of names, got {given!r}")
    if not given:
        raise SuiteError(f"{field_name} must name at least one entry")
    for index, name in enumerate(given):
        if not isinstance(name, str) or name not in known:
            raise SuiteError(f"unknown name {name!r} in {field_name}; known: {', '.join(known)}")
        if name in given[:index]:
            raise SuiteError(f"{field_name} names {name!r} twice: each may appear once")


def seed_range(field_name: str, count: Any) -> tuple[int, ...]:
    """The reported seeds 42, 43, ... of a count (``seeds = N``, ``--seeds N``): an integer
    in [1, :data:`MAX_SEEDS`], checked before the tuple is built."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SEEDS:
        raise SuiteError(
            f"{field_name} must be >= 1 and <= {MAX_SEEDS:,} (a count of seeds), got {count!r}"
        )
    return tuple(42 + i for i in range(count))


def _kind(kind: str) -> tuple[str, ...]:
    return tuple(name for name in problems.names() if problems.spec(name).kind == kind)


REAL_PROBLEMS = ("fmnist-mlp", "fmnist-2c2d", "mnist1d-logistic", "mnist1d-mlp", "mnist1d-cnn")
"""The full-size real-data problems of the ``standard`` suite (Fashion-MNIST from the Debian
package ``dataset-fashion-mnist``, MNIST-1D regenerated by the ``mnist1d`` package)."""
STANDARD_SEEDS = (42, 43, 44, 45, 46)
"""Reported seeds of ``standard`` and ``full``: five, for verdicts over seeds."""


def builtin_suites() -> dict[str, Suite]:
    """The built-in suites ``quick``, ``standard`` and ``full``."""
    everyone = optim.names()
    quick = (*_kind("analytic"), *_kind("convex"), "digits-mlp", "mnist-5k")
    standard = (*quick, "mlp-synthetic", *REAL_PROBLEMS)
    mnist = ("mnist-mlp-64", "mnist-mlp", "mnist-cnn")
    full = (*standard, *mnist, "cifar10-mlp", "cifar10-cnn", "cifar100-cnn")
    return {
        "quick": Suite("quick", quick, everyone),
        "standard": Suite("standard", standard, everyone, seeds=STANDARD_SEEDS),
        "full": Suite("full", full, everyone, seeds=STANDARD_SEEDS),
    }


SUITE_KEYS = {"name", "problems", "optimizers", "seeds", "instance_seed", "tuning", "steps",
              "hyperparameters", "lrs", "population"}  # fmt: skip
TUNING_KEYS = {"enabled", "trials", "lr_range", "sampler", "seed", "population"}


def suite_from_mapping(data: Mapping[str, Any], default_name: str = "custom") -> Suite:
    """Build a suite from parsed TOML (or any mapping); unknown keys are errors."""
    unknown = set(data) - SUITE_KEYS
    if unknown:
        raise SuiteError(
            f"unknown suite key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(SUITE_KEYS))}"
        )
    tuning_data = data.get("tuning", {})
    if not isinstance(tuning_data, Mapping):
        raise SuiteError("[tuning] must be a table")
    unknown = set(tuning_data) - TUNING_KEYS
    if unknown:
        raise SuiteError(
            f"unknown key {sorted(unknown)[0]!r} in [tuning]; allowed: "
            f"{', '.join(sorted(TUNING_KEYS))}"
        )
    seeds = data.get("seeds", 3)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SuiteError(f"seeds must be a count >= 1 or a list of seeds, got {seeds}")
        seeds = list(seed_range("seeds", seeds))
    if not isinstance(seeds, list):
        raise SuiteError(f"seeds must be a count or a list of integers, got {seeds!r}")
    tuning_args = dict(tuning_data)
    if "lr_range" in tuning_args:
        tuning_args["lr_range"] = tuple(_pair("tuning.lr_range", tuning_args["lr_range"]))
    for table in ("steps", "hyperparameters", "lrs"):
        if not isinstance(data.get(table, {}), Mapping):
            raise SuiteError(f"[{table}] must be a table")
    return Suite(
        name=data.get("name", default_name),
        problems=tuple(_list("problems", data.get("problems"))),
        optimizers=tuple(_list("optimizers", data.get("optimizers", list(optim.names())))),
        seeds=tuple(seeds),
        instance_seed=data.get("instance_seed", 42),
        tuning=Tuning(**tuning_args),
        steps=dict(data.get("steps", {})),
        hyperparameters={
            k: dict(v) if isinstance(v, Mapping) else v
            for k, v in data.get("hyperparameters", {}).items()
        },
        lrs=dict(data.get("lrs", {})),
        population=data.get("population", "auto"),
    )


def _list(field_name: str, value: Any) -> list[str]:
    if value is None:
        raise SuiteError(f"a suite must give {field_name}")
    if not isinstance(value, list):
        raise SuiteError(f"{field_name} must be a list of names, got {value!r}")
    return value


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a TOML file by path."""
    suites = builtin_suites()
    if name_or_path in suites:
        return suites[name_or_path]
    path = check_path("--suite", name_or_path)
    if not path.suffix == ".toml":
        raise SuiteError(
            f"unknown suite {name_or_path!r}; built in: {', '.join(suites)}, or a .toml file"
        )
    if not path.is_file():
        raise SuiteError(f"suite file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SuiteError(f"suite file {path} is not valid TOML: {error}") from error
    return suite_from_mapping(data, default_name=path.stem)
