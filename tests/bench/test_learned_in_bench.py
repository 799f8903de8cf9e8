"""A learned optimizer (``learned:<path>``) joins a bench suite like any registry name."""

from __future__ import annotations

from pathlib import Path

import pytest

from optlab.bench import ResultsStore, Suite, Tuning, run_suite
from optlab.bench.suite import SuiteError
from optlab.optim.learned import file_digest, save_policy


@pytest.fixture()
def policy_file(tmp_path: Path) -> Path:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rl"))
    try:
        from rl_policies import descent_policy
    finally:
        sys.path.pop(0)
    return save_policy(descent_policy(lr=0.05), tmp_path / "policy.pt")


def _suite(name: str) -> Suite:
    return Suite(
        name="learned",
        problems=("beale",),
        optimizers=(name, "adam"),
        seeds=(42,),
        tuning=Tuning(trials=6),
        steps={"beale": 30},
    )


def test_a_learned_policy_is_tuned_and_run_on_the_same_grid(tmp_path: Path, policy_file) -> None:
    name = f"learned:{policy_file}"
    store = ResultsStore(tmp_path / "results")
    outcome = run_suite(_suite(name), store)
    frame = store.runs_frame()
    assert set(frame.optimizer) == {name, "adam"}
    trials = frame[frame.purpose == "tune"]
    grids = {opt: sorted(group.lr) for opt, group in trials.groupby("optimizer")}
    assert grids[name] == grids["adam"]
    assert (name, "beale") in {(o, p) for (p, o) in outcome.tuned_lrs}
    learned_runs = [r for r in store.records("runs") if r["config"]["optimizer"] == name]
    assert learned_runs
    digest = file_digest(policy_file)
    assert all(r["config"]["hyperparameters"]["sha256"] == digest for r in learned_runs)


def test_a_missing_policy_file_fails_the_suite_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="does not exist"):
        _suite(f"learned:{tmp_path / 'absent.pt'}")


def test_lrs_and_hyperparameters_tables_accept_a_learned_name(policy_file) -> None:
    name = f"learned:{policy_file}"
    suite = Suite(
        name="learned",
        problems=("beale",),
        optimizers=(name,),
        seeds=(42,),
        tuning=Tuning(trials=6),
        lrs={name: 0.02},
    )
    assert suite.untuned_lr(name) == 0.02
