"""Per-problem summary over seeds, and tables written as Markdown or HTML.

:func:`summarise` aggregates the reported runs of one problem into one
:class:`SeriesSummary` per optimizer (per series: see :mod:`optlab.report.frames`):
the tuned learning rate, the seed-wise final/best validation loss, test loss and accuracy,
the median time to the target and the number of diverged seeds.

Conventions, stated in the report too:

- ``mean ± std`` is over the seeds whose value is finite (sample std); an optimizer whose
  every seed diverged shows ``-``. A ``†`` marks a mean over fewer seeds than were run
  because some diverged.
- Time to target is the *median over all seeds* where a seed that never reached the target
  counts as infinite (the same rule as the performance profile): it is ``-`` when fewer
  than half of the seeds reached it. ``(k/n)`` says how many did.
- The best optimizer of a problem (bold) has the fewest diverged seeds and, among those,
  the lowest mean final validation loss.

A :class:`Table` is plain text cells plus which cells are bold; :func:`to_markdown` and
:func:`to_html` write it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from optlab.report.formatting import MISSING, compact, mean_std, short
from optlab.report.frames import Run, TuningOutcome

DIVERGED_MARK = "†"


@dataclass(frozen=True)
class Table:
    """Text cells with a header; ``bold`` holds (row, column) indices; ``align`` is l/r."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    bold: frozenset[tuple[int, int]] = frozenset()
    align: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def alignment(self, column: int) -> str:
        """``"l"`` or ``"r"`` for ``column`` (left for the first column by default)."""
        if column < len(self.align):
            return self.align[column]
        return "l" if column == 0 else "r"


@dataclass(frozen=True)
class SeriesSummary:
    """One optimizer (series) on one problem, over its seeds."""

    problem: str
    series: str
    optimizer: str
    lr: float | None
    tuned_lr: float | None
    tuning_all_diverged: bool
    runs: int
    diverged: int
    final_val_loss: tuple[float, ...]
    best_val_loss: tuple[float, ...]
    test_loss: tuple[float, ...]
    test_accuracy: tuple[float, ...]
    reached: int
    steps_to_target: float | None
    evaluations_to_target: float | None
    seconds_to_target: float | None
    counts_differ: bool = False

    @property
    def mean_final_val_loss(self) -> float:
        """Mean final validation loss over the seeds where it is finite (inf when none)."""
        finite = [v for v in self.final_val_loss if math.isfinite(v)]
        return math.fsum(finite) / len(finite) if finite else math.inf

    @property
    def rank_key(self) -> tuple[int, float]:
        """Fewest diverged seeds first, then the lowest mean final validation loss."""
        return (self.diverged, self.mean_final_val_loss)


def median_to_target(values: Iterable[float | None]) -> float | None:
    """Median over seeds where None (never reached) counts as +inf; None if that is inf."""
    numbers = [math.inf if v is None else float(v) for v in values]
    if not numbers:
        return None
    median = float(np.median(numbers))
    return median if math.isfinite(median) else None


def _tuned(
    outcomes: Sequence[TuningOutcome], optimizer: str, lr: float | None
) -> TuningOutcome | None:
    candidates = [o for o in outcomes if o.optimizer == optimizer and o.best_lr is not None]
    for outcome in candidates:
        if lr is not None and math.isclose(outcome.best_lr, lr, rel_tol=1e-9):
            return outcome
    return None


def summarise(runs: Sequence[Run], tuning: Sequence[TuningOutcome] = ()) -> list[SeriesSummary]:
    """One summary per series of ``runs`` (one problem), best first (see :attr:`rank_key`)."""
    by_series: dict[str, list[Run]] = {}
    for run in runs:
        by_series.setdefault(run.series or run.optimizer, []).append(run)
    summaries = []
    for series, group in by_series.items():
        first = group[0]
        outcome = _tuned(tuning, first.optimizer, first.lr)
        summaries.append(
            SeriesSummary(
                problem=first.problem,
                series=series,
                optimizer=first.optimizer,
                lr=first.lr,
                tuned_lr=outcome.best_lr if outcome else None,
                tuning_all_diverged=outcome.all_diverged if outcome else False,
                runs=len(group),
                diverged=sum(run.diverged for run in group),
                final_val_loss=tuple(run.final_val_loss for run in group),
                best_val_loss=tuple(run.best_val_loss for run in group),
                test_loss=tuple(run.test_loss for run in group),
                test_accuracy=tuple(
                    run.test_accuracy for run in group if run.test_accuracy is not None
                ),
                reached=sum(run.evaluations_to_target is not None for run in group),
                steps_to_target=median_to_target(run.steps_to_target for run in group),
                evaluations_to_target=median_to_target(run.evaluations_to_target for run in group),
                seconds_to_target=median_to_target(run.seconds_to_target for run in group),
                counts_differ=any(
                    run.steps_to_target != run.evaluations_to_target for run in group
                ),
            )
        )
    summaries.sort(key=lambda s: (*s.rank_key, s.series))
    return summaries


def best_series(summaries: Sequence[SeriesSummary]) -> str | None:
    """The series shown in bold: the first by rank with a finite mean final loss."""
    ranked = sorted(summaries, key=lambda s: s.rank_key)
    if ranked and math.isfinite(ranked[0].mean_final_val_loss):
        return ranked[0].series
    return None


