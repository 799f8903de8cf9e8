"""Performance profiles across problems (Dolan & Moré 2002; the AlgoPerf scoring).

For optimizer ``o`` and problem ``p`` let ``t(p, o)`` be its time to reach the problem's
target (here: the median over seeds of the gradient evaluations, or of the seconds, with a
seed that never reached the target counted as infinite). The *performance ratio* is
``r(p, o) = t(p, o) / min_o' t(p, o')`` (infinite when ``o`` never reached the target, and
for every optimizer on a problem that no optimizer solved), and the *profile* is

    rho_o(tau) = |{p : r(p, o) <= tau}| / |problems|,    tau >= 1,

the fraction of problems ``o`` solves within a factor ``tau`` of the fastest. ``rho_o(1)``
is the fraction where ``o`` was fastest (ties count for all); the curve's height at large
``tau`` is the fraction it solves at all. The score is the normalised area under the
profile over ``log2 tau`` from 0 to ``log2 max_tau``: 1 means fastest everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optlab.errors import InvalidValueError
from optlab.report.formatting import short
from optlab.report.frames import Run
from optlab.report.tables import Table, median_to_target

DEFAULT_MAX_TAU = 64.0
REPORTED_TAUS = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class PerformanceProfile:
    """Ratios of every optimizer on every problem, and the profile they define."""

    problems: tuple[str, ...]
    optimizers: tuple[str, ...]
    ratios: np.ndarray  # (problems, optimizers); inf: target never reached
    max_tau: float = DEFAULT_MAX_TAU

    def rho(self, optimizer: str, taus: Sequence[float] | np.ndarray) -> np.ndarray:
        """``rho_optimizer(tau)`` for each tau: the fraction of problems with ratio <= tau."""
        taus = np.asarray(taus, dtype=float)
        if not self.problems:
            return np.zeros_like(taus)
        column = self.ratios[:, self.optimizers.index(optimizer)]
        return np.mean(column[None, :] <= taus[:, None], axis=1)

    def steps(self, optimizer: str) -> tuple[np.ndarray, np.ndarray]:
        """(tau, rho) at every jump of the step function in [1, max_tau] (for a step plot)."""
        column = self.ratios[:, self.optimizers.index(optimizer)] if self.problems else []
        jumps = [r for r in column if 1.0 <= r <= self.max_tau]
        taus = np.unique(np.array([1.0, *jumps, self.max_tau]))
        return taus, self.rho(optimizer, taus)

    def area(self, optimizer: str) -> float:
        """Area under ``rho`` over ``log2 tau`` in [0, log2 max_tau], divided by its width."""
        taus, rho = self.steps(optimizer)
        width = math.log2(self.max_tau)
        if width <= 0:
            return float(rho[0]) if len(rho) else 0.0
        logs = np.log2(taus)
        return float(np.sum(np.diff(logs) * rho[:-1]) / width)

    def unsolved(self) -> list[str]:
        """Problems that no optimizer solved."""
        return [p for i, p in enumerate(self.problems) if not np.isfinite(self.ratios[i]).any()]


def performance_profile(
    times: Mapping[str, Mapping[str, float | None]],
    optimizers: Sequence[str] | None = None,
    *,
    max_tau: float = DEFAULT_MAX_TAU,
) -> PerformanceProfile:
    """The profile of ``times[problem][optimizer]`` (None, NaN or inf: never reached).

    An optimizer missing on a problem counts as not having reached its target there.
    """
    if max_tau < 1:
        raise InvalidValueError(f"max_tau must be >= 1, got {max_tau!r}")
    problems = tuple(times)
    names = (
        tuple(optimizers)
        if optimizers is not None
        else tuple(sorted({o for row in times.values() for o in row}))
    )
    ratios = np.full((len(problems), len(names)), math.inf)
    for i, problem in enumerate(problems):
        row = np.array([_time(times[problem].get(o)) for o in names], dtype=float)
        finite = row[np.isfinite(row)]
        if finite.size == 0:
            continue
        best = finite.min()
        if best <= 0:  # a target met before any work: the zero times tie at 1
            ratios[i] = np.where(row <= 0, 1.0, math.inf)
        else:
            ratios[i] = row / best
    return PerformanceProfile(problems=problems, optimizers=names, ratios=ratios, max_tau=max_tau)


def _time(value: float | None) -> float:
    if value is None:
        return math.inf
    value = float(value)
    return value if math.isfinite(value) else math.inf


def times_to_target(
    runs: Sequence[Run], measure: Callable[[Run], float | None]
) -> dict[str, dict[str, float | None]]:
    """``{problem: {series: median over seeds of measure(run)}}`` (None when not reached)."""
    grouped: dict[str, dict[str, list[float | None]]] = {}
    for run in runs:
        grouped.setdefault(run.problem, {}).setdefault(run.series or run.optimizer, []).append(
            measure(run)
        )
    return {
        problem: {series: median_to_target(values) for series, values in row.items()}
        for problem, row in grouped.items()
    }


def profile_table(profile: PerformanceProfile, taus: Sequence[float] = REPORTED_TAUS) -> Table:
    """Optimizers ranked by area, with rho at a few taus and the number of problems solved."""
    order = sorted(profile.optimizers, key=lambda o: (-profile.area(o), o))
    columns = ("optimizer", *(f"ρ(τ={short(t)})" for t in taus), "solved", "area")
    rows = []
    for optimizer in order:
        rho = profile.rho(optimizer, taus)
        column = profile.ratios[:, profile.optimizers.index(optimizer)]
        solved = int(np.isfinite(column).sum()) if profile.problems else 0
        rows.append(
            (
                optimizer,
                *(f"{value:.2f}" for value in rho),
                f"{solved}/{len(profile.problems)}",
                f"{profile.area(optimizer):.3f}",
            )
        )
    bold = frozenset({(0, 0), (0, len(columns) - 1)}) if rows else frozenset()
    notes = [
        f"ρ(τ): fraction of the {len(profile.problems)} problems reached within τ times the "
        f"fastest; area: mean of ρ over log2 τ in [0, {short(math.log2(profile.max_tau))}]",
    ]
    unsolved = profile.unsolved()
    if unsolved:
        notes.append("solved by no optimizer: " + ", ".join(unsolved))
    return Table(columns=columns, rows=tuple(rows), bold=bold, notes=tuple(notes))
