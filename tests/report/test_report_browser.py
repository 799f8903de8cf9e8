"""The interactive report page in a real browser: headless Chromium driven by Playwright.

One browser and one page for the module: the page of the synthetic store (plus a halving
run and a seed study) is opened once; each test drives it and puts back what it changed.
Without Playwright or a Chromium these tests skip, saying how to install them.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic_results import add_halving, build_store, fake_landscape

from optlab.report import figures, write_report
from optlab.report import landscape as landscape_module
from optlab.report.interactive import HEADLESS_CHROMIUM_ARGS

INSTALL = (
    "browser tests need Chromium and Playwright: apt-get install chromium (Debian; or set "
    "OPTLAB_CHROMIUM to a Chromium binary) and pip install playwright (the dev extra)"
)
# Traces per chart, from the synthetic store (see synthetic_results): 3 optimizers, 3 seeds.
EXPECTED_TRACES = {
    ("profile", "all problems"): 3,  # a step line per optimizer
    # band (2) + mean + 3 seeds per optimizer, and the target; wild-quad adds a diverged
    # cross for sgd and for scaled-adam.
    ("loss", "bowl-2d"): 19,
    ("loss", "digits-mlp"): 19,
    ("loss", "flat-3d"): 19,
    ("loss", "wild-quad"): 21,
    ("trajectories", "bowl-2d"): 9,  # contour, path + end per optimizer, start, minimum
    ("accuracy", "digits-mlp"): 6,  # a bar and the seed dots per optimizer
    # trials, diverged, chosen per tuned optimizer, the target (flat-3d: 2 tuned).
    ("tuning", "bowl-2d"): 10,
    ("tuning", "digits-mlp"): 10,
    ("tuning", "flat-3d"): 7,
    ("tuning", "wild-quad"): 10,
    ("halving", None): 5,  # 3 members beside the winner, eliminated crosses, the winner
    ("seed-study", None): 10,  # 3 arms x (2 repeats + median), the target
}
LOAD_LIMIT_S = 10.0  # generous for a loaded machine; the quick suite's page is measured apart


def _chromium() -> str | None:
    candidates = [os.environ.get("OPTLAB_CHROMIUM"), "chromium", "chromium-browser"]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    return None


CHROMIUM = _chromium()
if CHROMIUM is None or importlib.util.find_spec("playwright") is None:
    pytest.skip(INSTALL, allow_module_level=True)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic store's report.html (the PNGs, report.md's, are left blank: faster)."""
    root = tmp_path_factory.mktemp("browser")
    store = build_store(root / "store")
    add_halving(store)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(landscape_module, "load_landscape", fake_landscape)
        patch.setattr(figures, "save", _blank_png)
        paths = write_report(store, root / "out", title="Synthetic bench")
    return paths["html"]


