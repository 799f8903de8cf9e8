"""Grid tuning as a population: the same records as point by point, where it pays."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from optlab import problems
from optlab.bench import ResultsStore, Suite, SuiteError, Tuning, run_suite
from optlab.bench.population_tuning import (
    AUTO_MAX_PARAMETERS,
    PopulationTuningError,
    can_vectorise,
    pays,
)
from optlab.bench.suite import suite_from_mapping
from optlab.errors import OptlabError
from optlab.problems import BuildContext


def _suite(population: str, **changes) -> Suite:
    suite = Suite(
        name="tiny",
        problems=("beale", "logistic"),
        optimizers=("sgd", "imo", "adam", "lbfgs"),
        seeds=(42,),
        tuning=Tuning(trials=6, lr_range=(1e-4, 0.3), population=population),
        steps={"beale": 80, "logistic": 80},
    )
    return replace(suite, **changes)


def _tuning(store: ResultsStore) -> dict[tuple[str, str], dict]:
    return {(r["config"]["problem"], r["config"]["optimizer"]): r for r in store.records("tuning")}


def _trials(store: ResultsStore) -> dict[str, dict]:
    return {
        r["key"]: r["result"] for r in store.records("runs") if r["config"]["purpose"] == "tune"
    }


def test_a_population_grid_gives_the_point_by_point_records(tmp_path: Path) -> None:
    population, sequential = ResultsStore(tmp_path / "pop"), ResultsStore(tmp_path / "seq")
    tuned_population = run_suite(_suite("on"), population).tuned_lrs
    tuned_sequential = run_suite(_suite("off"), sequential).tuned_lrs
    assert tuned_population == tuned_sequential  # the same best lr for every pair
    records, expected = _tuning(population), _tuning(sequential)
    assert {r["key"] for r in records.values()} == {r["key"] for r in expected.values()}
    for pair, record in records.items():
        assert record["result"]["path"] == ("sequential" if pair[1] == "lbfgs" else "population")
        assert expected[pair]["result"]["path"] == "sequential"
        got, want = record["result"]["trials"], expected[pair]["result"]["trials"]
        assert [t["lr"] for t in got] == [t["lr"] for t in want]
        for trial, reference in zip(got, want, strict=True):
            if math.isfinite(reference["value"]):  # float64 problems: rounding only
                assert trial["value"] == pytest.approx(reference["value"], rel=1e-9, abs=1e-12)
            else:
                assert not math.isfinite(trial["value"])
    trials, reference = _trials(population), _trials(sequential)
    assert trials.keys() == reference.keys()  # the same trial records, under the same keys
    statuses = set()
    for key, result in trials.items():
        other = reference[key]
        for field in ("status", "steps", "evaluations", "stopped_early", "steps_to_target"):
            assert result[field] == other[field], field
        assert result["curve"]["step"] == other["curve"]["step"]
        statuses.add((result["status"], result["stopped_early"]))
        if result["status"] == "ok":
            assert result["test_loss"] == pytest.approx(other["test_loss"], rel=1e-9, abs=1e-12)
            assert result["final_val_accuracy"] == other["final_val_accuracy"]
    # The grid reaches both ways a member leaves early: divergence and early stopping.
    assert ("diverged", False) in statuses and ("ok", True) in statuses
    assert {r.get("path") for r in trials.values()} == {"population", None}


def test_a_float32_net_agrees_to_rounding_at_moderate_learning_rates(tmp_path: Path) -> None:
    suite = _suite(
        "on",
        problems=("digits-mlp",),
        optimizers=("adam", "momentum"),
        tuning=Tuning(trials=6, lr_range=(1e-4, 1e-2), population="on"),
        steps={"digits-mlp": 60},
    )
    population, sequential = ResultsStore(tmp_path / "pop"), ResultsStore(tmp_path / "seq")
    assert (
        run_suite(suite, population).tuned_lrs
        == run_suite(
            replace(suite, tuning=replace(suite.tuning, population="off")), sequential
        ).tuned_lrs
    )
    expected = _tuning(sequential)
    for pair, record in _tuning(population).items():
        assert record["result"]["path"] == "population"
        for trial, reference in zip(
            record["result"]["trials"], expected[pair]["result"]["trials"], strict=True
        ):
            assert trial["value"] == pytest.approx(reference["value"], rel=1e-4)


def test_a_rerun_reuses_the_tuning_record_and_a_resumed_grid_is_mixed(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    suite = _suite("on", problems=("beale",), optimizers=("adam",))
    first = run_suite(suite, store)
    [record] = store.records("tuning")
    again = run_suite(suite, store)
    assert again.ran == 0 and again.tuned_lrs == first.tuned_lrs
    assert [r["environment"] for r in store.records("tuning")] == [record["environment"]]
    # A sweep killed before its tuning record, with one trial trained point by point:
    trials = sorted(_trials(store))
    store.path("tuning", record["key"]).unlink()
    for key in trials[:4]:
        store.path("runs", key).unlink()
    run_suite(replace(suite, tuning=replace(suite.tuning, population="off")), ResultsStore(
        tmp_path / "other"
    ))  # fmt: skip
    (tmp_path / "runs" / f"{trials[0]}.json").write_bytes(
        (tmp_path / "other" / "runs" / f"{trials[0]}.json").read_bytes()
    )
    resumed = run_suite(suite, store)
    assert resumed.ran == 3  # the 3 missing trials, as one population
    assert resumed.tuned_lrs == first.tuned_lrs
    [record] = store.records("tuning")
    assert record["result"]["path"] == "mixed"


def test_the_pool_runs_population_grids(tmp_path: Path) -> None:
    suite = _suite("on", problems=("beale",), optimizers=("imo", "lbfgs"), steps={"beale": 40})
    inline, pooled = ResultsStore(tmp_path / "a"), ResultsStore(tmp_path / "b")
    assert run_suite(suite, pooled, workers=2).tuned_lrs == run_suite(suite, inline).tuned_lrs
    assert _trials(pooled).keys() == _trials(inline).keys()
    assert {r["result"]["path"] for r in pooled.records("tuning")} == {"population", "sequential"}


def test_where_a_population_pays() -> None:
    digits = problems.build("digits-mlp", BuildContext())
    assert pays("auto", digits) and pays("on", digits) and not pays("off", digits)
    big = problems.build("digits-mlp", BuildContext())
    big.model = torch.nn.Linear(AUTO_MAX_PARAMETERS, 1)
    assert not pays("auto", big) and pays("on", big)
    with pytest.raises(OptlabError, match=r"population must be one of auto, on, off, got .always."):
        pays("always", digits)
    assert all(can_vectorise(name, {}) for name in ("sgd", "momentum", "adam", "imo", "mamgd"))
    assert can_vectorise("scaled-adam", {"scale": 2.0})
    assert not can_vectorise("lbfgs", {})
    assert not can_vectorise("adam", {"amsgrad": True})  # the twin has no amsgrad
    assert issubclass(PopulationTuningError, OptlabError)


def test_scaled_adam_population_is_its_adam_identity(tmp_path: Path) -> None:
    suite = _suite("on", problems=("logistic",), optimizers=("scaled-adam",))
    suite = replace(suite, hyperparameters={"scaled-adam": {"scale": 2.0}})
    population, sequential = ResultsStore(tmp_path / "pop"), ResultsStore(tmp_path / "seq")
    run_suite(suite, population)
    run_suite(replace(suite, tuning=replace(suite.tuning, population="off")), sequential)
    [got], [want] = population.records("tuning"), sequential.records("tuning")
    assert got["key"] == want["key"] and got["result"]["path"] == "population"
    for trial, reference in zip(got["result"]["trials"], want["result"]["trials"], strict=True):
        assert trial["value"] == pytest.approx(reference["value"], rel=1e-9)


def test_the_population_option_is_validated() -> None:
    with pytest.raises(SuiteError, match=r"tuning.population must be one of .*'off', got 'yes'"):
        Tuning(population="yes")
    suite = suite_from_mapping({"problems": ["beale"], "tuning": {"population": "off"}})
    assert suite.tuning.population == "off"
