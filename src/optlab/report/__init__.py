"""Stored benchmark results -> a report: Markdown with PNGs, and an interactive HTML page.

``write_report(store, out_dir)`` is the entry point (``optlab report DIR`` calls it). The
parts, one idea each:

- :mod:`~optlab.report.frames`: read the results store into typed run/tuning records;
- :mod:`~optlab.report.tables`: aggregate over seeds, write tables as Markdown/HTML;
- :mod:`~optlab.report.profile`: performance profiles across problems;
- :mod:`~optlab.report.landscape`: a 2-D objective on a grid (for contour plots);
- :mod:`~optlab.report.figures`: the plots (matplotlib ``Figure``, no pyplot), for report.md;
- :mod:`~optlab.report.charts`, :mod:`~optlab.report.problem_charts`,
  :mod:`~optlab.report.halving_charts`: the same plots as Plotly charts, for report.html;
- :mod:`~optlab.report.interactive`: the self-contained page that shows and drives them;
- :mod:`~optlab.report.document`: assemble and write the report;
- :mod:`~optlab.report.formatting`: how numbers and names are written.
"""

from __future__ import annotations

from optlab.report.document import write_report
from optlab.report.frames import ReportError, check_destination, results_folder
from optlab.report.profile import PerformanceProfile, performance_profile

__all__ = [
    "PerformanceProfile",
    "ReportError",
    "check_destination",
    "performance_profile",
    "results_folder",
    "write_report",
]