def _blank_png(figure: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture(scope="module")
def session(report_page: Path):
    """``(page, requests, errors, seconds to load)``: the page opened once in Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(HEADLESS_CHROMIUM_ARGS)
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(10_000)
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on(
            "console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None
        )
        page.on("pageerror", lambda error: errors.append(str(error)))
        start = time.perf_counter()
        page.goto(report_page.as_uri())
        page.wait_for_selector("html[data-ready=true]", timeout=30_000)
        seconds = time.perf_counter() - start
        yield page, requests, errors, seconds
        browser.close()


def _show_all(page) -> None:
    page.select_option("#problem-select", "")
    page.wait_for_function(
        "() => [...document.querySelectorAll('div.plot')].every(d => d.dataset.rendered)"
    )


def _chart(kind: str, subject: str | None = None) -> str:
    """The CSS selector of the first chart of ``kind`` (on ``subject``)."""
    selector = f'figure.chart[data-kind="{kind}"]'
    if subject is not None:
        selector += f'[data-subject="{subject}"]'
    return selector


def _wait(page, selector: str, condition: str) -> None:
    """Wait until ``condition`` (JavaScript, of the Plotly element ``plot``) holds for the
    chart at ``selector`` (a function, not a string to evaluate: the page's CSP forbids eval)."""
    page.wait_for_function(
        f"selector => {{ const plot = document.querySelector(selector + ' div.plot'); "
        f"return {condition}; }}",
        arg=selector,
    )


def _plot_eval(page, selector: str, script: str):
    """Evaluate ``script`` (a function of the Plotly element) on the chart at ``selector``."""
    return page.eval_on_selector(f"{selector} div.plot", script)


def test_page_loads_without_error_or_request(session, report_page: Path) -> None:
    page, requests, errors, seconds = session
    assert seconds < LOAD_LIMIT_S
    _show_all(page)  # every chart drawn
    assert errors == []
    assert requests == [report_page.as_uri()]  # the page itself, nothing else


def test_every_chart_has_the_expected_traces(session) -> None:
    page = session[0]
    _show_all(page)
    found = page.eval_on_selector_all(
        "figure.chart",
        """figures => figures.map(f => {
            const plot = f.querySelector('div.plot');
            return [f.dataset.kind, f.dataset.subject, plot.data.length,
                    plot._fullData.length, Number(plot.dataset.traces),
                    plot.querySelectorAll('.main-svg').length];
        })""",
    )
    counts = {}
    for kind, subject, data, full, declared, svgs in found:
        assert data == full == declared and svgs > 0, (kind, subject)
        key = (kind, None if kind in ("halving", "seed-study") else subject)
        counts[key] = data
    assert counts == EXPECTED_TRACES


def test_axis_switches_change_the_axes(session) -> None:
    page = session[0]
    _show_all(page)
    loss = _chart("loss", "bowl-2d")
    axes = """plot => [plot._fullLayout.xaxis.title.text, plot._fullLayout.yaxis.type,
                       plot._fullLayout.xaxis.range[1],
                       plot.data.find(t => t.meta === 'mean').x.slice(-1)[0]]"""
    assert _plot_eval(page, loss, axes) == ["gradient evaluations", "log", pytest.approx(300), 300]
    page.click(f'{loss} [data-control="y"] button[data-value="linear"]')
    _wait(page, loss, "plot._fullLayout.yaxis.type === 'linear'")
    page.click(f'{loss} [data-control="x"] button[data-value="seconds"]')
    _wait(page, loss, "plot._fullLayout.xaxis.title.text === 'seconds'")
    title, scale, right, last = _plot_eval(page, loss, axes)
    assert (title, scale) == ("seconds", "linear")
    assert right == pytest.approx(0.3, rel=0.05) and last == pytest.approx(0.3)
    pressed = page.eval_on_selector_all(
        f'{loss} button[aria-pressed="true"]', "buttons => buttons.map(b => b.dataset.value)"
    )
    assert pressed == ["seconds", "linear"]
    page.click(f'{loss} [data-control="x"] button[data-value="evaluations"]')
    page.click(f'{loss} [data-control="y"] button[data-value="log"]')
    _wait(page, loss, "plot._fullLayout.yaxis.type === 'log'")
    assert _plot_eval(page, loss, axes) == ["gradient evaluations", "log", pytest.approx(300), 300]


def _drawn(page, selector: str) -> int:
    return _plot_eval(
        page, selector, "plot => plot.querySelectorAll('.scatterlayer .trace').length"
    )


def _visibility(page, selector: str) -> dict[str, list]:
    return _plot_eval(
        page,
        selector,
        """plot => {
            const out = {};
            plot.data.forEach(t => {
                const key = (t.legendgroup || t.name) + ':' + t.meta;
                (out[key] = out[key] || []).push(t.visible === undefined ? true : t.visible);
            });
            return out;
        }""",
    )


def test_each_seed_curve_on_demand(session) -> None:
    page = session[0]
    _show_all(page)
    loss = _chart("loss", "bowl-2d")
    before = _drawn(page, loss)
    assert _visibility(page, loss)["adam:seed"] == [False] * 3
    page.check(f'{loss} input[data-control="seeds"]')
    _wait(page, loss, "plot.data.filter(t => t.meta === 'seed' && t.visible === true).length === 9")
    assert _drawn(page, loss) == before + 9
    page.uncheck(f'{loss} input[data-control="seeds"]')
    _wait(page, loss, "plot.data.every(t => t.meta !== 'seed' || t.visible === false)")
    assert _drawn(page, loss) == before


def _legend_item(page, selector: str, name: str):
    return page.locator(f"{selector} .legend .traces").filter(has_text=name).first


def test_legend_hides_and_isolates_an_optimizer(session) -> None:
    page = session[0]
    _show_all(page)
    loss = _chart("loss", "bowl-2d")
    before = _drawn(page, loss)
    _legend_item(page, loss, "adam").click()
    _wait(page, loss, "plot.data.find(t => t.meta === 'mean').visible === 'legendonly'")
    visible = _visibility(page, loss)
    assert visible["adam:mean"] == ["legendonly"] and visible["adam:band"] == ["legendonly"] * 2
    assert visible["sgd:mean"] == [True] and visible["scaled-adam:band"] == [True, True]
    assert _drawn(page, loss) < before
    # Seeds asked for while adam is hidden stay hidden with it.
    page.check(f'{loss} input[data-control="seeds"]')
    _wait(page, loss, "plot.data.filter(t => t.meta === 'seed' && t.visible === true).length === 6")
    assert _visibility(page, loss)["adam:seed"] == ["legendonly"] * 3
    page.uncheck(f'{loss} input[data-control="seeds"]')
    page.wait_for_timeout(400)  # Plotly tells a click from a double click after 300 ms
    _legend_item(page, loss, "adam").click()
    _wait(page, loss, "plot.data.find(t => t.meta === 'mean').visible === true")
    page.wait_for_timeout(400)
    assert _drawn(page, loss) == before
    # A double click shows sgd alone.
    _legend_item(page, loss, "sgd").dblclick()
    _wait(page, loss, "plot.data.find(t => t.meta === 'mean').visible === 'legendonly'")
    visible = _visibility(page, loss)
    assert visible["sgd:mean"] == [True] and visible["adam:mean"] == ["legendonly"]
    assert visible["scaled-adam:mean"] == ["legendonly"]
    page.wait_for_timeout(400)
    _legend_item(page, loss, "sgd").dblclick()
    _wait(page, loss, "plot.data.every(t => t.meta === 'seed' || t.visible !== 'legendonly')")


def test_problem_selector_shows_one_problem(session) -> None:
    page = session[0]
    page.select_option("#problem-select", "digits-mlp")
    shown = page.eval_on_selector_all(
        "section.problem", "sections => sections.map(s => [s.dataset.problem, !s.hidden])"
    )
    assert shown == [
        ["bowl-2d", False],
        ["digits-mlp", True],
        ["flat-3d", False],
        ["wild-quad", False],
    ]
    assert page.is_visible(_chart("accuracy", "digits-mlp"))
    assert not page.is_visible(_chart("loss", "bowl-2d"))
    assert page.is_visible(_chart("profile")) and page.is_visible(_chart("halving"))
    _show_all(page)
    assert page.is_visible(_chart("loss", "bowl-2d"))


def test_tables_sort_by_a_clicked_column(session) -> None:
    page = session[0]
    _show_all(page)
    table = 'section.problem[data-problem="wild-quad"] table'
    header = f'{table} th:has-text("final val loss")'
    column = page.eval_on_selector(
        table, "t => [...t.tHead.rows[0].cells].findIndex(c => c.textContent === 'final val loss')"
    )
    cells = (
        "t => [...t.tBodies[0].rows].map(r => "
        f"[r.cells[0].textContent, r.cells[{column}].textContent])"
    )
    page.click(header)
    ascending = page.eval_on_selector(table, cells)
    page.click(header)
    descending = page.eval_on_selector(table, cells)

    def values(rows):
        return [float(text.split()[0]) for _, text in rows if text != "-"]

    assert values(ascending) == sorted(values(ascending)) and len(values(ascending)) == 2
    assert values(descending) == sorted(values(descending), reverse=True)
    assert ascending[-1] == descending[-1] == ["sgd", "-"]  # every seed diverged: last
    assert page.get_attribute(header, "aria-sort") == "descending"


def test_a_screenshot_is_not_blank(session) -> None:
    from matplotlib import image

    page = session[0]
    _show_all(page)
    shot = page.locator(_chart("loss", "bowl-2d")).screenshot()
    pixels = image.imread(io.BytesIO(shot), format="png")[..., :3]
    ink = np.any(pixels < 0.9, axis=-1).mean()  # the share of pixels that are not white
    colours = len(np.unique((pixels * 255).astype(int).reshape(-1, 3), axis=0))
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert ink > 0.03 and colours > 50
