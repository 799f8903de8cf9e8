"""The report's plots, drawn on :class:`matplotlib.figure.Figure` (no pyplot, no backend).

One function per kind of figure, each returning a Figure that :func:`save` writes as PNG:

- :func:`loss_curves_figure`: validation loss against gradient evaluations, one colour per
  optimizer, the mean over seeds as a line and the min-max over seeds as a band, the target
  as a dashed line, a cross where a seed diverged;
- :func:`trajectory_figure`: the path of each optimizer (first reported seed) over the
  contours of ``f - min`` of a 2-D analytic problem, with the start and the minima;
- :func:`accuracy_figure`: mean test accuracy per optimizer, min-max error bars, one dot
  per seed;
- :func:`tuning_figure`: the tuning trials (final validation loss against learning rate);
- :func:`profile_figure`: performance profiles (see :mod:`optlab.report.profile`).

Loss axes use a log scale through a :class:`LossScale`: the gap to the known optimum when
there is one and no value lies below it, else the loss itself when every value is positive,
else a linear axis; the axis label says which.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from optlab.durable import atomic_writer
from optlab.report.formatting import compact, short
from optlab.report.frames import Run, TuningOutcome, seed_order
from optlab.report.landscape import Bounds, Landscape
from optlab.report.profile import PerformanceProfile
from optlab.report.tables import SeriesSummary

DPI = 110
LINE_STYLES = ("-", "--", "-.", ":")
TINY = 1e-300


class Palette:
    """One fixed colour per series label, the same in every figure of a report."""

    def __init__(self, labels: Iterable[str]) -> None:
        import matplotlib

        names = sorted(set(labels))
        colours = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"].colors
        self._colours = {name: colours[i % len(colours)] for i, name in enumerate(names)}
        self._style = {name: LINE_STYLES[i % len(LINE_STYLES)] for i, name in enumerate(names)}

    def colour(self, label: str) -> tuple[float, ...]:
        """The colour of ``label`` (grey for a label it was not built with)."""
        return self._colours.get(label, (0.4, 0.4, 0.4))

    def style(self, label: str) -> str:
        """A line style of ``label``, to tell overlapping step lines apart."""
        return self._style.get(label, "-")


@dataclass(frozen=True)
class LossScale:
    """How losses are drawn: ``value - optimum`` or ``value``, log or linear, with a floor."""

    label: str
    log: bool
    optimum: float | None = None
    floor: float = TINY

    def __call__(self, values: Iterable[float] | float) -> np.ndarray:
        """Transform ``values``; non-finite values become NaN."""
        array = np.asarray(values, dtype=float)
        array = np.where(np.isfinite(array), array, np.nan)
        if self.optimum is not None:
            array = array - self.optimum
        if self.log:
            array = np.where(np.isnan(array), np.nan, np.maximum(array, self.floor))
        return array


def choose_scale(
    values: Iterable[float], optimum: float | None, name: str = "validation loss"
) -> LossScale:
    """The :class:`LossScale` for ``values`` (see the module docstring)."""
    array = np.asarray([v for v in values if v is not None], dtype=float)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return LossScale(label=name, log=False)
    if optimum is not None and math.isfinite(optimum):
        tolerance = 1e-9 * max(1.0, abs(optimum))
        if np.all(finite >= optimum - tolerance):
            gaps = finite - optimum
            positive = gaps[gaps > 0]
            floor = float(positive.min()) / 2 if positive.size else 1e-16
            label = f"{name} − optimum ({compact(optimum)}), log scale"
            return LossScale(label=label, log=True, optimum=optimum, floor=max(floor, TINY))
    if np.all(finite > 0):
        return LossScale(label=f"{name}, log scale", log=True, floor=float(finite.min()))
    return LossScale(label=name, log=False)


def finite_curve(run: Run, x_name: str = "evaluations") -> tuple[np.ndarray, np.ndarray]:
    """``(x, val_loss)`` of ``run`` sorted by x (``x_name``, else steps), finite losses only."""
    xs = run.curve.get(x_name) or run.curve.get("step") or []
    ys = run.curve.get("val_loss") or []
    points = [
        (float(x), float(y))
        for x, y in zip(xs, ys, strict=False)
        if x is not None and y is not None and math.isfinite(float(y))
    ]
    if not points:
        return np.empty(0), np.empty(0)
    array = np.array(sorted(points))
    return array[:, 0], array[:, 1]


def seed_band(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], *, log: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(x, mean, min, max)`` over seeds on the union of their x points.

    Each curve is interpolated (in log space when ``log``) within its own x range; at each x
    the statistics are over the curves that cover it, so a run that stopped early or
    diverged leaves the band where it ends.
    """
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return None
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    stack = np.full((len(curves), len(grid)), np.nan)
    for i, (x, y) in enumerate(curves):
        inside = (grid >= x[0]) & (grid <= x[-1])
        values = np.log(y) if log else y
        interpolated = np.interp(grid[inside], x, values)
        stack[i, inside] = np.exp(interpolated) if log else interpolated
    return grid, np.nanmean(stack, axis=0), np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)


