"""Paired comparisons over seeds: bootstrap confidence intervals, verdicts, seeds needed.

Every optimizer (series) is compared with a *reference* optimizer on each problem, seed by
seed (runs with the same (instance, init, data-order) seed are a pair: they saw the same
problem, start and batches). Two quantities are compared:

- the **final metric**: the test accuracy in percent where the problem measures accuracy
  (higher is better), else the test loss (lower is better), else the final validation loss;
- the **time to target**: gradient evaluations until the validation loss first reached the
  problem's target (lower is better). A seed that never reached it counts at its budget:
  a lower bound on its time, so a difference involving such a seed is understated.

Method. With ``d_i = x_i - r_i`` the per-seed differences (optimizer minus reference,
``i = 1..n`` over the seeds where both values are finite), the estimate is the mean
``d̄`` and its 95% confidence interval is the bias-corrected and accelerated (BCa)
bootstrap interval of the mean of ``d`` (Efron and Tibshirani 1993, *An Introduction to
the Bootstrap*, ch. 14), computed by :func:`scipy.stats.bootstrap` with 9,999 resamples
from a fixed generator (the same store always gives the same report). Resampling the
per-seed differences is the paired bootstrap: the pairing by seed is kept. Where BCa is
undefined (a resample distribution without spread) the percentile interval is used.

Verdict: **better** / **worse** when the interval excludes 0, on the side that is better
(worse) for the quantity; otherwise **inconclusive**. Degenerate cases say so instead of
giving NaN: fewer than :data:`MIN_SEEDS` paired seeds is "inconclusive (too few seeds)";
runs that do not vary with the seed on either side (the same value on every seed: the seeds
replicate one run; for the time to target, counted only at the checks and so often equal
over seeds, judged by the final losses and accuracy) are inconclusive too; the same
nonzero difference on every seed while the runs themselves vary is decided by its sign (the
bootstrap interval is that point).
A seed whose run diverged has no final metric and leaves the metric's pairs; a series that
diverged on every one of at least :data:`MIN_SEEDS` seeds while the reference did not is
**worse** (and the reverse **better**), with that reason.

Seeds needed (an estimate): assuming the per-seed spread stays as observed, the interval's
distance from ``d̄`` to its bound on the side of 0 shrinks like ``1/sqrt(n)``; the smallest
``m`` with ``w sqrt(n/m) < |d̄|`` (``w`` that distance) is ``m = floor(n (w/|d̄|)^2) + 1``.
It is only a rough guide: the observed difference may itself shrink with more seeds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy import stats

from optlab.report.frames import Run

CONFIDENCE = 0.95
"""Confidence level of the intervals."""
RESAMPLES = 9_999
"""Bootstrap resamples per interval."""
BOOTSTRAP_SEED = 0
"""Seed of the bootstrap's generator (fixed: a report is a function of its store)."""
MIN_SEEDS = 3
"""Fewer paired seeds than this give no verdict (two seeds cannot show a spread)."""
DEFAULT_REFERENCE = "adam"
"""The reference optimizer when none is given."""

Verdict = Literal["better", "worse", "inconclusive"]
Quantity = Literal["metric", "time"]


@dataclass(frozen=True)
class PairedEstimate:
    """The mean paired difference (optimizer minus reference) with its interval and verdict.

    Attributes:
        n: paired seeds used.
        mean: mean difference ``d̄`` (None when there is none to state).
        low, high: the 95% bootstrap interval of ``d̄`` (None when not computed).
        verdict: better, worse or inconclusive (for the optimizer, against the reference).
        reason: why, in a few words, when the verdict does not come from the interval alone.
        seeds_needed: estimated seeds for the observed difference to be conclusive (only for
            an inconclusive verdict with a nonzero difference and an interval).
    """

    n: int
    mean: float | None
    low: float | None
    high: float | None
    verdict: Verdict
    reason: str = ""
    seeds_needed: int | None = None


def verdict_of(low: float, high: float, *, higher_is_better: bool) -> Verdict:
    """``better``/``worse`` when ``[low, high]`` excludes 0, else ``inconclusive``."""
    if low > 0.0:
        return "better" if higher_is_better else "worse"
    if high < 0.0:
        return "worse" if higher_is_better else "better"
    return "inconclusive"


def seeds_to_conclude(mean: float, low: float, high: float, n: int) -> int | None:
    """Seeds for an interval like ``[low, high]`` around ``mean`` to exclude 0 (an estimate).

    The distance ``w`` from ``mean`` to the bound on the side of 0 is assumed to shrink like
    ``1/sqrt(n)``; the answer is the smallest ``m`` with ``w sqrt(n/m) < |mean|``. None when
    ``mean`` is 0 (no difference to confirm) or the interval is not finite.

    >>> seeds_to_conclude(1.0, -1.0, 3.0, 5)  # w = 2: m > 5 * 4
    21
    """
    if mean == 0.0 or not all(math.isfinite(v) for v in (mean, low, high)):
        return None
    w = mean - low if mean > 0 else high - mean
    if w < abs(mean):
        return n  # already conclusive
    return max(n + 1, math.floor(n * (w / abs(mean)) ** 2) + 1)


