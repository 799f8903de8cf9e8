"""optlab multi-init: a killed run resumes from its checkpoint; the seed study is stored."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optlab.cli import app
from optlab.train import population

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
BASE = ["multi-init", "--problem", "logistic", "--num-models", "4", "--lr", "0.05",
        "--steps-per-round", "5", "--epochs", "0"]  # fmt: skip


class Killed(Exception):
    pass


def halving_records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "halving").glob("*.json"))]


def test_a_killed_multi_init_resumes_and_leaves_no_checkpoint(tmp_path, monkeypatch) -> None:
    original = population.successive_halving

    def killed_after_round_1(*args, on_round, **kwargs):
        def stop(record):
            on_round(record)
            raise Killed

        return original(*args, on_round=stop, **kwargs)

    monkeypatch.setattr(population, "successive_halving", killed_after_round_1)
    out = tmp_path / "killed"
    assert isinstance(runner.invoke(app, [*BASE, "--out", str(out)]).exception, Killed)
    assert halving_records(out) == []  # no partial record
    (partial,) = (out / "halving").glob("*.partial")
    assert [p.name for p in partial.iterdir()] == ["round-1.pt"]
    rounds_run: list[int] = []

    def counting(*args, on_round, **kwargs):
        def count(record):
            rounds_run.append(len(record["seeds"]))
            on_round(record)

        return original(*args, on_round=count, **kwargs)

    monkeypatch.setattr(population, "successive_halving", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("error", population.CheckpointWarning)  # must resume, not redo
        resumed = runner.invoke(app, [*BASE, "--out", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert not partial.exists()
    fresh_rounds = len(halving_records(out)[0]["result"]["rounds"])
    assert len(rounds_run) == fresh_rounds - 1  # round 1 came from the checkpoint
    monkeypatch.setattr(population, "successive_halving", original)
    fresh = runner.invoke(app, [*BASE, "--out", str(tmp_path / "fresh")])
    assert fresh.exit_code == 0, fresh.output
    (a,), (b,) = halving_records(out), halving_records(tmp_path / "fresh")
    assert a["key"] == b["key"] and a["result"] == b["result"]


def test_seed_study_from_the_cli_is_stored_and_reused(tmp_path: Path) -> None:
    arguments = [*BASE, "--out", str(tmp_path), "--seed-study", "--repeats", "2",
                 "--study-steps", "60"]  # fmt: skip
    first = runner.invoke(app, arguments)
    assert first.exit_code == 0, first.output
    assert "winner saves" in first.output
    records = halving_records(tmp_path)
    (study,) = [r for r in records if r["config"].get("study") == "seed-study"]
    result = study["result"]
    assert len(result["winner"]) == len(result["default"]) == len(result["curves"]) == 2
    assert study["config"]["eval_every"] == 1 and study["config"]["steps"] == 60
    assert len(result["curves"][0]["step"]) == len(result["curves"][0]["median"]) == 60
    again = runner.invoke(app, arguments)
    assert "seed study already in" in again.output and "already in" in again.output


@pytest.mark.parametrize(("extra", "message"), [
    (["--seed-study", "--repeats", "0"], "--repeats and --study-steps must be >= 1"),
    (["--seed-study", "--study-steps", "0"], "--repeats and --study-steps must be >= 1"),
])  # fmt: skip
def test_seed_study_bad_input_exits_2(tmp_path: Path, extra, message) -> None:
    result = runner.invoke(app, [*BASE, "--out", str(tmp_path), *extra])
    assert result.exit_code == 2 and message in result.output


def test_per_member_data_order_is_its_own_record(tmp_path: Path) -> None:
    out = tmp_path / "orders"
    shared = runner.invoke(app, [*BASE, "--out", str(out)])
    assert shared.exit_code == 0, shared.output
    own = runner.invoke(app, [*BASE, "--out", str(out), "--data-order", "per-member"])
    assert own.exit_code == 0, own.output
    records = halving_records(out)
    assert len(records) == 2
    assert sorted(r["config"].get("data_order", "shared") for r in records) == [
        "per-member",
        "shared",
    ]
    bad = runner.invoke(app, [*BASE, "--out", str(out), "--data-order", "random"])
    assert bad.exit_code == 2
    assert "data_order must be one of shared, per-member" in bad.stderr


def test_ray_refuses_a_per_member_data_order_before_starting() -> None:
    from optlab.bench.ray_backend import RayBackendError, successive_halving_on_ray
    from optlab.train.population import HalvingConfig

    config = HalvingConfig(members=2, steps_per_round=1, data_order="per-member")
    with pytest.raises(RayBackendError, match="per-member"):
        successive_halving_on_ray("digits-mlp", "adam", {}, config, [1, 2], instance_seed=42)
