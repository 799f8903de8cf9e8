"""One problem's interactive charts: loss curves, trajectories, accuracy, tuning trials.

Each returns a :class:`~optlab.report.charts.Chart` of the same numbers as its PNG in
:mod:`~optlab.report.figures`, whose loss scales, seed bands and grouping of runs it uses:

- :func:`loss_chart`: mean over seeds (line) and min-max (band) per optimizer, each seed on
  demand, x in gradient evaluations or seconds, y log or linear;
- :func:`trajectory_chart`: 2-D paths over the contours of ``f - min``;
- :func:`accuracy_chart`: mean test accuracy (bars), min-max, a dot per seed;
- :func:`tuning_chart`: final validation loss against the learning rate, chosen lr circled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from optlab.report.charts import Chart, XVariant, build_figure, decimate, numbers, rgb
from optlab.report.figures import (
    LossScale,
    Palette,
    by_series,
    choose_scale,
    finite_curve,
    seed_band,
    target_and_optimum,
    trajectory_layout,
)
from optlab.report.formatting import compact, short
from optlab.report.frames import Run, TuningOutcome
from optlab.report.landscape import Bounds, Landscape
from optlab.report.tables import SeriesSummary

CONTOUR_POINTS = 70
"""Grid points per side of a contour plot."""
X_UNITS = (("evaluations", "gradient evaluations"), ("seconds", "seconds"))
"""The x axes of a loss chart: the curve's key and the axis title."""


def _plain_label(scale: LossScale) -> str:
    return scale.label.replace(", log scale", "")


