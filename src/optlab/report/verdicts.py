"""The report's section on verdicts against a reference optimizer (default ``adam``).

Uses :mod:`optlab.report.statistics` for the numbers and writes, into a report document
(anything with ``heading``/``paragraph``/``table``, as :class:`optlab.report.document.Document`):

- a win/tie/loss table across problems: per optimizer, on how many problems it was better,
  inconclusive or worse than the reference, for the final metric and for the time to target;
- one row per problem and optimizer: the mean paired difference with its 95% bootstrap
  interval, the verdict and, where inconclusive, the seeds the observed difference would
  need to be conclusive.

:func:`method_sentences` is the method, for the report's "How these numbers were measured".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optlab.report.formatting import MISSING, compact
from optlab.report.frames import ReportError, Run
from optlab.report.statistics import (
    CONFIDENCE,
    DEFAULT_REFERENCE,
    MIN_SEEDS,
    RESAMPLES,
    Comparison,
    PairedEstimate,
    compare,
    win_tie_loss,
)
from optlab.report.tables import Table

SEEDS_SHOWN = 1000
"""Seeds needed above this are written ``> 1000``."""


def method_sentences(reference: str | None = None) -> list[str]:
    """How the comparisons are made, for the report's method section."""
    name = reference or DEFAULT_REFERENCE
    return [
        f"Verdicts: every optimizer against the reference `{name}`, paired by seed (the same "
        "instance, init and data-order seed). Compared: the final metric (test accuracy in "
        "percent where the problem has one, higher is better; else the test loss, lower is "
        "better) and the gradient evaluations to the target (a seed that never reached it "
        "counts at its budget, a lower bound, so such differences are understated). "
        f"The {CONFIDENCE:.0%} interval is the BCa bootstrap interval of the mean per-seed "
        f"difference (`scipy.stats.bootstrap`, {RESAMPLES} resamples, fixed seed; the "
        "per-seed differences are resampled, which keeps the pairing). **better** / **worse**: "
        "the interval excludes 0; otherwise **inconclusive** (a tie in the win/tie/loss "
        f"table). Fewer than {MIN_SEEDS} paired seeds, or runs that do not change with the "
        "seed, give no verdict; a seed whose run diverged is left out of the metric's pairs, and "
        "diverging on every seed where the reference did not is worse. "
        "Seeds needed (an estimate, assuming the spread per seed stays as observed): the "
        "interval's side towards 0 shrinks like 1/sqrt(n); the smallest n at which it would "
        "no longer reach 0. Bootstrap intervals from few seeds are too narrow rather than too "
        "wide: read a verdict from 3-5 seeds as provisional.",
    ]


def _difference(estimate: PairedEstimate) -> str:
    if estimate.mean is None:
        return MISSING
    text = ("+" if estimate.mean > 0 else "") + compact(estimate.mean)
    if estimate.low is not None and estimate.high is not None:
        text += f" [{compact(estimate.low)}, {compact(estimate.high)}]"
    return text


def _verdict(estimate: PairedEstimate) -> str:
    return f"{estimate.verdict} ({estimate.reason})" if estimate.reason else estimate.verdict


def _needed(estimate: PairedEstimate) -> str:
    if estimate.seeds_needed is None:
        return MISSING
    if estimate.seeds_needed > SEEDS_SHOWN:
        return f"> {SEEDS_SHOWN}"
    return f"≈ {estimate.seeds_needed}"


def _pairs(metric: Comparison) -> str:
    text = str(metric.estimate.n)
    if metric.diverged or metric.reference_diverged:
        text += f" (diverged: {metric.diverged} / ref {metric.reference_diverged})"
    return text


