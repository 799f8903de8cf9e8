"""The report page: one self-contained interactive HTML file (Plotly charts, no request).

:func:`chart_html` writes one :class:`~optlab.report.charts.Chart` as a figure block: a
toolbar (x axis: gradient evaluations / seconds, y axis: log / linear, each seed's curve),
an empty ``<div class="plot">`` and the chart's JSON in a ``<script type="application/
json">``. :func:`page` wraps the report's blocks into the page and embeds, once each,
plotly.js (from the ``plotly`` package, so the page needs no network), the Plotly template
every chart shares, and ``interactive.js``, which:

- wraps each problem's section (from its ``<h2 class="problem">`` to the next ``h1``/``h2``)
  and adds a problem selector (one problem, or all); a chart is drawn when its section is
  first shown, so a page with many problems opens quickly;
- drives the toolbars through Plotly's API (``Plotly.update``, ``relayout``, ``restyle``);
- makes every table sortable (click a header; numbers sort as numbers, ``-`` last).

A Content-Security-Policy in the page forbids every request (scripts, styles and images
must be inline), so the page works offline and cannot leak anything when opened.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from plotly.utils import PlotlyJSONEncoder

from optlab.report.charts import Chart

HEADLESS_CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
"""Flags to open the page in a headless Chromium with no network (the browser tests and
``benchmarks/report_page.py``): without the background-networking ones Chromium keeps
trying hosts of its own, which a closed network refuses."""

TEMPLATE = "plotly_white"
"""The Plotly template every chart uses (embedded once)."""
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)
CSS = """
#problem-picker { position: sticky; top: 0; z-index: 10; background: #fff; padding: .5em 0;
                  border-bottom: 1px solid #ddd; font-size: .95em; }
#problem-picker select { font-size: 1em; margin-left: .4em; }
#problem-picker .hint { color: #666; font-size: .85em; margin-left: 1em; }
figure.chart { margin: 1.2em 0; }
figure.chart div.plot { width: 100%; min-height: 500px; }
.controls { display: flex; flex-wrap: wrap; gap: .4em 1.4em; align-items: center;
            font-size: .85em; color: #333; }
.controls button { font: inherit; border: 1px solid #aaa; background: #f5f5f5;
                   padding: .1em .6em; margin-left: .25em; border-radius: 3px; cursor: pointer; }
.controls button[aria-pressed="true"] { background: #2f4b7c; border-color: #2f4b7c; color: #fff; }
th { cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .7em; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .7em; }
"""


def script_json(value: Any) -> str:
    """``value`` as JSON safe inside a ``<script>`` element (no ``</`` can close it)."""
    text = json.dumps(value, cls=PlotlyJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _buttons(control: str, title: str, options: Sequence[tuple[str, str]], pressed: str) -> str:
    buttons = "".join(
        f'<button type="button" data-value="{html.escape(value)}" '
        f'aria-pressed="{"true" if value == pressed else "false"}">{html.escape(label)}</button>'
        for value, label in options
    )
    return f'<span data-control="{control}">{html.escape(title)}{buttons}</span>'


def _toolbar(chart: Chart, ident: str) -> str:
    parts = []
    if chart.x_variants:
        options = [(v.key, v.label) for v in chart.x_variants]
        parts.append(_buttons("x", "x axis:", options, chart.x_variants[0].key))
    if chart.y_axis:
        parts.append(_buttons("y", "y axis:", [("log", "log"), ("linear", "linear")], chart.y_axis))
    if chart.seeds:
        parts.append('<label><input type="checkbox" data-control="seeds"> each seed</label>')
    if not parts:
        return ""
    return f'<div class="controls" data-plot="{ident}">{"".join(parts)}</div>'


def chart_html(chart: Chart, caption_html: str, ident: str) -> str:
    """The figure block of ``chart`` (``ident``: a page-unique element id; ``caption_html``
    is already HTML)."""
    return (
        f'<figure class="chart" data-kind="{html.escape(chart.kind)}" '
        f'data-subject="{html.escape(chart.subject)}">'
        f"{_toolbar(chart, ident)}"
        f'<div class="plot" id="{ident}" data-traces="{chart.traces}"></div>'
        f'<script type="application/json" id="{ident}-spec">{script_json(chart.spec())}</script>'
        f"<figcaption>{caption_html}</figcaption></figure>"
    )


@cache
def _assets() -> tuple[str, str, str]:
    """(plotly.js, the shared template as JSON, the page's script): read once a process."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    template = script_json(pio.templates[TEMPLATE].to_plotly_json())
    driver = resources.files("optlab.report").joinpath("interactive.js").read_text("utf-8")
    return get_plotlyjs(), template, driver


def page(title: str, body: Sequence[str], css: str, *, charts: bool = True) -> str:
    """A complete page: ``body`` (HTML blocks), ``css`` and this module's own, the driver
    script and (unless ``charts`` is false: a page without any) plotly.js and the template,
    each once."""
    plotly_js, template, driver = _assets()
    library = (
        f"<script>{plotly_js}</script>\n"
        f'<script type="application/json" id="optlab-template">{template}</script>\n'
        if charts
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{css}{CSS}</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n"
        f"{library}<script>{driver}</script>\n</body>\n</html>\n"
    )
