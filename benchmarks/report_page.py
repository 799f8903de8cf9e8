"""The interactive report page in headless Chromium: its size, load time and requests.

Opens a ``report.html`` (written by ``optlab bench`` or ``optlab report``) ``--repeats``
times, each in a fresh page of one browser, and prints the file size, the median time
from navigation to the first charts drawn (the page sets ``data-ready`` on ``<html>``),
the time to draw every chart of every problem, and any request or console error (the
must-hold: under 3 s, no request). Needs Playwright and a system Chromium (no download):

    python benchmarks/report_page.py results/report.html [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from optlab.report.interactive import HEADLESS_CHROMIUM_ARGS


def measure(page_path: Path, chromium: str, repeats: int) -> None:
    """Print the size, load times, requests and console errors of ``page_path``."""
    from playwright.sync_api import sync_playwright

    url = page_path.resolve().as_uri()
    loads, alls, requests, errors = [], [], set(), []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=list(HEADLESS_CHROMIUM_ARGS)
        )
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requests.add(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            start = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("html[data-ready=true]", timeout=60_000)
            loads.append(time.perf_counter() - start)
            charts = page.eval_on_selector_all("div.plot", "plots => plots.length")
            start = time.perf_counter()
            page.select_option("#problem-select", "")
            page.wait_for_function(
                "() => [...document.querySelectorAll('div.plot')].every(d => d.dataset.rendered)",
                timeout=120_000,
            )
            alls.append(time.perf_counter() - start)
            page.close()
        browser.close()
    size = page_path.stat().st_size
    print(f"{page_path}: {size / 1e6:.2f} MB ({size} bytes), {charts} charts")
    print(f"load to first charts drawn: median {statistics.median(loads):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in loads)})")  # fmt: skip
    print(f"then every problem's charts: median {statistics.median(alls):.2f} s")
    others = sorted(r for r in requests if r != url)
    print(f"requests besides the page: {len(others)} {others[:5]}")
    print(f"console errors: {len(errors)} {errors[:5]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="a report.html")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    measure(args.page, args.chromium, args.repeats)


if __name__ == "__main__":
    main()
