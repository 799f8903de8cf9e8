"""Number formatting, aggregation over seeds and table writers."""

from __future__ import annotations

import math

from optlab.report.formatting import compact, mean_std, short, slug, unique_names
from optlab.report.frames import Run
from optlab.report.tables import Table, summarise, summary_table, to_html, to_markdown


def test_compact_numbers() -> None:
    assert compact(0.000123456) == "1.23e-4"
    assert compact(12.345) == "12.3"
    assert compact(0.15) == "0.150"
    assert compact(1234.5) == "1234"
    assert compact(2e6) == "2.00e6"
    assert compact(0) == "0"
    assert compact(None) == "-"
    assert compact(math.nan) == "nan"
    assert compact(-math.inf) == "-inf"
    assert short(0.0100) == "0.01" and short(1e-5) == "1e-5"


def test_mean_std() -> None:
    assert mean_std([0.12, 0.15, 0.18]) == "0.150 ± 0.0300"
    assert mean_std([0.5]) == "0.500"
    assert mean_std([0.5, math.nan, math.inf]) == "0.500"
    assert mean_std([math.nan]) == "-"
    assert mean_std([0.9, 0.95], scale=100) == "92.5 ± 3.54"


def test_slugs_are_safe_and_unique() -> None:
    assert slug("scaled-adam") == "scaled-adam"
    assert slug("My Problem/v2") == "my-problem-v2"
    assert slug("///") == "unnamed"
    name = unique_names(slug)
    assert [name("a b"), name("a/b"), name("a b")] == ["a-b", "a-b-2", "a-b"]


def _run(optimizer: str, seed: int, final: float, *, diverged: bool = False) -> Run:
    return Run(
        key=f"{optimizer}{seed}", problem="p", optimizer=optimizer, lr=0.1,
        seed=(1, seed, seed), diverged=diverged, steps=10, evaluations=10, seconds=1.0,
        final_val_loss=final, best_val_loss=final, test_loss=final, final_val_accuracy=None,
        test_accuracy=None, steps_to_target=None if diverged else 10,
        evaluations_to_target=None if diverged else 10, seconds_to_target=None,
        target=1.0, optimum=None, curve={}, trajectory=None, series=optimizer,
    )  # fmt: skip


def test_ranking_puts_diverged_optimizers_after_reliable_ones() -> None:
    runs = [
        _run("a", 1, 1e-9), _run("a", 2, math.nan, diverged=True),  # better mean, 1 diverged
        _run("b", 1, 0.5), _run("b", 2, 0.7),
    ]  # fmt: skip
    summaries = summarise(runs)
    assert [s.series for s in summaries] == ["b", "a"]
    table = summary_table(summaries, accuracy=False)
    assert (0, 0) in table.bold and (0, 2) in table.bold
    assert table.rows[0][2] == "0.600 ± 0.141"
    assert table.rows[1][2] == "1.00e-9 †"
    assert table.rows[1][-1] == "1/2"
    assert table.rows[1][5] == "- (1/2)"  # median over [10, inf] is infinite


def test_markdown_and_html_writers() -> None:
    table = Table(
        columns=("name", "value"), rows=(("a|b", "<1>"),), bold=frozenset({(0, 1)}),
        notes=("note",),
    )  # fmt: skip
    markdown = to_markdown(table)
    assert markdown.splitlines()[:3] == ["| name | value |", "|:---|---:|", "| a\\|b | **<1>** |"]
    assert "*note*" in markdown
    page = to_html(table)
    assert "<strong>&lt;1&gt;</strong>" in page and '<p class="notes">note</p>' in page