def comparison_table(comparisons: Sequence[Comparison]) -> Table:
    """One row per problem and optimizer: metric and time to target against the reference."""
    rows, bold = [], set()
    metrics = [c for c in comparisons if c.quantity == "metric"]
    times = {(c.problem, c.series): c for c in comparisons if c.quantity == "time"}
    for metric in metrics:
        time = times[(metric.problem, metric.series)]
        direction = "higher" if metric.higher_is_better else "lower"
        row = (
            metric.problem,
            metric.series,
            f"{metric.label}, {direction} is better",
            _pairs(metric),
            _difference(metric.estimate),
            _verdict(metric.estimate),
            _needed(metric.estimate),
            _difference(time.estimate),
            _verdict(time.estimate),
            _needed(time.estimate),
        )
        index = len(rows)
        bold |= {(index, 5)} if metric.estimate.verdict != "inconclusive" else set()
        bold |= {(index, 8)} if time.estimate.verdict != "inconclusive" else set()
        rows.append(row)
    return Table(
        columns=(
            "problem",
            "optimizer",
            "final metric",
            "paired seeds",
            "Δ metric [95% CI]",
            "verdict",
            "seeds needed",
            "Δ grad evals to target [95% CI]",
            "verdict",
            "seeds needed",
        ),
        rows=tuple(rows),
        bold=frozenset(bold),
        align=("l", "l", "l", "r", "r", "l", "r", "r", "l", "r"),
        notes=(
            "Δ: optimizer minus reference, mean over paired seeds; [95% CI]: paired BCa "
            "bootstrap interval; seeds needed: an estimate, for inconclusive differences",
        ),
    )


def tally_table(comparisons: Sequence[Comparison]) -> Table:
    """Per optimizer: wins/ties/losses against the reference over problems."""
    tallies = win_tie_loss(comparisons)
    problems: dict[str, set[str]] = {}
    for comparison in comparisons:
        problems.setdefault(comparison.series, set()).add(comparison.problem)
    rows = tuple(
        (series, row["metric"].text(), row["time"].text(), str(len(problems[series])))
        for series, row in tallies.items()
    )
    return Table(
        columns=("optimizer", "final metric: W/T/L", "time to target: W/T/L", "problems"),
        rows=rows,
        align=("l", "r", "r", "r"),
        notes=(
            "W/T/L: problems where the optimizer was better / inconclusive / worse than the "
            "reference (the 95% paired bootstrap interval of the difference)",
        ),
    )


def check_reference(runs: Sequence[Run], reference: str | None) -> None:
    """Raise when ``reference`` was given by name and has no reported runs in ``runs``.

    Raises:
        ReportError: naming the reference and the optimizers that did run.
    """
    optimizers = sorted({run.optimizer for run in runs})
    if reference is not None and runs and reference not in optimizers:
        raise ReportError(
            f"reference optimizer {reference!r} has no reported runs in this store; "
            f"choose one of: {', '.join(optimizers)}"
        )


def write_section(doc: Any, runs: Sequence[Run], reference: str | None = None) -> None:
    """Add the verdicts section to ``doc`` (nothing when there are no runs).

    ``reference`` None means :data:`~optlab.report.statistics.DEFAULT_REFERENCE`, and a
    store without it gets a sentence saying so; a reference given by name that has no
    runs in the store is an error.

    Raises:
        ReportError: ``reference`` was given and has no reported runs.
    """
    if not runs:
        return
    check_reference(runs, reference)
    optimizers = sorted({run.optimizer for run in runs})
    name = reference or DEFAULT_REFERENCE
    doc.heading(2, f"Against the reference ({name}): verdicts over seeds", "verdicts")
    if name not in optimizers:
        doc.paragraph(
            f"The reference `{name}` has no runs here: no verdicts. Choose another with "
            f"`--reference` (one of: {', '.join(f'`{o}`' for o in optimizers)})."
        )
        return
    comparisons = compare(runs, name)
    compared = {run.problem for run in runs if run.optimizer == name}
    missing = sorted({run.problem for run in runs} - compared)
    doc.paragraph(
        f"Each optimizer against `{name}`, paired by seed: the mean difference with its 95% "
        "bootstrap interval and a verdict (better / worse when the interval excludes 0, else "
        "inconclusive). Method: see *How these numbers were measured*."
        + (f" Not compared (no `{name}` runs): {', '.join(missing)}." if missing else "")
    )
    if not comparisons:
        return
    doc.paragraph("**Across problems: wins / ties / losses against the reference**")
    doc.table(tally_table(comparisons))
    doc.paragraph("**Per problem**")
    doc.table(comparison_table(comparisons))
