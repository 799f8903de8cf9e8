"""The Ray backend: the same grids and halving as Ray Tune trials, into the same store;
the local path needs no Ray."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optlab.bench import ResultsStore, Suite, Tuning, run_suite
from optlab.bench.ray_backend import RayBackendError, check_backend, halving_rounds
from optlab.cli import app

runner = CliRunner()
HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (extra ray)")


def _suite() -> Suite:
    return Suite(
        name="ray-tiny",
        problems=("beale",),
        optimizers=("imo", "lbfgs"),  # one grid as a population, one point by point
        seeds=(42,),
        tuning=Tuning(trials=6, lr_range=(1e-3, 0.1)),
        steps={"beale": 30},
    )


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@needs_ray
def test_a_grid_on_ray_lands_in_the_store_and_a_local_rerun_reuses_it(
    tmp_path: Path, ray_session: None
) -> None:
    from optlab.bench.ray_backend import run_suite_on_ray

    store = ResultsStore(tmp_path / "ray")
    on_ray = run_suite_on_ray(_suite(), store)
    assert on_ray.ran == 2 * 6 + 2 * 1 and on_ray.reused == 0
    paths = {r["config"]["optimizer"]: r["result"]["path"] for r in store.records("tuning")}
    assert paths == {"imo": "population", "lbfgs": "sequential"}
    again = run_suite(_suite(), store)  # the local path finds everything Ray ran
    assert again.ran == 0 and again.tuned_lrs == on_ray.tuned_lrs
    local = ResultsStore(tmp_path / "local")
    alone = run_suite(_suite(), local)
    assert alone.tuned_lrs == on_ray.tuned_lrs
    assert {r["key"] for r in local.records("runs")} == {r["key"] for r in store.records("runs")}
    assert {r["key"] for r in local.records("tuning")} == {
        r["key"] for r in store.records("tuning")
    }


@needs_ray
def test_multi_init_on_ray_stores_an_asha_halving_record(tmp_path: Path, ray_session: None) -> None:
    arguments = [
        *("multi-init", "--problem", "logistic", "--optimizer", "adam", "--num-models", "4"),
        *("--steps-per-round", "5", "--epochs", "0", "--out", str(tmp_path)),
    ]
    result = runner.invoke(app, [*arguments, "--backend", "ray"])
    assert result.exit_code == 0, result.output
    [record] = ResultsStore(tmp_path).records("halving")
    assert record["config"]["backend"] == "ray"
    outcome = record["result"]
    assert outcome["backend"] == "ray"
    assert outcome["scheduler"]["name"] == "ASHAScheduler"
    assert outcome["scheduler"]["reduction_factor"] == 2
    assert outcome["scheduler"]["max_t"] == halving_rounds(4, 0.5) == 2
    seeds = [42, 43, 44, 45]
    first = outcome["rounds"][0]
    assert sorted(first["seeds"]) == seeds and len(first["val_loss"]) == 4
    assert outcome["winner_seed"] in seeds and outcome["rounds"][-1]["kept"] == [
        outcome["winner_seed"]
    ]
    assert outcome["final_val_loss"] > 0 and outcome["test_loss"] > 0
    again = runner.invoke(app, [*arguments, "--backend", "ray"])
    assert again.exit_code == 0 and "reused" in again.output
    assert runner.invoke(app, arguments).exit_code == 0  # the exact rule: a record of its own
    backends = {r["config"].get("backend") for r in ResultsStore(tmp_path).records("halving")}
    assert backends == {"ray", None}


def test_the_local_path_needs_no_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    outcome = run_suite(_suite(), ResultsStore(tmp_path / "out"))
    assert outcome.ran == 14
    suite = tmp_path / "suite.toml"
    suite.write_text('problems = ["beale"]\noptimizers = ["adam"]\nseeds = 1\n[steps]\nbeale = 5\n')
    bench = ["bench", "--suite", str(suite), "--out", str(tmp_path / "b")]
    multi_init = ["multi-init", "--problem", "logistic", "--num-models", "2"]
    for command in (
        [*bench, "--backend", "ray"],
        [*multi_init, "--out", str(tmp_path / "m"), "--backend", "ray"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert "pip install 'optlab[ray]'" in lines[0]


@pytest.mark.parametrize(
    ("backend", "address", "message"),
    [
        ("spark", None, "--backend must be one of local, ray, got 'spark'"),
        ("local", "auto", "--address goes with --backend ray"),
        ("ray", "my head", "--address must be auto or HOST:PORT"),
    ],
)
def test_backend_and_address_are_checked(backend: str, address: str | None, message: str) -> None:
    with pytest.raises(RayBackendError, match=message):
        check_backend(backend, address)
    arguments = ["bench", "--backend", backend] + (["--address", address] if address else [])
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2 and message in result.stderr


def test_valid_addresses() -> None:
    for address in ("auto", "10.0.0.2:6379", "head-node:6379", "ray://head:10001"):
        check_backend("ray", address)
    assert [halving_rounds(n, 0.5) for n in (1, 2, 4, 5, 16)] == [1, 1, 2, 3, 4]
