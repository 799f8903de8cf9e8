"""The interactive charts as data (no browser): traces, switches, decimation, page weight."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from synthetic_results import add_halving, fake_landscape, run_config, run_result

from optlab.bench.store import ResultsStore
from optlab.report import halving, interactive
from optlab.report.charts import MAX_POINTS, decimate, numbers, profile_chart
from optlab.report.figures import Palette, seed_band
from optlab.report.frames import load
from optlab.report.halving_charts import halving_chart
from optlab.report.problem_charts import loss_chart, trajectory_chart, tuning_chart
from optlab.report.profile import performance_profile, times_to_target


def _metas(chart) -> list[str]:
    return [trace.get("meta") for trace in chart.figure["data"]]


def test_decimate_keeps_the_ends_and_bounds_the_count() -> None:
    assert decimate(5).tolist() == [0, 1, 2, 3, 4]
    indices = decimate(10_001, 300)
    assert len(indices) <= 300 and indices[0] == 0 and indices[-1] == 10_000
    assert np.all(np.diff(indices) > 0)


def test_numbers_round_and_blank_the_non_finite() -> None:
    assert numbers([0.000123456, 1500.0, math.nan, math.inf, 2.5e-9]) == [
        0.0001235,
        1500,
        None,
        None,
        2.5e-9,
    ]
    assert json.dumps(numbers([1 / 3])) == "[0.3333]"


@pytest.fixture(scope="module")
def view(synthetic_store: ResultsStore):
    return load(synthetic_store)


def test_loss_chart_traces_and_switches(view) -> None:
    runs = view.runs_of("wild-quad")
    chart = loss_chart("wild-quad", runs, Palette(view.series))
    metas = _metas(chart)
    # 3 optimizers x 3 seeds: a band (2 traces) and a mean each, 9 seed curves, a cross per
    # optimizer with a diverged seed (sgd, scaled-adam), the target.
    assert metas.count("band") == 6 and metas.count("mean") == 3 and metas.count("seed") == 9
    assert metas.count("diverged") == 2 and metas.count("target") == 1
    seeds = [t for t in chart.figure["data"] if t["meta"] == "seed"]
    assert all(t["visible"] is False for t in seeds)  # on demand only
    groups = {t["legendgroup"] for t in chart.figure["data"] if t["meta"] != "target"}
    assert groups == {"adam", "scaled-adam", "sgd"}
    assert chart.y_axis == "log" and chart.figure["layout"]["yaxis"]["type"] == "log"
    assert [v.key for v in chart.x_variants] == ["evaluations", "seconds"]
    seconds = chart.x_variants[1].traces
    assert len(seconds["x"]) == len(seconds["y"]) == chart.traces
    adam = metas.index("mean")  # the first series is adam: its mean over seeds
    assert chart.figure["data"][adam]["x"][-1] == 300  # gradient evaluations
    assert seconds["x"][adam][-1] == pytest.approx(0.3)  # 1 ms per evaluation
    # The mean is figures.seed_band's, on the PNG's scale (loss - optimum, log).
    curves = [(np.asarray(r.curve["evaluations"], float), np.asarray(r.curve["val_loss"]))
              for r in runs if r.series == "adam"]  # fmt: skip
    _, mean, _, _ = seed_band(curves, log=True)
    assert chart.figure["data"][adam]["y"] == numbers(mean)


def test_loss_chart_without_finite_loss_keeps_its_legend_entry(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    store.put(
        "runs",
        run_config("nan-only", "adam", 7, 1.0),
        run_result([math.nan], target=0.1, optimum=None),
    )
    view = load(store)
    chart = loss_chart("nan-only", view.runs, Palette(view.series))
    (mean,) = [t for t in chart.figure["data"] if t["meta"] == "mean"]
    assert mean["name"].endswith("no finite loss") and mean["x"] == [None]


def test_long_curves_and_paths_are_decimated(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    steps = 20_000
    losses = [1.0 / (i + 1) for i in range(steps)]
    path = [[math.cos(i / 500), math.sin(i / 500)] for i in range(steps)]
    for seed in (1, 2):
        store.put(
            "runs",
            run_config("long", "adam", seed, 0.1),
            run_result(losses, target=1e-9, optimum=0.0, eval_every=1, trajectory=path),
        )
    view = load(store)
    palette = Palette(view.series)
    for chart in (
        loss_chart("long", view.runs, palette),
        trajectory_chart("long", view.runs, palette, None),
    ):
        lengths = [len(t.get("x", ())) for t in chart.figure["data"]]
        lengths += [len(x) for v in chart.x_variants for x in v.traces.get("x", ())]
        assert max(lengths) == MAX_POINTS
        # Two runs of 20,000 points each (and a trajectory): a small block in the page.
        assert len(interactive.chart_html(chart, "", "c")) < 150_000


def test_trajectory_and_tuning_charts(view) -> None:
    palette = Palette(view.series)
    runs = view.runs_of("bowl-2d")
    chart = trajectory_chart("bowl-2d", runs, palette, fake_landscape("bowl-2d"))
    assert _metas(chart) == ["contour", *["path", "end"] * 3, "start", "minimum"]
    contour = chart.figure["data"][0]
    assert len(contour["z"]) == len(contour["y"]) and len(contour["z"][0]) == len(contour["x"])
    without = trajectory_chart("bowl-2d", runs, palette, None)
    assert "contour" not in _metas(without) and "no contours" in without.figure["layout"][
        "title"]["text"]  # fmt: skip
    outcomes = view.tuning_of("wild-quad")
    tuning = tuning_chart("wild-quad", outcomes, palette, 0.0, 1e-4)
    assert _metas(tuning) == [*["trials", "diverged", "chosen"] * 3, "target"]
    sgd = [t for t in tuning.figure["data"] if t.get("legendgroup") == "sgd"]
    assert sgd[0]["x"] == [] and sgd[1]["showlegend"] is True  # every trial diverged
    assert len(sgd[1]["x"]) == 6


def test_profile_chart_switches_between_the_two_profiles(view) -> None:
    profiles = {
        "gradient evaluations": performance_profile(
            times_to_target(view.runs, lambda r: r.evaluations_to_target), view.series
        ),
        "seconds": performance_profile(
            times_to_target(view.runs, lambda r: r.seconds_to_target), view.series
        ),
    }
    chart = profile_chart(profiles, Palette(view.series))
    assert chart.traces == 3
    assert [v.key for v in chart.x_variants] == ["gradient evaluations", "seconds"]
    names = chart.x_variants[1].traces["name"]
    area = profiles["seconds"].area("adam")
    assert names[0] == f"adam (area {area:.2f})"


def test_halving_charts(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    add_halving(store)
    run, study = sorted(halving.halving_records(store), key=halving.is_seed_study)
    rounds = halving_chart(run)
    # 3 members beside the winner, the crosses of the eliminated, the winner.
    assert _metas(rounds) == ["member"] * 3 + ["eliminated", "winner"]
    assert rounds.figure["data"][-1]["y"] == [0.7, 0.3]
    arms = halving_chart(study)
    # 3 arms: a thin line per repeat (2) and the median, then the target.
    assert _metas(arms) == ["repeat", "repeat", "median"] * 3 + ["target"]
    assert arms.y_axis == "linear"