def _interval(differences: np.ndarray) -> tuple[float, float]:
    """The BCa interval of the mean; the percentile interval where BCa is undefined (its
    acceleration needs a spread in the jackknife), both with the same fixed seed."""
    low = high = math.nan
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning: handled by the fallback
            result = stats.bootstrap(
                (differences,),
                np.mean,
                confidence_level=CONFIDENCE,
                n_resamples=RESAMPLES,
                method=method,
                vectorized=True,
                rng=np.random.default_rng(BOOTSTRAP_SEED),
            )
        low, high = result.confidence_interval
        if math.isfinite(low) and math.isfinite(high):
            break
    return float(low), float(high)


def paired_bootstrap(
    values: Sequence[float],
    reference: Sequence[float],
    *,
    higher_is_better: bool,
    seeds_vary: bool | None = None,
) -> PairedEstimate:
    """Compare ``values`` with ``reference``, seed by seed (same order, same length).

    Pairs where either value is not finite are left out. ``seeds_vary``: whether the runs
    change with the seed at all; None judges it from the values themselves (a coarse
    quantity, such as evaluations counted at checks, may repeat over seeds of runs that do
    vary: then pass what a finer one, such as the final loss, says). See the module
    docstring.
    """
    if len(values) != len(reference):
        raise ValueError(
            f"paired values need the same length, got {len(values)} and {len(reference)}"
        )
    x = np.asarray(values, dtype=float)
    r = np.asarray(reference, dtype=float)
    keep = np.isfinite(x) & np.isfinite(r)
    x, r = x[keep], r[keep]
    n = int(x.size)
    d = x - r
    mean = float(np.mean(d)) if n else None
    if n < MIN_SEEDS:
        return PairedEstimate(n, mean, None, None, "inconclusive", "too few seeds")
    if seeds_vary is None:
        seeds_vary = bool(np.ptp(x) > 0.0 or np.ptp(r) > 0.0)
    if not seeds_vary:
        reason = "no difference on any seed" if mean == 0.0 else "runs do not vary with the seed"
        return PairedEstimate(n, mean, None, None, "inconclusive", reason)
    if np.ptp(d) == 0.0:
        if mean == 0.0:
            return PairedEstimate(n, mean, 0.0, 0.0, "inconclusive", "no difference on any seed")
        verdict = verdict_of(mean, mean, higher_is_better=higher_is_better)
        return PairedEstimate(n, mean, mean, mean, verdict, "the same difference on every seed")
    low, high = _interval(d)
    verdict = verdict_of(low, high, higher_is_better=higher_is_better)
    needed = seeds_to_conclude(mean, low, high, n) if verdict == "inconclusive" else None
    return PairedEstimate(n, mean, low, high, verdict, seeds_needed=needed)


@dataclass(frozen=True)
class Comparison:
    """One series against the reference on one problem, for one quantity."""

    problem: str
    series: str
    reference: str
    quantity: Quantity
    label: str  # what is compared, e.g. "test accuracy (%)"
    higher_is_better: bool
    estimate: PairedEstimate
    diverged: int = 0  # seeds where the series diverged (metric: left out of the pairs)
    reference_diverged: int = 0


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def metric_of(runs: Sequence[Run]) -> tuple[str, bool, str]:
    """(label, higher is better, run attribute) of the final metric of one problem's runs."""
    if any(run.test_accuracy is not None for run in runs):
        return "test accuracy (%)", True, "test_accuracy"
    if any(_finite(run.test_loss) for run in runs):
        return "test loss", False, "test_loss"
    return "final validation loss", False, "final_val_loss"


def _metric_value(run: Run, attribute: str) -> float:
    value = getattr(run, attribute)
    if run.diverged or value is None:
        return math.nan
    return float(value) * (100.0 if attribute == "test_accuracy" else 1.0)


def _time_value(run: Run) -> float:
    if run.evaluations_to_target is not None:
        return float(run.evaluations_to_target)
    budget = run.budget if run.budget is not None else run.evaluations
    return math.nan if budget is None else float(budget)


def reference_series(runs: Sequence[Run], reference: str) -> str | None:
    """The series of ``reference`` on a problem: the one labelled exactly ``reference``,
    else the first (sorted) series of that optimizer; None when it did not run there."""
    labels = sorted({run.series or run.optimizer for run in runs if run.optimizer == reference})
    if not labels:
        return None
    return reference if reference in labels else labels[0]


def compare_problem(runs: Sequence[Run], reference: str) -> list[Comparison]:
    """Every other series of one problem against ``reference``: metric and time to target.

    Empty when ``reference`` has no runs on the problem.
    """
    base = reference_series(runs, reference)
    if base is None:
        return []
    by_series: dict[str, dict[tuple[int | None, ...], Run]] = {}
    for run in runs:
        by_series.setdefault(run.series or run.optimizer, {})[run.seed] = run
    metric = metric_of(runs)
    reached = any(run.evaluations_to_target is not None for run in runs)
    comparisons = []
    for series in sorted(by_series):
        if series != base:
            comparisons += _pair(by_series[series], by_series[base], series, base, metric, reached)
    return comparisons