def _scaled_curves(
    group: Sequence[Run], scale: LossScale, x_name: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    curves = []
    for run in group:
        x, y = finite_curve(run, x_name)
        transformed = scale(y)
        keep = np.isfinite(transformed)
        curves.append((x[keep], transformed[keep]))
    return curves


def _loss_arrays(
    groups: Mapping[str, list[Run]],
    scale: LossScale,
    level: float | None,
    x_name: str,
    unit: str,
) -> dict[str, list[Any]]:
    """Per trace, in :func:`loss_chart`'s order: x, y and hover text in unit ``x_name``."""
    xs: list[Any] = []
    ys: list[Any] = []
    hovers: list[str] = []
    y_name = _plain_label(scale)

    def add(x: Any, y: Any, hover: str) -> None:
        xs.append(numbers(x))
        ys.append(numbers(y))
        hovers.append(hover)

    low_x, high_x = math.inf, -math.inf
    for series, group in groups.items():
        curves = _scaled_curves(group, scale, x_name)
        band = seed_band(curves, log=scale.log)
        if band is None:  # one blank point keeps the optimizer in the legend
            band = (np.array([math.nan]),) * 4
        else:
            low_x, high_x = min(low_x, float(band[0][0])), max(high_x, float(band[0][-1]))
        grid, mean, low, high = band
        keep = decimate(len(grid))
        if len(group) > 1:
            add(grid[keep], low[keep], "")
            add(grid[keep], high[keep], "")
        add(
            grid[keep],
            mean[keep],
            f"<b>{series}</b>, mean over seeds<br>%{{x:.4g}} {unit}<br>{y_name}: %{{y:.4g}}"
            "<extra></extra>",
        )
        for run, (x, y) in zip(group, curves, strict=True):
            part = decimate(len(x))
            add(
                x[part],
                y[part],
                f"<b>{series}</b>, seed {run.seed[1]}<br>%{{x:.4g}} {unit}<br>"
                f"{y_name}: %{{y:.4g}}<extra></extra>",
            )
        if any(run.diverged for run in group):
            ends = [
                (x[-1], y[-1])
                for run, (x, y) in zip(group, curves, strict=True)
                if run.diverged and len(x)
            ]
            add(
                [e[0] for e in ends],
                [e[1] for e in ends],
                f"<b>{series}</b>: a seed diverged after this point<extra></extra>",
            )
    if level is not None:
        span = [low_x, high_x] if low_x <= high_x else []
        add(span, [level] * len(span), f"target: {y_name} %{{y:.4g}}<extra></extra>")
    return {"x": xs, "y": ys, "hovertemplate": hovers}


def loss_chart(problem: str, runs: Sequence[Run], palette: Palette) -> Chart:
    """Validation loss per optimizer: mean over seeds (line), min-max (band), each seed
    (hidden until asked for), a cross where a seed diverged, the target (dashed); x in
    gradient evaluations or seconds, y log or linear (the PNG's scale first)."""
    target, optimum = target_and_optimum(runs)
    values = [y for run in runs for y in finite_curve(run)[1]]
    scale = choose_scale([*values, *([target] if target is not None else [])], optimum)
    level = None
    if target is not None:
        candidate = float(scale([target])[0])
        if math.isfinite(candidate) and (not scale.log or candidate > scale.floor):
            level = candidate
    groups = by_series(runs)
    units = [
        (key, label)
        for key, label in X_UNITS
        if key == "evaluations" or (runs and all(r.curve.get(key) for r in runs))
    ]
    arrays = [_loss_arrays(groups, scale, level, key, label) for key, label in units]
    traces: list[go.Scatter] = []
    for series, group in groups.items():
        colour = palette.colour(series)
        diverged = sum(run.diverged for run in group)
        name = series if not diverged else f"{series} (diverged {diverged}/{len(group)})"
        if not any(len(x) for x, _ in _scaled_curves(group, scale, "evaluations")):
            name += ": no finite loss"
        common = {"legendgroup": series, "showlegend": False}
        if len(group) > 1:
            traces.append(
                go.Scatter(mode="lines", line={"width": 0}, hoverinfo="skip", meta="band", **common)
            )
            traces.append(
                go.Scatter(
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor=rgb(colour, 0.18),
                    hoverinfo="skip",
                    meta="band",
                    **common,
                )
            )
        traces.append(
            go.Scatter(
                mode="lines",
                name=name,
                legendgroup=series,
                meta="mean",
                line={"color": rgb(colour), "width": 2.2},
            )
        )
        for run in group:
            traces.append(
                go.Scatter(
                    mode="lines",
                    name=f"{series} seed {run.seed[1]}",
                    line={"color": rgb(colour), "width": 1, "dash": "dot"},
                    visible=False,
                    meta="seed",
                    **common,
                )
            )
        if diverged:
            traces.append(
                go.Scatter(
                    mode="markers",
                    meta="diverged",
                    name=f"{series} diverged",
                    marker={"symbol": "x", "size": 11, "color": rgb(colour)},
                    **common,
                )
            )
    if level is not None:
        traces.append(
            go.Scatter(
                mode="lines",
                name="target",
                meta="target",
                line={"color": "rgb(64,64,64)", "dash": "dash", "width": 1},
            )
        )
    for index, trace in enumerate(traces):
        trace.update(
            x=arrays[0]["x"][index],
            y=arrays[0]["y"][index],
            hovertemplate=arrays[0]["hovertemplate"][index] or None,
        )
    seeds = max((len(g) for g in groups.values()), default=0)
    spread = " (line: mean, band: min-max over seeds)" if seeds > 1 else ""
    figure = build_figure(
        traces,
        f"{problem}: validation loss{spread}",
        xaxis={"title": {"text": units[0][1]}},
        yaxis={
            "title": {"text": _plain_label(scale)},
            "type": "log" if scale.log else "linear",
            "exponentformat": "power",
        },
    )
    variants = tuple(
        XVariant(
            key, label, {"xaxis.title.text": label, "xaxis.autorange": True}, arrays[i] if i else {}
        )
        for i, (key, label) in enumerate(units)
    )
    return Chart(
        "loss",
        problem,
        figure,
        variants if len(variants) > 1 else (),
        "log" if scale.log else "linear",
        seeds=seeds > 0,
    )


def _contour(landscape: Landscape, bounds: Bounds) -> go.Contour | None:
    try:
        grid = landscape.gap_grid(bounds, CONTOUR_POINTS)
    except Exception:
        # A landscape that cannot be drawn costs the contours, not the report.
        return None
    if grid is None:
        return None
    X, Y, gap, low, high = grid
    decades = np.arange(math.ceil(math.log10(low)), math.floor(math.log10(high)) + 1)
    return go.Contour(
        x=numbers(X[0]),
        y=numbers(Y[:, 0]),
        z=[numbers(row, 3) for row in np.log10(gap)],
        colorscale="Viridis",
        opacity=0.55,
        ncontours=16,
        name="f − min",
        line={"width": 0.5, "color": "rgb(90,90,90)"},
        colorbar={
            "title": {"text": "f − min"},
            "tickvals": decades.tolist(),
            "ticktext": [short(10.0**d) for d in decades],
        },
        hovertemplate="(%{x:.3g}, %{y:.3g})<br>f − min ≈ 10^%{z:.2f}<extra></extra>",
        meta="contour",
        showlegend=False,
    )


VIEW_MARGIN = 1e3
"""Path points are drawn clipped to the plot bounds widened by this many spans each way:
far outside the view anyway, and coordinates such as 1e111 (a diverged path) overflow the
browser's SVG numbers (console errors, a marker not drawn). Hover keeps the true values."""


def _clipped(points: np.ndarray, bounds: Bounds) -> np.ndarray:
    low = np.array([bounds[0][0], bounds[1][0]])
    high = np.array([bounds[0][1], bounds[1][1]])
    span = high - low
    return np.clip(points, low - VIEW_MARGIN * span, high + VIEW_MARGIN * span)


def trajectory_chart(
    problem: str, runs: Sequence[Run], palette: Palette, landscape: Landscape | None
) -> Chart:
    """Each series' path (first reported seed, square: its last point) over the log-spaced
    contours of ``f - min``, with the start and the known minima."""
    firsts, paths, minima, bounds = trajectory_layout(runs, landscape)
    traces: list[go.BaseTraceType] = []
    contour = _contour(landscape, bounds) if landscape is not None else None
    if contour is not None:
        traces.append(contour)
    for series, path in paths.items():
        colour = rgb(palette.colour(series))
        keep = decimate(len(path))
        name = series + (" (diverged)" if firsts[series].diverged else "")
        shown = _clipped(path[keep], bounds)
        traces.append(
            go.Scatter(
                x=numbers(shown[:, 0]),
                y=numbers(shown[:, 1]),
                customdata=[numbers(point) for point in path[keep]],
                mode="lines",
                name=name,
                legendgroup=series,
                line={"color": colour, "width": 1.6},
                meta="path",
                hovertemplate=f"<b>{series}</b><br>(%{{customdata[0]:.4g}}, "
                "%{customdata[1]:.4g})<extra></extra>",
            )
        )
        end = _clipped(path[-1:], bounds)
        traces.append(
            go.Scatter(
                x=numbers(end[:, 0]),
                y=numbers(end[:, 1]),
                customdata=[numbers(path[-1])],
                mode="markers",
                legendgroup=series,
                showlegend=False,
                meta="end",
                marker={"symbol": "square", "size": 8, "color": colour},
                hovertemplate=f"<b>{series}</b>: last point (%{{customdata[0]:.4g}}, "
                "%{customdata[1]:.4g})<extra></extra>",
            )
        )
    if paths:
        start = next(iter(paths.values()))[0]
        traces.append(
            go.Scatter(
                x=numbers(start[:1]),
                y=numbers(start[1:]),
                mode="markers",
                name="start",
                meta="start",
                marker={"size": 11, "color": "black"},
            )
        )
    if minima:
        traces.append(
            go.Scatter(
                x=numbers(m[0] for m in minima),
                y=numbers(m[1] for m in minima),
                mode="markers",
                name="minimum",
                meta="minimum",
                marker={
                    "symbol": "star",
                    "size": 15,
                    "color": "red",
                    "line": {"color": "white", "width": 1},
                },
            )
        )
    seed = next(iter(firsts.values())).seed[1] if firsts else None
    note = "" if contour is not None else " (no contours: the objective is not available)"
    figure = build_figure(
        traces,
        f"{problem}: paths of seed {seed} (square: last point){note}",
        xaxis={"title": {"text": "x[0]"}, "range": list(bounds[0])},
        yaxis={"title": {"text": "x[1]"}, "range": list(bounds[1])},
        height=560,
        legend={"orientation": "h", "y": -0.14, "x": 0, "title": {"text": ""}},
        margin={"l": 60, "r": 20, "t": 50, "b": 90},
    )
    return Chart("trajectories", problem, figure)


def _accuracy_range(present: np.ndarray) -> list[float] | None:
    """The PNG's y range: from 0, or close above the lowest value when all are high."""
    if not present.size:
        return None
    span = max(float(present.max() - present.min()), 0.5)
    bottom = max(0.0, float(present.min()) - 2 * span)
    top = min(100.0, float(present.max()) + 1.2 * span)
    if present.min() < 40 or bottom < 5:
        bottom = 0.0
    return [bottom, max(top, bottom + 1)]


def accuracy_chart(problem: str, summaries: Sequence[SeriesSummary], palette: Palette) -> Chart:
    """Mean test accuracy per series (bar), min-max (whiskers) and one dot per seed."""
    traces: list[go.BaseTraceType] = []
    annotations = []
    values = [np.asarray(s.test_accuracy, dtype=float) * 100 for s in summaries]
    for i, (summary, accuracy) in enumerate(zip(summaries, values, strict=True)):
        series = summary.series
        if accuracy.size == 0:
            annotations.append(
                {
                    "x": i,
                    "y": 0.5,
                    "yref": "paper",
                    "showarrow": False,
                    "text": "no test<br>accuracy<br>(diverged)",
                }
            )
            continue
        colour = palette.colour(series)
        mean = float(accuracy.mean())
        traces.append(
            go.Bar(
                x=[i],
                y=numbers([mean]),
                width=0.6,
                name=series,
                legendgroup=series,
                meta="bar",
                marker={"color": rgb(colour, 0.55), "line": {"color": rgb(colour), "width": 1}},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "color": "black",
                    "array": numbers([accuracy.max() - mean]),
                    "arrayminus": numbers([mean - accuracy.min()]),
                },
                hovertemplate=f"<b>{series}</b>: mean %{{y:.4g}} % over {accuracy.size} seeds"
                f" (min {compact(accuracy.min())}, max {compact(accuracy.max())})<extra></extra>",
            )
        )
        jitter = np.linspace(-0.12, 0.12, accuracy.size) if accuracy.size > 1 else np.zeros(1)
        traces.append(
            go.Scatter(
                x=numbers(i + jitter),
                y=numbers(accuracy),
                mode="markers",
                legendgroup=series,
                showlegend=False,
                meta="seed",
                marker={"size": 7, "color": "black"},
                hovertemplate=f"<b>{series}</b>, one seed: %{{y:.4g}} %<extra></extra>",
            )
        )
    present = np.concatenate([v for v in values if v.size] or [np.empty(0)])
    figure = build_figure(
        traces,
        f"{problem}: test accuracy (bar: mean, whiskers: min-max, dots: seeds)",
        xaxis={"tickvals": list(range(len(summaries))), "ticktext": [s.series for s in summaries]},
        yaxis={"title": {"text": "test accuracy (%)"}, "range": _accuracy_range(present)},
        annotations=annotations,
        barmode="overlay",
    )
    return Chart("accuracy", problem, figure)