def by_series(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """``{series: its runs in seed order}``, series sorted."""
    grouped: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: (r.series, seed_order(r.seed))):
        grouped.setdefault(run.series or run.optimizer, []).append(run)
    return grouped


def target_and_optimum(runs: Sequence[Run]) -> tuple[float | None, float | None]:
    """The problem's target and known optimum, as the first run that has them states."""
    target = next((r.target for r in runs if r.target is not None), None)
    optimum = next((r.optimum for r in runs if r.optimum is not None), None)
    return target, optimum


def loss_curves_figure(problem: str, runs: Sequence[Run], palette: Palette) -> Figure:
    """Validation loss vs gradient evaluations on ``problem`` (see the module docstring)."""
    target, optimum = target_and_optimum(runs)
    values = [y for run in runs for y in finite_curve(run)[1]]
    scale = choose_scale([*values, *([target] if target is not None else [])], optimum)
    figure = Figure(figsize=(7.2, 4.4), layout="constrained")
    ax = figure.add_subplot()
    for series, group in by_series(runs).items():
        colour = palette.colour(series)
        curves = []
        for run in group:
            x, y = finite_curve(run)
            transformed = scale(y)
            keep = np.isfinite(transformed)
            curves.append((x[keep], transformed[keep]))
        diverged = sum(run.diverged for run in group)
        label = series if not diverged else f"{series} (diverged {diverged}/{len(group)})"
        band = seed_band(curves, log=scale.log)
        if band is None:
            ax.plot([], [], color=colour, label=f"{label}: no finite loss")
            continue
        grid, mean, low, high = band
        ax.plot(grid, mean, color=colour, linewidth=1.8, label=label)
        if len(group) > 1:
            ax.fill_between(grid, low, high, color=colour, alpha=0.18, linewidth=0)
        for run, (x, y) in zip(group, curves, strict=True):
            if run.diverged and len(x):
                ax.plot(x[-1], y[-1], marker="x", markersize=9, mew=2, color=colour)
    if target is not None:
        level = float(scale([target])[0])
        if math.isfinite(level) and (not scale.log or level > scale.floor):
            ax.axhline(level, color="0.25", linestyle="--", linewidth=1, label="target")
    if scale.log:
        _readable_log_axis(ax)
    ax.set_xlabel("gradient evaluations")
    ax.set_ylabel(scale.label)
    seeds = max((len(g) for g in by_series(runs).values()), default=0)
    spread = " (line: mean, band: min-max over seeds)" if seeds > 1 else ""
    ax.set_title(f"{problem}: validation loss{spread}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return figure


def _readable_log_axis(ax: Axes) -> None:
    """Log y axis; when it spans less than two decades, label ticks as plain numbers."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    if low > 0 and high / low < 100:
        formatter = FuncFormatter(lambda value, _: short(value))
        ax.yaxis.set_major_formatter(formatter)
        ax.yaxis.set_minor_formatter(formatter)


def trajectory_points(run: Run) -> np.ndarray:
    """The finite 2-D points of ``run``'s trajectory, shape ``(N, 2)``."""
    points = np.asarray([p for p in run.trajectory or () if len(p) == 2], dtype=float).reshape(
        -1, 2
    )
    return points[np.all(np.isfinite(points), axis=1)]


def data_bounds(paths: Sequence[np.ndarray], minima: Sequence[tuple[float, float]]) -> Bounds:
    """Plot bounds around the paths (1-99 percentiles), their start and the minima, padded."""
    points = np.concatenate([*paths, np.asarray(minima, dtype=float).reshape(-1, 2)])
    if points.size == 0:
        return ((-1.0, 1.0), (-1.0, 1.0))
    low, high = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
    start = paths[0][0] if paths and len(paths[0]) else low
    low, high = np.minimum(low, start), np.maximum(high, start)
    for m in minima:
        low, high = np.minimum(low, m), np.maximum(high, m)
    pad = np.maximum((high - low) * 0.1, 0.5)
    return ((low[0] - pad[0], high[0] + pad[0]), (low[1] - pad[1], high[1] + pad[1]))


def trajectory_layout(
    runs: Sequence[Run], landscape: Landscape | None
) -> tuple[dict[str, Run], dict[str, np.ndarray], Sequence[tuple[float, float]], Bounds]:
    """What a trajectory plot shows: each series' first reported run, its path (series
    without a finite point left out), the known minima, and the plot bounds (the
    landscape's, else around the paths and minima)."""
    firsts = {series: group[0] for series, group in by_series(runs).items()}
    paths = {series: trajectory_points(run) for series, run in firsts.items()}
    paths = {series: path for series, path in paths.items() if len(path)}
    minima = landscape.minima if landscape is not None else ()
    bounds = (landscape.bounds if landscape is not None else None) or data_bounds(
        list(paths.values()), minima
    )
    return firsts, paths, minima, bounds


def _draw_contours(ax: Axes, figure: Figure, landscape: Landscape, bounds: Bounds) -> bool:
    grid = landscape.gap_grid(bounds)
    if grid is None:
        return False
    X, Y, clipped, low, high = grid
    levels = np.geomspace(low, high, 16)
    norm = LogNorm(vmin=low, vmax=high)
    filled = ax.contourf(X, Y, clipped, levels=levels, norm=norm, cmap="viridis", alpha=0.45)
    ax.contour(X, Y, clipped, levels=levels, norm=norm, colors="0.35", linewidths=0.4)
    colourbar = figure.colorbar(filled, ax=ax, shrink=0.9)
    decades = 10.0 ** np.arange(math.ceil(math.log10(low)), math.floor(math.log10(high)) + 1)
    ticks = decades if decades.size >= 2 else np.array([low, high])
    colourbar.set_ticks(ticks, labels=[short(t) for t in ticks])
    colourbar.minorticks_off()
    colourbar.set_label("f − min (log-spaced levels)")
    return True


def trajectory_figure(
    problem: str, runs: Sequence[Run], palette: Palette, landscape: Landscape | None
) -> Figure:
    """Each series' path (first reported seed) over the contours of ``f - min``."""
    firsts, paths, minima, bounds = trajectory_layout(runs, landscape)
    figure = Figure(figsize=(7.0, 5.4), layout="constrained")
    ax = figure.add_subplot()
    contoured = False
    if landscape is not None:
        try:
            contoured = _draw_contours(ax, figure, landscape, bounds)
        except Exception:
            # A landscape that cannot be drawn costs the contours, not the report.
            contoured = False
    for series, path in paths.items():
        colour = palette.colour(series)
        every = max(1, len(path) // 15)
        label = series + (" (diverged)" if firsts[series].diverged else "")
        ax.plot(
            path[:, 0],
            path[:, 1],
            color=colour,
            linewidth=1.1,
            marker="o",
            markersize=3,
            markevery=every,
            label=label,
        )
        ax.plot(path[-1, 0], path[-1, 1], marker="s", markersize=5, color=colour)
    if paths:
        start = next(iter(paths.values()))[0]
        ax.plot(
            start[0],
            start[1],
            marker="o",
            markersize=9,
            color="black",
            linestyle="none",
            label="start",
        )
    if minima:
        ax.plot(
            [m[0] for m in minima],
            [m[1] for m in minima],
            marker="*",
            markersize=14,
            color="red",
            markeredgecolor="white",
            linestyle="none",
            label="minimum",
        )
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    seed = next(iter(firsts.values())).seed[1] if firsts else None
    note = "" if contoured else "\nno contours: the objective is not available"
    ax.set_title(f"{problem}: paths of seed {seed} (square: last point){note}", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return figure


def accuracy_figure(problem: str, summaries: Sequence[SeriesSummary], palette: Palette) -> Figure:
    """Mean test accuracy per series, min-max error bars and one dot per seed."""
    figure = Figure(figsize=(max(4.5, 1.0 * len(summaries) + 2.5), 4.0), layout="constrained")
    ax = figure.add_subplot()
    values = [np.asarray(s.test_accuracy, dtype=float) * 100 for s in summaries]
    present = np.concatenate([v for v in values if v.size] or [np.empty(0)])
    for i, (summary, accuracy) in enumerate(zip(summaries, values, strict=True)):
        colour = palette.colour(summary.series)
        if accuracy.size == 0:
            ax.text(
                i,
                0.5,
                "no test\naccuracy\n(diverged)",
                ha="center",
                va="bottom",
                fontsize=7,
                transform=ax.get_xaxis_transform(),
            )
            continue
        mean = float(accuracy.mean())
        ax.bar(i, mean, width=0.6, color=colour, alpha=0.55, edgecolor=colour)
        ax.errorbar(
            i,
            mean,
            yerr=[[mean - accuracy.min()], [accuracy.max() - mean]],
            color="black",
            capsize=5,
            linewidth=1.2,
        )
        jitter = np.linspace(-0.12, 0.12, accuracy.size) if accuracy.size > 1 else np.zeros(1)
        ax.scatter(i + jitter, accuracy, s=16, color="black", zorder=3)
        ax.annotate(
            compact(mean),
            (i, accuracy.max()),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=8,
        )
    ax.set_xticks(range(len(summaries)), [s.series for s in summaries], rotation=20, ha="right")
    label = "test accuracy (%)"
    if present.size:
        span = max(float(present.max() - present.min()), 0.5)
        bottom = max(0.0, float(present.min()) - 2 * span)
        top = min(100.0, float(present.max()) + 1.2 * span)
        if present.min() < 40 or bottom < 5:
            bottom = 0.0
        ax.set_ylim(bottom, max(top, bottom + 1))
        if bottom > 0:
            label += f", axis from {bottom:.1f}"
    ax.set_ylabel(label)
    ax.set_title(
        f"{problem}: test accuracy (bar: mean, whiskers: min-max, dots: seeds)", fontsize=10
    )
    ax.grid(True, axis="y", alpha=0.3)
    return figure


def tuning_figure(
    problem: str,
    outcomes: Sequence[TuningOutcome],
    palette: Palette,
    optimum: float | None,
    target: float | None,
) -> Figure:
    """Every tuning trial: final validation loss against the learning rate, chosen lr circled."""
    values = [v for o in outcomes for _, v in o.trials if math.isfinite(v)]
    scale = choose_scale([*values, *([target] if target is not None else [])], optimum)
    finite = scale(values) if values else np.empty(0)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        top = (
            float(finite.max()) * 10
            if scale.log
            else float(finite.max()) + 0.1 * (float(np.ptp(finite)) or 1.0)
        )
    else:
        top = 1.0
    figure = Figure(figsize=(7.2, 4.2), layout="constrained")
    ax = figure.add_subplot()
    diverged_label = "diverged (drawn at the top)"
    for outcome in outcomes:
        colour = palette.colour(outcome.optimizer)
        lrs = np.array([lr for lr, _ in outcome.trials], dtype=float)
        ys = scale([v for _, v in outcome.trials]) if outcome.trials else np.empty(0)
        ok = np.isfinite(ys)
        ax.plot(
            lrs[ok],
            ys[ok],
            color=colour,
            marker="o",
            markersize=4,
            linewidth=1.2,
            label=outcome.optimizer,
        )
        if (~ok).any():
            ax.plot(
                lrs[~ok],
                np.full((~ok).sum(), top),
                linestyle="none",
                marker="x",
                markersize=8,
                mew=2,
                color=colour,
                label=diverged_label,
            )
            diverged_label = "_nolegend_"
        if outcome.best_lr is not None and not outcome.all_diverged:
            chosen = [y for lr, y in zip(lrs, ys, strict=True) if np.isclose(lr, outcome.best_lr)]
            if not chosen or not np.isfinite(chosen[0]):
                ax.axvline(outcome.best_lr, color=colour, linestyle=":", linewidth=1.2)
            else:
                ax.plot(
                    outcome.best_lr,
                    chosen[0],
                    marker="o",
                    markersize=13,
                    markerfacecolor="none",
                    markeredgecolor=colour,
                    mew=1.6,
                )
    if target is not None:
        level = float(scale([target])[0])
        if math.isfinite(level) and (not scale.log or level > scale.floor):
            ax.axhline(level, color="0.25", linestyle="--", linewidth=1, label="target")
    ax.set_xscale("log")
    if scale.log:
        _readable_log_axis(ax)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(scale.label.replace("validation loss", "final val loss"))
    ax.set_title(f"{problem}: tuning trials (circled: chosen lr)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return figure


def profile_figure(profiles: Mapping[str, PerformanceProfile], palette: Palette) -> Figure:
    """One panel per profile (e.g. evaluations, seconds): ``rho(tau)`` as step lines."""
    figure = Figure(figsize=(5.0 * max(1, len(profiles)), 4.0), layout="constrained")
    axes = figure.subplots(1, max(1, len(profiles)), squeeze=False)[0]
    for ax, (title, profile) in zip(axes, profiles.items(), strict=False):
        for optimizer in profile.optimizers:
            taus, rho = profile.steps(optimizer)
            ax.step(
                taus,
                rho,
                where="post",
                color=palette.colour(optimizer),
                linestyle=palette.style(optimizer),
                linewidth=1.8,
                label=f"{optimizer} (area {profile.area(optimizer):.2f})",
            )
        ax.set_xscale("log", base=2)
        ax.set_xlim(1, profile.max_tau)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("τ: ratio to the fastest optimizer on the problem")
        ax.set_ylabel("ρ(τ): fraction of problems")
        ax.set_title(
            f"performance profile: {title} ({len(profile.problems)} problems)", fontsize=10
        )
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    return figure


def save(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as a PNG at ``path`` (folders created; atomically, never through a
    link at that name) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as handle:
        figure.savefig(handle, dpi=DPI, format="png", metadata={"Software": None})
    return path
