"""The bench runner: equal tuning, resumable sweeps that pick the same learning rates."""

from __future__ import annotations

from pathlib import Path

import pytest

from optlab.bench import ResultsStore, Suite, Tuning, run_suite


def _suite(sampler: str = "grid") -> Suite:
    return Suite(
        name="tiny",
        problems=("beale", "logistic"),
        optimizers=("adam", "lbfgs"),
        seeds=(42,),
        tuning=Tuning(trials=6, sampler=sampler),
        steps={"beale": 60, "logistic": 40},
    )


def test_every_optimizer_is_tuned_on_the_same_grid_with_the_same_budget(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    outcome = run_suite(_suite(), store)
    frame = store.runs_frame()
    trials = frame[frame.purpose == "tune"]
    grids = {
        (problem, optimizer): sorted(group.lr)
        for (problem, optimizer), group in trials.groupby(["problem", "optimizer"])
    }
    assert len(set(map(tuple, grids.values()))) == 1
    assert set(trials.groupby("problem").evaluations.max()) == {60, 40}
    assert (
        trials.groupby("problem").evaluations.max() == trials.groupby("problem").budget.max()
    ).all()
    assert set(outcome.tuned_lrs) == {
        (p, o) for p in ("beale", "logistic") for o in ("adam", "lbfgs")
    }
    assert (frame[frame.purpose == "report"].init_seed == 42).all()
    assert (trials.init_seed == 1042).all()


@pytest.mark.parametrize("sampler", ["grid", "tpe"])
def test_a_resumed_sweep_picks_the_same_learning_rates(tmp_path: Path, sampler: str) -> None:
    first = run_suite(_suite(sampler), ResultsStore(tmp_path / "a"))
    # Simulate a sweep killed after its trials: no tuning outcome and no reported run stored.
    second_store = ResultsStore(tmp_path / "b")
    run_suite(_suite(sampler), second_store)
    for path in (tmp_path / "b" / "tuning").glob("*.json"):
        path.unlink()
    frame = second_store.runs_frame()
    for key in frame[frame.purpose == "report"].key:
        second_store.path("runs", key).unlink()
    resumed = run_suite(_suite(sampler), second_store)
    assert resumed.tuned_lrs == first.tuned_lrs
    assert resumed.ran == 4  # only the reported runs ran again; every trial was reused
