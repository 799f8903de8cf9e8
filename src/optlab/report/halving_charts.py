"""The interactive charts of the halving section (see :mod:`optlab.report.halving`).

:func:`halving_chart` draws a halving run's survivor curves (one line per member through
the rounds it lived, a cross where it was eliminated, the winner red) or a seed study's
arms (winner, default seed, median of N: one thin line per repeat, their median bold),
as :func:`optlab.report.halving.rounds_figure` and ``study_figure`` do in PNG.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import plotly.graph_objects as go

from optlab.report import halving
from optlab.report.charts import Chart, build_figure, decimate, numbers

GREY = "rgb(150,150,150)"
RED = "rgb(214,39,40)"
ARM_COLOURS = {"C0": "rgb(31,119,180)", "C2": "rgb(44,160,44)", "C3": RED}
"""The PNG's matplotlib colours of the arms (``halving.ARMS``), as CSS."""


def _log_helps(values: Iterable[float]) -> bool:
    positive = [v for v in values if isinstance(v, int | float) and math.isfinite(v) and v > 0]
    return bool(positive) and max(positive) / min(positive) > 20


def halving_chart(record: dict[str, Any]) -> Chart:
    """A halving run's survivor curves or a seed study's arms, as the record holds."""
    if halving.is_seed_study(record):
        return _study_chart(record)
    return _rounds_chart(record)


def _rounds_chart(record: dict[str, Any]) -> Chart:
    config, result = record["config"], record["result"]
    winner = result["winner_seed"]
    curves = halving.survivor_curves(record)
    traces: list[go.BaseTraceType] = []
    crosses: list[tuple[int, float]] = []
    first = True
    for seed, (xs, ys, eliminated) in curves.items():
        if seed == winner:
            continue
        traces.append(
            go.Scatter(
                x=xs,
                y=numbers(ys),
                mode="lines+markers",
                name="other members",
                legendgroup="members",
                showlegend=first,
                meta="member",
                line={"color": GREY, "width": 1},
                marker={"size": 5},
                hovertemplate=f"init seed {seed}<br>round %{{x}}: %{{y:.4g}}<extra></extra>",
            )
        )
        first = False
        if eliminated and math.isfinite(ys[-1]):
            crosses.append((xs[-1], ys[-1]))
    traces.append(
        go.Scatter(
            x=[c[0] for c in crosses],
            y=numbers(c[1] for c in crosses),
            mode="markers",
            name="eliminated after this round",
            meta="eliminated",
            marker={"symbol": "x", "size": 10, "color": ARM_COLOURS["C0"]},
        )
    )
    xs, ys, _ = curves.get(winner, ([], [], 0))
    traces.append(
        go.Scatter(
            x=xs,
            y=numbers(ys),
            mode="lines+markers",
            name=f"winner (init seed {winner})",
            meta="winner",
            line={"color": RED, "width": 2.5},
            marker={"size": 7},
        )
    )
    rounds = len(result["rounds"])
    log = _log_helps(v for r in result["rounds"] for v in r["val_loss"])
    figure = build_figure(
        traces,
        f"{config['optimizer']} on {config['problem']}: {config['members']} inits, "
        f"keep {config['reduce_factor']:g} per round",
        xaxis={
            "title": {"text": "round (validation loss at its end)"},
            "tickvals": list(range(1, rounds + 1)),
        },
        yaxis={"title": {"text": "validation loss"}, "type": "log" if log else "linear"},
    )
    return Chart("halving", record["key"], figure, y_axis="log" if log else "linear")


def _study_chart(record: dict[str, Any]) -> Chart:
    config, result = record["config"], record["result"]
    curves = result["curves"]
    traces: list[go.BaseTraceType] = []
    values: list[float] = []
    for arm, label, colour_name in halving.ARMS:
        colour = ARM_COLOURS[colour_name]
        rows = [curve[arm] for curve in curves if curve.get(arm)]
        for number, curve in enumerate(curves, start=1):
            keep = decimate(len(curve["step"]))
            traces.append(
                go.Scatter(
                    x=numbers(np.asarray(curve["step"])[keep]),
                    y=numbers(np.asarray(curve[arm], dtype=float)[keep]),
                    mode="lines",
                    legendgroup=arm,
                    showlegend=False,
                    meta="repeat",
                    opacity=0.35,
                    line={"color": colour, "width": 1},
                    name=f"{label}, repeat {number}",
                    hovertemplate=f"{label}, repeat {number}<br>step %{{x}}: %{{y:.4g}}"
                    "<extra></extra>",
                )
            )
        if rows and all(len(row) == len(rows[0]) for row in rows):
            middle = [sorted(column)[len(column) // 2] for column in zip(*rows, strict=True)]
            keep = decimate(len(middle))
            traces.append(
                go.Scatter(
                    x=numbers(np.asarray(curves[0]["step"])[keep]),
                    y=numbers(np.asarray(middle, dtype=float)[keep]),
                    mode="lines",
                    name=label,
                    legendgroup=arm,
                    meta="median",
                    line={"color": colour, "width": 2.5},
                    hovertemplate=f"{label}, median<br>step %{{x}}: %{{y:.4g}}<extra></extra>",
                )
            )
        values += [v for row in rows for v in row]
    target = result.get("target")
    if isinstance(target, int | float) and math.isfinite(target) and curves:
        steps = [s for curve in curves for s in curve["step"]]
        traces.append(
            go.Scatter(
                x=numbers([min(steps), max(steps)]),
                y=numbers([target, target]),
                mode="lines",
                name="target",
                meta="target",
                line={"color": "rgb(64,64,64)", "dash": "dash", "width": 1},
            )
        )
    log = _log_helps(values)
    figure = build_figure(
        traces,
        f"{config['optimizer']} on {config['problem']}: halving winner vs default seed vs "
        f"median of {config['members']} ({len(curves)} repeats; bold: median)",
        xaxis={"title": {"text": "step"}},
        yaxis={"title": {"text": "validation loss"}, "type": "log" if log else "linear"},
    )
    return Chart("seed-study", record["key"], figure, y_axis="log" if log else "linear")