def _pair(
    mine: dict[tuple[int | None, ...], Run],
    base_runs: dict[tuple[int | None, ...], Run],
    series: str,
    base: str,
    metric: tuple[str, bool, str],
    reached: bool,
) -> list[Comparison]:
    """The two comparisons (metric, time) of one series with the reference series."""
    label, higher, attribute = metric
    seeds = sorted(set(mine) & set(base_runs), key=lambda s: [-1 if v is None else v for v in s])
    ours = [mine[s] for s in seeds]
    theirs = [base_runs[s] for s in seeds]
    diverged = sum(run.diverged for run in ours)
    reference_diverged = sum(run.diverged for run in theirs)
    if not seeds:
        metric_estimate = time_estimate = PairedEstimate(
            0, None, None, None, "inconclusive", "no common seeds"
        )
    else:
        metric_estimate = _divergence_verdict(
            paired_bootstrap(
                [_metric_value(run, attribute) for run in ours],
                [_metric_value(run, attribute) for run in theirs],
                higher_is_better=higher,
            ),
            len(seeds),
            diverged,
            reference_diverged,
        )
        time_estimate = (
            paired_bootstrap(
                [_time_value(run) for run in ours],
                [_time_value(run) for run in theirs],
                higher_is_better=False,
                seeds_vary=_vary([*ours, *theirs]) or None,  # else judged by the times
            )
            if reached
            else PairedEstimate(len(seeds), None, None, None, "inconclusive", "none reached")
        )
    first = Comparison(
        problem=next(iter(mine.values())).problem,
        series=series,
        reference=base,
        quantity="metric",
        label=label,
        higher_is_better=higher,
        estimate=metric_estimate,
        diverged=diverged,
        reference_diverged=reference_diverged,
    )
    second = replace(
        first,
        quantity="time",
        label="grad evals to target",
        higher_is_better=False,
        estimate=time_estimate,
    )
    return [first, second]


def _vary(runs: Sequence[Run]) -> bool:
    """Whether a series' final validation loss, test loss or test accuracy changes over its
    seeds."""
    seen: dict[tuple[str, str], set[float]] = {}
    for run in runs:
        for name in ("final_val_loss", "test_loss", "test_accuracy"):
            value = getattr(run, name)
            if value is not None and math.isfinite(value):
                seen.setdefault((run.series or run.optimizer, name), set()).add(value)
    return any(len(values) > 1 for values in seen.values())


def _divergence_verdict(
    estimate: PairedEstimate, seeds: int, diverged: int, reference_diverged: int
) -> PairedEstimate:
    """Too few finite pairs because one side diverged on every one of at least
    :data:`MIN_SEEDS` seeds and the other did not: that side is worse."""
    if estimate.n >= MIN_SEEDS or seeds < MIN_SEEDS:
        return estimate
    if diverged == seeds and reference_diverged < seeds:
        return PairedEstimate(estimate.n, None, None, None, "worse", "diverged on every seed")
    if reference_diverged == seeds and diverged < seeds:
        return PairedEstimate(
            estimate.n, None, None, None, "better", "the reference diverged on every seed"
        )
    return estimate


def compare(runs: Iterable[Run], reference: str = DEFAULT_REFERENCE) -> list[Comparison]:
    """:func:`compare_problem` on every problem of ``runs`` (problems sorted)."""
    by_problem: dict[str, list[Run]] = {}
    for run in runs:
        by_problem.setdefault(run.problem, []).append(run)
    return [
        c for problem in sorted(by_problem) for c in compare_problem(by_problem[problem], reference)
    ]


@dataclass(frozen=True)
class Tally:
    """Wins (better), ties (inconclusive) and losses (worse) of one series over problems."""

    wins: int = 0
    ties: int = 0
    losses: int = 0

    def add(self, verdict: Verdict) -> Tally:
        """This tally with one more verdict."""
        return Tally(
            self.wins + (verdict == "better"),
            self.ties + (verdict == "inconclusive"),
            self.losses + (verdict == "worse"),
        )

    def text(self) -> str:
        """``"wins/ties/losses"``."""
        return f"{self.wins}/{self.ties}/{self.losses}"


def win_tie_loss(comparisons: Iterable[Comparison]) -> dict[str, dict[Quantity, Tally]]:
    """Per series, per quantity: its verdicts against the reference counted over problems."""
    table: dict[str, dict[Quantity, Tally]] = {}
    for comparison in comparisons:
        row = table.setdefault(comparison.series, {"metric": Tally(), "time": Tally()})
        row[comparison.quantity] = row[comparison.quantity].add(comparison.estimate.verdict)
    return dict(sorted(table.items()))
