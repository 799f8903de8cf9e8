"""The report's interactive charts: what a chart is, how its numbers are written; profiles.

A :class:`Chart` is a plotly.js figure (``data`` and ``layout``, built through
``plotly.graph_objects`` so that Plotly validates every attribute) and what its toolbar
offers; :mod:`optlab.report.interactive` writes it into the page and drives it:

- ``x_variants``: the x axis in other units (gradient evaluations / seconds), each a full
  set of per-trace arrays, swapped in with ``Plotly.update``;
- ``y_axis``: a log / linear switch of the y axis (the value is the initial type);
- ``seeds``: a switch that shows each seed's curve (traces whose ``meta`` is ``"seed"``,
  hidden at first).

The traces of one optimizer share a ``legendgroup``: a click on its legend entry hides
them all, a double click isolates it. A trace holds at most :data:`MAX_POINTS` points (a
longer curve is decimated evenly, first and last point kept) and numbers are written with
:data:`DIGITS` significant digits, so that a large results folder still gives a light page.

The charts: :func:`profile_chart` here (performance profiles across problems, from
:mod:`~optlab.report.profile`); one problem's charts in :mod:`~optlab.report.problem_charts`;
the halving and seed-study charts in :mod:`~optlab.report.halving_charts`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go

from optlab.report.figures import Palette
from optlab.report.profile import PerformanceProfile

MAX_POINTS = 300
"""The most points one trace holds (curves, trajectories)."""
DIGITS = 4
"""Significant digits of the numbers written into the page."""
HEIGHT = 500
DASHES = {"-": "solid", "--": "dash", "-.": "dashdot", ":": "dot"}


@dataclass(frozen=True)
class XVariant:
    """One unit of the x axis: its button label, the layout it sets, and per-trace arrays
    (attribute -> one value per trace; empty for the first variant, the figure's own)."""

    key: str
    label: str
    layout: Mapping[str, Any]
    traces: Mapping[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Chart:
    """A plotly.js figure and the switches its toolbar offers (see the module docstring)."""

    kind: str
    subject: str
    figure: Mapping[str, Any]
    x_variants: tuple[XVariant, ...] = ()
    y_axis: str | None = None
    seeds: bool = False

    @property
    def traces(self) -> int:
        """How many traces the figure holds."""
        return len(self.figure["data"])

    def spec(self) -> dict[str, Any]:
        """What the page's script reads: the figure and its switches."""
        return {
            "figure": self.figure,
            "x": [
                {"key": v.key, "label": v.label, "layout": dict(v.layout), "traces": v.traces}
                for v in self.x_variants
            ],
            "y": self.y_axis,
            "seeds": self.seeds,
        }


def decimate(count: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``limit`` points spread evenly over ``count``, first and last kept."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(int))


def numbers(values: Iterable[float], digits: int = DIGITS) -> list[float | int | None]:
    """``values`` with ``digits`` significant digits (whole numbers as ints, non-finite: None)."""
    out: list[float | int | None] = []
    for value in values:
        value = float(value)
        if not math.isfinite(value):
            out.append(None)
            continue
        rounded = float(f"{value:.{digits}g}")
        out.append(int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded)
    return out


def rgb(colour: Sequence[float], alpha: float | None = None) -> str:
    """A CSS colour from an RGB tuple in [0, 1] (with ``alpha``: ``rgba``)."""
    r, g, b = (round(255 * c) for c in colour[:3])
    return f"rgb({r},{g},{b})" if alpha is None else f"rgba({r},{g},{b},{alpha})"


def build_figure(traces: Sequence[go.BaseTraceType], title: str, **layout: Any) -> dict[str, Any]:
    """The JSON-ready figure (the page supplies the template, hence ``template="none"``)."""
    base: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 14}},
        "height": HEIGHT,
        "margin": {"l": 70, "r": 20, "t": 50, "b": 55},
        "hovermode": "closest",
        "legend": {"title": {"text": "click: hide · double-click: only"}},
        "template": "none",
    }
    base.update(layout)
    figure = go.Figure(data=list(traces), layout=base).to_plotly_json()
    figure["layout"].pop("template", None)
    return figure


def profile_chart(profiles: Mapping[str, PerformanceProfile], palette: Palette) -> Chart:
    """Performance profiles: ``rho(tau)`` per optimizer as a step line; one x variant per
    profile (``{"gradient evaluations": ..., "seconds": ...}``)."""
    items = list(profiles.items())
    optimizers = items[0][1].optimizers if items else ()

    def arrays(profile: PerformanceProfile) -> dict[str, list[Any]]:
        steps = [profile.steps(o) for o in optimizers]
        return {
            "x": [numbers(taus) for taus, _ in steps],
            "y": [numbers(rho) for _, rho in steps],
            "name": [f"{o} (area {profile.area(o):.2f})" for o in optimizers],
        }

    def title(key: str, profile: PerformanceProfile) -> str:
        return f"Performance profile on {key} to target ({len(profile.problems)} problems)"

    first = arrays(items[0][1]) if items else {"x": [], "y": [], "name": []}
    traces = [
        go.Scatter(
            x=first["x"][i],
            y=first["y"][i],
            name=first["name"][i],
            mode="lines",
            line={
                "shape": "hv",
                "width": 2,
                "color": rgb(palette.colour(o)),
                "dash": DASHES.get(palette.style(o), "solid"),
            },
            legendgroup=o,
            meta="profile",
            hovertemplate=f"<b>{o}</b><br>τ = %{{x:.3g}}: ρ = %{{y:.2f}}<extra></extra>",
        )
        for i, o in enumerate(optimizers)
    ]
    max_tau = items[0][1].max_tau if items else 64.0
    ticks = [2.0**k for k in range(int(math.log2(max_tau)) + 1)]
    figure = build_figure(
        traces,
        title(*items[0]) if items else "Performance profile",
        xaxis={
            "title": {"text": "τ: ratio to the fastest optimizer on the problem"},
            "type": "log",
            "range": [0, math.log10(max_tau)],
            "tickvals": ticks,
            "ticktext": [f"{t:g}" for t in ticks],
        },
        yaxis={"title": {"text": "ρ(τ): fraction of problems"}, "range": [-0.03, 1.03]},
    )
    variants = tuple(
        XVariant(key, key, {"title.text": title(key, profile)}, arrays(profile) if i else {})
        for i, (key, profile) in enumerate(items)
    )
    return Chart("profile", "all problems", figure, variants if len(variants) > 1 else ())
