"""Assemble the report: the same content written as Markdown and as self-contained HTML.

:func:`write_report` reads a results store (:mod:`optlab.report.frames`), draws the figures
(:mod:`optlab.report.figures`) into ``out_dir/figures/``, and writes ``report.md`` (which
links the PNG files) and ``report.html``, an interactive page where each figure is a Plotly
chart of the same numbers (:mod:`optlab.report.charts`); the page embeds everything it needs
and makes no request (:mod:`optlab.report.interactive`), so the one file can be mailed or
archived.

Layout: a header (counts, notes, how the numbers were measured, how to reproduce), an
overview table (best optimizer per problem), the performance profiles across problems, then
one section per problem: its summary table, the validation-loss curves, the trajectories
(2-D analytic problems), the test-accuracy bars (problems with accuracy) and the tuning
trials.
"""

from __future__ import annotations

import base64
import html
import importlib
import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from optlab.bench.store import ResultsStore
from optlab.durable import write_atomic
from optlab.report import (
    charts,
    claims,
    halving,
    halving_charts,
    interactive,
    problem_charts,
    verdicts,
)
from optlab.report import figures as plots
from optlab.report.charts import Chart
from optlab.report.formatting import MISSING, compact, short, slug, unique_names
from optlab.report.frames import (
    Run,
    StoreView,
    TuningOutcome,
    check_destination,
    load,
    open_store,
)
from optlab.report.landscape import Landscape
from optlab.report.profile import performance_profile, profile_table, times_to_target
from optlab.report.tables import (
    SeriesSummary,
    Table,
    best_series,
    count,
    summarise,
    summary_table,
    to_html,
    to_markdown,
)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1150px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f0f0f0; }
tbody tr:nth-child(even) { background: #fafafa; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
td.l, th.l { text-align: left; }
p.notes { font-size: .8em; color: #555; margin-top: -.4em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #444; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
.facts { color: #444; }
"""


def _inline_html(text: str) -> str:
    """Escape ``text`` and turn ``code`` and **bold** spans into HTML."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)


@dataclass
class Document:
    """Blocks written twice, as Markdown and as HTML, relative to ``root``."""

    root: Path
    markdown: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    chart_count: int = 0

    def heading(
        self, level: int, text: str, anchor: str | None = None, css: str | None = None
    ) -> None:
        """A section heading (``anchor`` becomes the HTML id, ``css`` its class)."""
        self.markdown.append(f"{'#' * level} {text}")
        ident = f' id="{html.escape(anchor)}"' if anchor else ""
        klass = f' class="{css}"' if css else ""
        self.html.append(f"<h{level}{ident}{klass}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, css: str | None = None) -> None:
        """A paragraph (``code`` and **bold** spans allowed)."""
        self.markdown.append(text)
        klass = f' class="{css}"' if css else ""
        self.html.append(f"<p{klass}>{_inline_html(text)}</p>")

    def bullets(self, items: Sequence[str], links: Sequence[str | None] = ()) -> None:
        """A bulleted list; ``links`` optionally gives an in-page anchor per item."""
        if not items:
            return
        self.markdown.append("\n".join(f"- {item}" for item in items))
        entries = []
        for i, item in enumerate(items):
            anchor = links[i] if i < len(links) else None
            text = _inline_html(item)
            if anchor:
                text = f'<a href="#{html.escape(anchor)}">{text}</a>'
            entries.append(f"<li>{text}</li>")
        self.html.append("<ul>" + "".join(entries) + "</ul>")

    def table(self, table: Table) -> None:
        """A table."""
        self.markdown.append(to_markdown(table))
        self.html.append(to_html(table))

    def figure(self, path: Path, caption: str, chart: Chart | None = None) -> None:
        """A figure: linked in Markdown; in HTML, ``chart`` (interactive) when given, else
        the PNG embedded as base64."""
        relative = path.relative_to(self.root).as_posix()
        self.markdown.append(f"![{path.stem}]({relative})\n\n*{caption}*")
        if chart is not None:
            self.chart_count += 1
            self.html.append(
                interactive.chart_html(chart, _inline_html(caption), f"chart-{self.chart_count}")
            )
            return
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.html.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{_inline_html(caption)}</figcaption></figure>"
        )

    def as_markdown(self) -> str:
        """The Markdown text."""
        return "\n\n".join(self.markdown) + "\n"

    def as_html(self, title: str) -> str:
        """A complete, self-contained interactive HTML page."""
        return interactive.page(title, self.html, CSS, charts=self.chart_count > 0)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def tuning_procedure(outcomes: Sequence[TuningOutcome]) -> list[str]:
    """One sentence per distinct tuning procedure found in the store."""
    if not outcomes:
        return [
            "No tuning records in the store: every optimizer ran at a fixed learning rate "
            "(the *tuned lr* column shows `-`)."
        ]
    groups: dict[tuple[object, ...], list[TuningOutcome]] = {}
    for outcome in outcomes:
        key = (outcome.trial_count, outcome.lr_range, outcome.sampler, outcome.seed)
        groups.setdefault(key, []).append(outcome)
    sentences = []
    for (trials, lr_range, sampler, seed), members in groups.items():
        parts = [f"{trials} learning rates per optimizer and problem"]
        if lr_range is not None:
            parts.append(f"log-uniform in [{short(lr_range[0])}, {short(lr_range[1])}]")
        if sampler == "grid":
            parts.append("grid sampler: the same log-spaced points for every optimizer")
        elif sampler:
            parts.append(f"{sampler} sampler (Optuna)")
        if seed is not None:
            parts.append(f"tuning seed {seed} (kept apart from the reported seeds)")
        budgets = sorted({m.budget for m in members if m.budget is not None})
        if len(budgets) == 1:
            parts.append(f"budget {budgets[0]} gradient evaluations")
        elif budgets:
            parts.append(
                f"each trial with its problem's full budget ({budgets[0]}-{budgets[-1]} "
                "gradient evaluations)"
            )
        problems = sorted({m.problem for m in members})
        where = f"{len(members)} tuning outcomes on {_plural(len(problems), 'problem')}"
        sentences.append(
            "Tuning: " + ", ".join(parts) + "; each trial trains on the training split and is "
            "scored by its final validation loss (a diverged trial counts as +inf), the lowest "
            f"wins ({where})."
        )
    return sentences


def _header(
    doc: Document, view: StoreView, title: str, notes: Sequence[str], reference: str | None = None
) -> None:
    doc.heading(1, title)
    counts = (
        f"**{_plural(len(view.problems), 'problem')}**, "
        f"**{_plural(len(view.optimizers), 'optimizer')}**, "
        f"**{_plural(len(view.seeds), 'seed')}**, "
        f"{_plural(len(view.runs), 'reported run')} "
        f"(+ {_plural(view.tuning_trials, 'tuning trial')}). "
        f"Results store: `{view.root}`."
    )
    doc.paragraph(counts)
    if notes:
        doc.heading(2, "Notes", "notes")
        doc.bullets([str(note) for note in notes])
    doc.heading(2, "How these numbers were measured", "method")
    seeds = ", ".join(_seed_text(seed) for seed in view.seeds) or MISSING
    doc.bullets(
        [
            *tuning_procedure(view.tuning),
            "Reported runs: each optimizer at its chosen learning rate on every seed "
            f"(init/data-order seeds: {seeds}); budgets count gradient evaluations; the test "
            "split is evaluated once, at the end of a run.",
            "Tables: mean ± std over seeds; the time to target is the median over seeds, a "
            "seed that never reached the problem's target counting as infinite.",
            *_timing_sentences(view.runs),
            *verdicts.method_sentences(reference),
            f"Reproduce this report: `optlab report {view.root}`.",
        ]
    )


def _timing_sentences(runs: Sequence[Run]) -> list[str]:
    """How wall time was taken, where some runs trained as populations."""
    together = [run for run in runs if run.path == "population"]
    if not together:
        return []
    lone = sorted({run.optimizer for run in runs} - {run.optimizer for run in together})
    return [
        f"Wall time: {len(together)} of {_plural(len(runs), 'reported run')} trained as "
        'populations (an optimizer\'s seeds at once, `path = "population"` in their '
        "records); their seconds are each member's share of the population's step time, "
        "less than a lone run's where vectorising pays"
        + (f" ({', '.join(lone)} always ran alone)" if lone else "")
        + ". Compare seconds between runs trained the same way; the losses, gradient "
        "evaluations and verdicts do not depend on it."
    ]


def _seed_text(seed: tuple[int | None, int | None, int | None]) -> str:
    _, init, data = seed
    return str(init) if init == data else f"{init}/{data}"


def _description(problem: str) -> str | None:
    try:
        problems = importlib.import_module("optlab.problems")
        return str(problems.spec(problem).description)
    except Exception:
        # The description is decoration: a missing or unknown problem leaves it out.
        return None


@dataclass
class _Context:
    view: StoreView
    doc: Document
    figures_dir: Path
    palette: plots.Palette
    written: list[Path] = field(default_factory=list)
    name: Callable[[str], str] = field(default_factory=lambda: unique_names(slug))

    def save(self, figure: Figure, problem: str, kind: str) -> Path:
        stem = self.name(problem)
        path = plots.save(figure, self.figures_dir / f"{stem}-{kind}.png")
        self.written.append(path)
        return path


def _overview(ctx: _Context, summaries: dict[str, list[SeriesSummary]]) -> None:
    rows = []
    for problem, items in summaries.items():
        best = best_series(items)
        chosen = next((s for s in items if s.series == best), None)
        reached = [s for s in items if s.evaluations_to_target is not None]
        fastest = min(reached, key=lambda s: s.evaluations_to_target, default=None)
        diverged = sum(s.diverged for s in items)
        runs = sum(s.runs for s in items)
        rows.append(
            (
                problem,
                best or "(all diverged)",
                compact(chosen.mean_final_val_loss) if chosen else MISSING,
                f"{fastest.series} ({count(fastest.evaluations_to_target)})"
                if fastest
                else "none reached the target",
                f"{diverged}/{runs}",
            )
        )
    ctx.doc.heading(2, "Overview", "overview")
    ctx.doc.table(
        Table(
            columns=(
                "problem",
                "best final val loss",
                "its mean",
                "fastest to target (median grad evals)",
                "diverged runs",
            ),
            rows=tuple(rows),
            align=("l", "l", "r", "l", "r"),
        )
    )


def _profiles(ctx: _Context) -> None:
    runs = ctx.view.runs
    series = ctx.view.series
    profiles = {
        "gradient evaluations": performance_profile(
            times_to_target(runs, lambda r: r.evaluations_to_target), series
        ),
        "seconds": performance_profile(
            times_to_target(runs, lambda r: r.seconds_to_target), series
        ),
    }
    doc = ctx.doc
    doc.heading(2, "Across problems: performance profiles", "profiles")
    doc.paragraph(
        "For each problem, an optimizer's time to target (median over seeds; never reached "
        "= infinite) is divided by the fastest optimizer's; ρ(τ) is the fraction of problems "
        "it reaches within τ times the fastest. Higher and further left is better; the "
        "height at the right end is the fraction of problems it solves at all."
    )
    path = ctx.save(plots.profile_figure(profiles, ctx.palette), "all-problems", "profile")
    doc.figure(
        path,
        "Performance profiles on gradient evaluations and on wall time",
        charts.profile_chart(profiles, ctx.palette),
    )
    for title, profile in profiles.items():
        doc.paragraph(f"**Ranked by area under the profile, {title} to target**")
        doc.table(profile_table(profile))


def _problem_section(ctx: _Context, problem: str, summaries: list[SeriesSummary]) -> None:
    view, doc = ctx.view, ctx.doc
    runs = view.runs_of(problem)
    outcomes = view.tuning_of(problem)
    target = next((r.target for r in runs if r.target is not None), None)
    optimum = next((r.optimum for r in runs if r.optimum is not None), None)
    accuracy = any(run.has_accuracy for run in runs)
    budgets = [o.budget for o in outcomes if o.budget is not None]
    doc.heading(2, problem, ctx.name(problem), "problem")
    description = _description(problem)
    facts = []
    if target is not None:
        facts.append(f"target: validation loss ≤ {compact(target)}")
    if optimum is not None:
        facts.append(f"known optimum: {compact(optimum)}")
    if budgets:
        facts.append(f"budget: {max(budgets)} gradient evaluations")
    facts.append(_plural(len({r.seed for r in runs}), "seed"))
    doc.paragraph(((description + ". ") if description else "") + " · ".join(facts), "facts")
    if all(run.diverged for run in runs):
        doc.paragraph("**Every run on this problem diverged.**")
    doc.table(summary_table(summaries, accuracy=accuracy))
    path = ctx.save(plots.loss_curves_figure(problem, runs, ctx.palette), problem, "loss")
    doc.figure(
        path,
        f"{problem}: validation loss against gradient evaluations (mean over seeds, band: "
        "min-max, dashed: target, ×: a seed diverged there)",
        problem_charts.loss_chart(problem, runs, ctx.palette),
    )
    trajectories = [run for run in runs if _is_2d(run)]
    if trajectories:
        seed = trajectories[0].seed[0]
        landscape = _landscape(problem, seed)
        figure = plots.trajectory_figure(problem, trajectories, ctx.palette, landscape)
        path = ctx.save(figure, problem, "trajectories")
        chart = problem_charts.trajectory_chart(problem, trajectories, ctx.palette, landscape)
        doc.figure(path, f"{problem}: optimizer paths (first seed) over log-spaced contours", chart)
    if accuracy:
        path = ctx.save(plots.accuracy_figure(problem, summaries, ctx.palette), problem, "accuracy")
        chart = problem_charts.accuracy_chart(problem, summaries, ctx.palette)
        doc.figure(path, f"{problem}: test accuracy per optimizer over seeds", chart)
    if outcomes:
        figure = plots.tuning_figure(problem, outcomes, ctx.palette, optimum, target)
        path = ctx.save(figure, problem, "tuning")
        chart = problem_charts.tuning_chart(problem, outcomes, ctx.palette, optimum, target)
        doc.figure(
            path, f"{problem}: tuning trials (final validation loss per learning rate)", chart
        )


def _is_2d(run: Run) -> bool:
    trajectory = run.trajectory
    return bool(trajectory) and all(len(point) == 2 for point in trajectory[:1])


def _landscape(problem: str, instance_seed: int | None) -> Landscape | None:
    # Looked up through the module so that tests can replace it.
    from optlab.report import landscape

    return landscape.load_landscape(problem, instance_seed)


def write_report(
    store: ResultsStore | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    title: str = "optlab benchmark",
    notes: Sequence[str] = (),
    keys: Collection[str] | None = None,
    reference: str | None = None,
) -> dict[str, Path | list[Path]]:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` under ``out_dir``.

    Args:
        store: a :class:`~optlab.bench.store.ResultsStore` or the path of one (it must
            exist; an empty store gives a report that says so).
        out_dir: where to write (created if needed).
        title: the report's title.
        notes: lines shown near the top (e.g. problems the bench skipped and why).
        keys: report only the run and tuning records with these keys (``optlab bench``
            passes its own); None reports the whole store.
        reference: the optimizer every other is compared with (paired bootstrap verdicts,
            :mod:`optlab.report.verdicts`); None means ``adam`` where it ran.

    Returns:
        ``{"markdown": path, "html": path, "figures": [paths]}``.

    Raises:
        ReportError: no store at ``store``, ``out_dir`` is not a folder, or ``reference``
            was given and has no reported runs.
    """
    view = load(store, keys)
    verdicts.check_reference(view.runs, reference)
    halving_runs = halving.halving_records(open_store(store), keys)
    claim_records = claims.claims_records(open_store(store), keys)
    out = check_destination(out_dir)
    doc = Document(root=out)
    palette = plots.Palette([*view.series, *(o.optimizer for o in view.tuning)])
    ctx = _Context(view=view, doc=doc, figures_dir=out / "figures", palette=palette)
    _header(doc, view, title, notes, reference)
    if not view.runs and not halving_runs and not claim_records:
        doc.heading(2, "No runs", "no-runs")
        doc.paragraph(
            "This store holds no reported runs yet"
            + (
                f" ({_plural(view.tuning_trials, 'tuning trial')} only)"
                if view.tuning_trials
                else ""
            )
            + ": run a bench into it, then `optlab report` again."
        )
    elif view.runs:
        summaries = {p: summarise(view.runs_of(p), view.tuning_of(p)) for p in view.problems}
        _overview(ctx, summaries)
        _profiles(ctx)
        verdicts.write_section(doc, view.runs, reference)
        for problem in view.problems:
            _problem_section(ctx, problem, summaries[problem])
    halving.write_section(doc, halving_runs, ctx.save, halving_charts.halving_chart)
    claims.write_section(doc, claim_records)
    markdown = out / "report.md"
    page = out / "report.html"
    write_atomic(markdown, doc.as_markdown())  # never through a link at that name
    write_atomic(page, doc.as_html(title))
    return {"markdown": markdown, "html": page, "figures": list(ctx.written)}
