"""The whole report on the synthetic store: files, self-containment, figures, numbers."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from synthetic_results import fake_landscape, run_config, run_result

from optlab.bench.store import ResultsStore
from optlab.report import ReportError, write_report
from optlab.report import landscape as landscape_module

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)


@pytest.fixture(scope="module")
def report(synthetic_store: ResultsStore, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(landscape_module, "load_landscape", fake_landscape)
        paths = write_report(
            synthetic_store, out, title="Synthetic bench", notes=["skipped mnist-mlp: no files"]
        )
    return paths, out


def _table_rows(markdown: str, problem: str) -> dict[str, list[str]]:
    """The summary table of ``problem``: {optimizer: cells} (bold markers removed)."""
    section = markdown.split(f"\n## {problem}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    for line in lines[1:]:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def test_files_and_return_value(report) -> None:
    paths, out = report
    assert paths["markdown"] == out / "report.md" and paths["markdown"].is_file()
    assert paths["html"] == out / "report.html" and paths["html"].is_file()
    names = sorted(p.name for p in paths["figures"])
    assert names == sorted(
        [
            "all-problems-profile.png",
            "bowl-2d-loss.png",
            "bowl-2d-trajectories.png",
            "bowl-2d-tuning.png",
            "digits-mlp-loss.png",
            "digits-mlp-accuracy.png",
            "digits-mlp-tuning.png",
            "flat-3d-loss.png",
            "flat-3d-tuning.png",
            "wild-quad-loss.png",
            "wild-quad-tuning.png",
        ]
    )
    assert all(p.parent == out / "figures" for p in paths["figures"])


def test_figures_are_real_pngs(report) -> None:
    paths, _ = report
    for path in paths["figures"]:
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC, path
        assert len(data) > 10_000, path


def test_html_is_self_contained(report) -> None:
    paths, _ = report
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("* plotly.js v") == 1  # the library, embedded once
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'' in page
    markup = SCRIPT.sub("<script></script>", page)  # what the scripts hold aside
    assert not re.search(r"https?:|//", markup) and "<link" not in markup
    assert "<script src" not in markup and "<img" not in markup  # charts replace the PNGs
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', markup))
    kinds = re.findall(r'<figure class="chart" data-kind="([^"]+)"', page)
    assert len(kinds) == len(paths["figures"])  # one chart per PNG of report.md
    assert sorted(set(kinds)) == ["accuracy", "loss", "profile", "trajectories", "tuning"]
    specs = re.findall(r'<script type="application/json" id="chart-\d+-spec">(.*?)</script>', page)
    assert len(specs) == len(kinds)
    for spec in specs:
        figure = json.loads(spec)["figure"]
        assert figure["data"] and "template" not in figure["layout"]  # the page's, once


def test_header_counts_notes_and_reproduction(report) -> None:
    paths, _ = report
    for path in (paths["markdown"], paths["html"]):
        text = path.read_text(encoding="utf-8")
        assert "Synthetic bench" in text
        assert "skipped mnist-mlp: no files" in text
        assert "optlab report" in text
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "**4 problems**, **3 optimizers**, **3 seeds**, 36 reported runs" in markdown
    assert "2 tuning trials" in markdown
    assert "6 learning rates per optimizer and problem, log-uniform in [0.0001, 1]" in markdown


def test_summary_means_by_hand(report) -> None:
    markdown = report[0]["markdown"].read_text(encoding="utf-8")
    rows = _table_rows(markdown, "digits-mlp")
    adam = rows["adam"]
    # final validation losses 0.12, 0.15, 0.18: mean 0.15, sample std 0.03.
    assert adam["final val loss"] == "0.150 ± 0.0300"
    assert adam["tuned lr"] == "0.0251"
    # test accuracies 0.95, 0.96, 0.97 -> 96.0 ± 1.00 %.
    assert adam["test accuracy (%)"] == "96.0 ± 1.00"
    assert adam["diverged"] == "0/3"
    assert adam["steps to target"].endswith("(3/3)")
    assert "| **adam** |" in markdown  # best on digits-mlp, in bold
    assert "**0.150 ± 0.0300**" in markdown


def test_divergence_accuracy_and_untuned_columns(report) -> None:
    markdown = report[0]["markdown"].read_text(encoding="utf-8")
    wild = _table_rows(markdown, "wild-quad")
    assert wild["sgd"]["diverged"] == "3/3"
    assert wild["sgd"]["final val loss"] == "-"
    assert "all trials diverged" in wild["sgd"]["tuned lr"]
    assert wild["scaled-adam"]["diverged"] == "1/3"
    assert wild["scaled-adam"]["final val loss"].endswith("†")
    assert list(wild)[-1] == "sgd"  # diverged everywhere: ranked last
    assert "test accuracy (%)" not in next(iter(wild.values()))
    flat = _table_rows(markdown, "flat-3d")
    assert flat["scaled-adam"]["tuned lr"] == "-"
    assert flat["adam"]["steps to target"] == "- (0/3)"


def test_trajectory_figure_draws_contours_with_a_landscape() -> None:
    from optlab.report.figures import Palette, trajectory_figure
    from optlab.report.frames import Run

    run = Run(
        key="k", problem="bowl-2d", optimizer="adam", lr=0.1, seed=(42, 42, 42),
        diverged=False, steps=3, evaluations=3, seconds=0.1, final_val_loss=0.0,
        best_val_loss=0.0, test_loss=0.0, final_val_accuracy=None, test_accuracy=None,
        steps_to_target=None, evaluations_to_target=None, seconds_to_target=None,
        target=1e-6, optimum=0.0, curve={}, trajectory=[[-1.2, 1.0], [0.0, 0.5], [1.0, 1.0]],
        series="adam",
    )  # fmt: skip
    palette = Palette(["adam"])
    with_contours = trajectory_figure("bowl-2d", [run], palette, fake_landscape("bowl-2d"))
    without = trajectory_figure("bowl-2d", [run], palette, None)
    assert len(with_contours.axes) == 2  # the plot and its colour bar
    assert len(with_contours.axes[0].collections) > 0
    assert len(without.axes) == 1


def test_empty_store(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    paths = write_report(store, tmp_path / "out")
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "no reported runs" in markdown
    assert "**0 problems**" in markdown
    assert paths["figures"] == []
    page = paths["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "plotly.js" not in page  # no chart to draw


def test_store_given_as_a_path_must_exist(tmp_path: Path) -> None:
    ResultsStore(tmp_path / "store")
    paths = write_report(str(tmp_path / "store"), tmp_path / "out")
    assert paths["markdown"].is_file()
    with pytest.raises(ReportError, match="no results store"):
        write_report(tmp_path / "missing", tmp_path / "out2")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportError, match="not a folder"):
        write_report(tmp_path / "store", tmp_path / "file")


def test_single_seed_odd_names_and_everything_diverged(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    problem = "My Problem/v2 (2-D)"
    store.put(
        "runs",
        run_config(problem, "scaled-adam", 7, 0.01),
        run_result([1.0, 0.1, 0.01], target=0.05, optimum=0.0,
                   trajectory=[[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]),
    )  # fmt: skip
    store.put(
        "runs",
        run_config("all-diverged", "sgd", 7, 1.0),
        run_result([5.0, math.inf], target=0.1, optimum=None),
    )
    store.put(
        "runs",
        run_config("all-diverged", "adam", 7, 1.0),
        run_result([math.nan], target=0.1, optimum=None),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(landscape_module, "load_landscape", lambda *args: None)
        paths = write_report(store, tmp_path / "out")
    markdown = paths["markdown"].read_text(encoding="utf-8")
    single = _table_rows(markdown, problem)["scaled-adam"]
    assert single["final val loss"] == "0.0100"  # one seed: the value, no spread
    assert single["steps to target"] == "30 (1/1)"
    assert "Every run on this problem diverged" in markdown
    names = {p.name for p in paths["figures"]}
    assert "my-problem-v2-2-d-trajectories.png" in names
    assert "all-diverged-loss.png" in names
    for path in paths["figures"]:
        assert path.read_bytes()[:8] == PNG_MAGIC