def tuning_chart(
    problem: str,
    outcomes: Sequence[TuningOutcome],
    palette: Palette,
    optimum: float | None,
    target: float | None,
) -> Chart:
    """Every tuning trial (final validation loss against the learning rate), diverged
    trials as crosses at the top, the chosen learning rate circled."""
    values = [v for o in outcomes for _, v in o.trials if math.isfinite(v)]
    scale = choose_scale([*values, *([target] if target is not None else [])], optimum)
    finite = scale(values) if values else np.empty(0)
    finite = finite[np.isfinite(finite)]
    top = 1.0
    if finite.size:
        top = (
            float(finite.max()) * 10
            if scale.log
            else float(finite.max()) + 0.1 * (float(np.ptp(finite)) or 1.0)
        )
    y_name = _plain_label(scale).replace("validation loss", "final val loss")
    traces: list[go.BaseTraceType] = []
    lrs_seen: list[float] = []
    for outcome in outcomes:
        name, colour = outcome.optimizer, rgb(palette.colour(outcome.optimizer))
        lrs = np.array([lr for lr, _ in outcome.trials], dtype=float)
        ys = scale([v for _, v in outcome.trials]) if outcome.trials else np.empty(0)
        ok = np.isfinite(ys)
        lrs_seen += lrs.tolist()
        traces.append(
            go.Scatter(
                x=numbers(lrs[ok]),
                y=numbers(ys[ok]),
                mode="lines+markers",
                name=name,
                legendgroup=name,
                meta="trials",
                line={"color": colour, "width": 1.4},
                hovertemplate=f"<b>{name}</b><br>lr %{{x:.3g}}<br>{y_name}: %{{y:.4g}}"
                "<extra></extra>",
            )
        )
        traces.append(
            go.Scatter(
                x=numbers(lrs[~ok]),
                y=[top] * int((~ok).sum()),
                mode="markers",
                name=f"{name} (every trial diverged)",
                legendgroup=name,
                showlegend=not ok.any(),  # the legend entry when no trial is finite
                meta="diverged",
                marker={"symbol": "x", "size": 10, "color": colour},
                hovertemplate=f"<b>{name}</b><br>lr %{{x:.3g}}: diverged<extra></extra>",
            )
        )
        chosen = [
            float(y)
            for lr, y in zip(lrs, ys, strict=True)
            if outcome.best_lr is not None
            and np.isclose(lr, outcome.best_lr)
            and np.isfinite(y)
            and not outcome.all_diverged
        ]
        traces.append(
            go.Scatter(
                x=numbers([outcome.best_lr] if chosen else []),
                y=numbers(chosen[:1]),
                mode="markers",
                legendgroup=name,
                showlegend=False,
                meta="chosen",
                marker={
                    "symbol": "circle-open",
                    "size": 17,
                    "color": colour,
                    "line": {"width": 2, "color": colour},
                },
                hovertemplate=f"<b>{name}</b>: chosen lr %{{x:.3g}}<extra></extra>",
            )
        )
    if target is not None and lrs_seen:
        level = float(scale([target])[0])
        if math.isfinite(level) and (not scale.log or level > scale.floor):
            traces.append(
                go.Scatter(
                    x=numbers([min(lrs_seen), max(lrs_seen)]),
                    y=numbers([level, level]),
                    mode="lines",
                    name="target",
                    meta="target",
                    line={"color": "rgb(64,64,64)", "dash": "dash", "width": 1},
                )
            )
    figure = build_figure(
        traces,
        f"{problem}: tuning trials (circled: chosen lr; ×: diverged, drawn at the top)",
        xaxis={"title": {"text": "learning rate"}, "type": "log", "exponentformat": "power"},
        yaxis={
            "title": {"text": y_name},
            "type": "log" if scale.log else "linear",
            "exponentformat": "power",
        },
    )
    return Chart("tuning", problem, figure, y_axis="log" if scale.log else "linear")
