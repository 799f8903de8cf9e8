"""The reported seeds of an optimizer as one population: the lone runs' records, to rounding."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from optlab.bench import ResultsStore, Suite, SuiteError, Tuning, run_suite
from optlab.bench.population_runs import Group, execute_population, group_kind, population_tasks
from optlab.bench.runs import RunConfig
from optlab.bench.suite import suite_from_mapping


def _suite(population: str, **changes) -> Suite:
    suite = Suite(
        name="seeds",
        problems=("rosenbrock-2d", "logistic", "digits-mlp"),
        optimizers=("adam", "imo", "lbfgs"),
        seeds=(42, 43, 44),
        tuning=Tuning(enabled=False),
        steps={"rosenbrock-2d": 60, "logistic": 60, "digits-mlp": 60},
        lrs={"adam": 0.01, "imo": 0.01, "lbfgs": 0.5},
        population=population,
    )
    return replace(suite, **changes)


def _reported(store: ResultsStore) -> dict[str, dict]:
    return {r["key"]: r for r in store.records("runs") if r["config"]["purpose"] == "report"}


def test_seed_populations_store_the_lone_runs_records(tmp_path: Path) -> None:
    together, alone = ResultsStore(tmp_path / "pop"), ResultsStore(tmp_path / "seq")
    outcome = run_suite(_suite("on"), together)
    assert run_suite(_suite("off"), alone).report_keys == outcome.report_keys
    records, reference = _reported(together), _reported(alone)
    assert records.keys() == reference.keys() == set(outcome.report_keys)
    assert len(records) == 3 * 3 * 3
    for key, record in records.items():
        result, lone = record["result"], reference[key]["result"]
        optimizer, problem = record["config"]["optimizer"], record["config"]["problem"]
        if optimizer == "lbfgs":  # not elementwise: its seeds run one by one
            assert "path" not in result
            continue
        assert (result["path"], result["population"]) == ("population", 3)
        assert "path" not in lone
        for field in ("status", "steps", "evaluations", "stopped_early", "steps_to_target"):
            assert result[field] == lone[field], (problem, optimizer, field)
        assert result["curve"]["step"] == lone["curve"]["step"]
        # float64 problems agree to rounding; the float32 net to float32 rounding
        tolerance = 1e-4 if problem == "digits-mlp" else 1e-9
        assert result["curve"]["val_loss"] == pytest.approx(
            lone["curve"]["val_loss"], rel=tolerance
        )
        assert result["test_loss"] == pytest.approx(lone["test_loss"], rel=tolerance)
        assert result["target"] == lone["target"] and result["optimum"] == lone["optimum"]
        if problem == "rosenbrock-2d":  # a 2-D analytic problem keeps every member's path
            assert len(result["trajectory"]) == len(lone["trajectory"]) == 61
            assert result["trajectory"][0] == lone["trajectory"][0]  # each seed's own start
            for point, other in zip(result["trajectory"], lone["trajectory"], strict=True):
                assert point == pytest.approx(other, rel=1e-9, abs=1e-12)
        else:
            assert result["trajectory"] is None
    starts = {
        tuple(r["result"]["trajectory"][0])
        for r in records.values()
        if r["config"]["problem"] == "rosenbrock-2d" and r["config"]["optimizer"] == "adam"
    }
    assert len(starts) == 3  # the members did start from their own seeds' points


def test_members_draw_their_own_batches_and_stop_on_their_own(tmp_path: Path) -> None:
    """Seeds of a mini-batch net differ in their data order; a member that stops early or
    diverges leaves the population while the others go on, as its lone run would."""
    cases = {  # each found to end differently per seed when run alone
        "digits-mlp": ("adam", 0.01, 600),  # early stopping after 500, 550; 600 steps
        "rosenbrock-2d": ("sgd", 4e-3, 100),  # seed 42 converges, 43 and 44 diverge
    }
    for problem, (optimizer, lr, budget) in cases.items():
        suite = _suite(
            "on",
            problems=(problem,),
            optimizers=(optimizer,),
            lrs={optimizer: lr},
            steps={problem: budget},
        )
        together = ResultsStore(tmp_path / problem / "pop")
        alone = ResultsStore(tmp_path / problem / "seq")
        run_suite(suite, together)
        run_suite(replace(suite, population="off"), alone)
        records, reference = _reported(together), _reported(alone)
        endings = set()
        for key, record in records.items():
            result, lone = record["result"], reference[key]["result"]
            assert result["path"] == "population"
            ending = (result["status"], result["steps"], result["stopped_early"])
            assert ending == (lone["status"], lone["steps"], lone["stopped_early"])
            endings.add(ending)
            assert result["curve"]["val_loss"] == pytest.approx(
                lone["curve"]["val_loss"], rel=1e-4, nan_ok=True
            )
            if result["status"] == "diverged":
                assert math.isnan(result["test_loss"])  # the test split is not read
            else:
                assert result["test_loss"] == pytest.approx(lone["test_loss"], rel=1e-4)
        assert len(endings) >= 2, (problem, endings)  # members did leave at other times
        if problem == "digits-mlp":  # other init and batches per seed
            assert len({r["result"]["curve"]["train_loss"][0] for r in records.values()}) == 3


def test_a_killed_seed_group_runs_only_its_missing_seeds(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    suite = _suite("on", problems=("logistic",), optimizers=("adam",))
    first = run_suite(suite, store)
    assert first.ran == 3
    victim = first.report_keys[1]
    kept = {k: store.get("runs", k) for k in first.report_keys if k != victim}
    store.path("runs", victim).unlink()
    again = run_suite(suite, store)
    assert (again.ran, again.reused) == (1, 2)
    assert "path" not in store.get("runs", victim)["result"]  # one seed left: a lone run
    for key, record in kept.items():
        assert store.get("runs", key) == record  # untouched


def test_group_kinds_and_which_groups_stay_one_task() -> None:
    config = RunConfig("fmnist-mlp", "adam", {"lr": 1e-3}, 42, 42, 42, 10, 5, purpose="report")
    seeds = [replace(config, init_seed=s, data_seed=s) for s in (42, 43)]
    assert group_kind(seeds) == "seeds"
    assert group_kind([replace(config, hyperparameters={"lr": x}) for x in (0.1, 0.2)]) == "lr"
    with pytest.raises(ValueError, match="differ only in their lr, or only in their seeds"):
        group_kind([config, replace(config, init_seed=7, steps=3)])
    assert execute_population(seeds, data=None, mode="off") is None
    lbfgs = [replace(c, optimizer="lbfgs", hyperparameters={"lr": 1.0}) for c in seeds]
    assert population_tasks([Group(tuple(lbfgs), "on")]) == lbfgs  # one task per seed
    assert population_tasks([Group(tuple(seeds), "off")]) == seeds
    # fmnist-mlp (101,770 parameters) is over auto's cap: one task per seed, spread by a pool
    assert population_tasks([Group(tuple(seeds), "auto")]) == seeds
    assert population_tasks([Group(tuple(seeds), "on")]) == [Group(tuple(seeds), "on")]
    small = [replace(c, problem="mnist1d-mlp") for c in seeds]
    assert population_tasks([Group(tuple(small), "auto")]) == [Group(tuple(small), "auto")]


def test_the_suite_names_its_population_mode() -> None:
    data = {"problems": ["beale"], "optimizers": ["adam"], "population": "off"}
    assert suite_from_mapping(data).population == "off"
    assert suite_from_mapping({**data, "population": "auto"}).population == "auto"
    with pytest.raises(SuiteError, match=r"population must be one of 'auto', 'on', 'off', got 'x'"):
        suite_from_mapping({**data, "population": "x"})


def test_the_report_says_whose_seconds_are_population_shares(tmp_path: Path) -> None:
    from optlab.report import write_report

    suite = _suite("on", problems=("logistic",), optimizers=("adam", "lbfgs"))
    run_suite(suite, ResultsStore(tmp_path / "pop"))
    markdown = write_report(ResultsStore(tmp_path / "pop"), tmp_path / "r1")["markdown"]
    text = markdown.read_text(encoding="utf-8")
    assert "Wall time: 3 of 6 reported runs trained as populations" in text
    assert "(lbfgs always ran alone)" in text
    run_suite(replace(suite, population="off"), ResultsStore(tmp_path / "seq"))
    lone = write_report(ResultsStore(tmp_path / "seq"), tmp_path / "r2")["markdown"]
    assert "trained as populations" not in lone.read_text(encoding="utf-8")