def count(value: float | None) -> str:
    """A count (steps, evaluations): whole numbers without decimals, ``-`` for None."""
    if value is None:
        return MISSING
    return str(round(value)) if abs(value) >= 100 or value == int(value) else compact(value)


def _loss_cell(values: Sequence[float], diverged: int) -> str:
    text = mean_std(values)
    finite = sum(math.isfinite(v) for v in values)
    if diverged and text != MISSING and finite < len(values):
        text += f" {DIVERGED_MARK}"
    return text


def _lr_cell(summary: SeriesSummary) -> str:
    if summary.tuned_lr is None:
        return MISSING
    text = short(summary.tuned_lr)
    return f"{text} (all trials diverged)" if summary.tuning_all_diverged else text


def summary_table(summaries: Sequence[SeriesSummary], *, accuracy: bool) -> Table:
    """The per-problem table (see the module docstring for the conventions)."""
    steps_and_evaluations = any(s.counts_differ for s in summaries)
    columns = ["optimizer", "tuned lr", "final val loss", "best val loss", "test loss"]
    if accuracy:
        columns.append("test accuracy (%)")
    columns.append("steps to target")
    if steps_and_evaluations:
        columns.append("grad evals to target")
    columns += ["time to target (s)", "diverged"]
    best = best_series(summaries)
    rows, bold = [], set()
    for index, s in enumerate(summaries):
        reached = f"({s.reached}/{s.runs})"
        row = [
            s.series,
            _lr_cell(s),
            _loss_cell(s.final_val_loss, s.diverged),
            _loss_cell(s.best_val_loss, s.diverged),
            _loss_cell(s.test_loss, s.diverged),
        ]
        if accuracy:
            row.append(mean_std(s.test_accuracy, scale=100.0))
        row.append(f"{count(s.steps_to_target)} {reached}")
        if steps_and_evaluations:
            row.append(f"{count(s.evaluations_to_target)} {reached}")
        row += [compact(s.seconds_to_target), f"{s.diverged}/{s.runs}"]
        rows.append(tuple(row))
        if s.series == best:
            bold |= {(index, 0), (index, 2)}
    notes = [
        "mean ± std over seeds; bold: best final validation loss (fewest diverged seeds first)",
        "to target: median over seeds, a seed that never reached the target counting as "
        "infinite; (k/n): seeds that reached it",
    ]
    if any(s.diverged and any(math.isfinite(v) for v in s.final_val_loss) for s in summaries):
        notes.append(f"{DIVERGED_MARK} mean over the seeds that did not diverge")
    if steps_and_evaluations:
        notes.append("an L-BFGS step may use several gradient evaluations (closure calls)")
    return Table(
        columns=tuple(columns),
        rows=tuple(rows),
        bold=frozenset(bold),
        align=("l", *("r" for _ in columns[1:])),
        notes=tuple(notes),
    )


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table (notes follow as an italic line each)."""
    header = "| " + " | ".join(_markdown_cell(c) for c in table.columns) + " |"
    rule = (
        "|"
        + "|".join(
            ":---" if table.alignment(i) == "l" else "---:" for i in range(len(table.columns))
        )
        + "|"
    )
    lines = [header, rule]
    for r, row in enumerate(table.rows):
        cells = []
        for c, cell in enumerate(row):
            text = _markdown_cell(cell)
            cells.append(f"**{text}**" if (r, c) in table.bold and text else text)
        lines.append("| " + " | ".join(cells) + " |")
    if table.notes:
        lines.append("")
        lines += [f"*{_markdown_cell(note)}*  " for note in table.notes]
    return "\n".join(lines)


def to_html(table: Table) -> str:
    """An HTML ``<table>`` (notes in a ``<p class="notes">`` after it)."""
    parts = ["<table>", "<thead><tr>"]
    for i, column in enumerate(table.columns):
        parts.append(f'<th class="{table.alignment(i)}">{html.escape(column)}</th>')
    parts.append("</tr></thead>")
    parts.append("<tbody>")
    for r, row in enumerate(table.rows):
        parts.append("<tr>")
        for c, cell in enumerate(row):
            text = html.escape(cell)
            if (r, c) in table.bold:
                text = f"<strong>{text}</strong>"
            parts.append(f'<td class="{table.alignment(c)}">{text}</td>')
        parts.append("</tr>")
    parts.append("</tbody></table>")
    if table.notes:
        notes = "<br>".join(html.escape(note) for note in table.notes)
        parts.append(f'<p class="notes">{notes}</p>')
    return "".join(parts)


@dataclass
class ProblemFacts:
    """One line about a problem: target, optimum, budget, seeds (for the section header)."""

    target: float | None = None
    optimum: float | None = None
    budget: int | None = None
    seeds: int = 0
    extra: list[str] = field(default_factory=list)

    def line(self) -> str:
        """``"target: validation loss ≤ 1e-6 · optimum: 0 · ..."``."""
        parts = []
        if self.target is not None:
            parts.append(f"target: validation loss ≤ {compact(self.target)}")
        if self.optimum is not None:
            parts.append(f"known optimum: {compact(self.optimum)}")
        if self.budget is not None:
            parts.append(f"budget: {self.budget} gradient evaluations")
        parts.append(f"{self.seeds} seed{'s' if self.seeds != 1 else ''}")
        return " · ".join(parts + self.extra)
