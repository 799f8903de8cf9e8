"""``optlab claims``: every claim gets a record with a verdict and the numbers behind it;
a killed run resumes from its stored records; the verdict logic on known inputs; the
command line at the tiny scale, and its one-line errors."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optlab import problems
from optlab.bench.store import ResultsStore
from optlab.claims import (
    CLAIMS,
    TINY,
    VERDICTS,
    Criterion,
    Measurement,
    decide,
    evaluate,
    run_claims,
)
from optlab.claims.iterations import REPORT_TABLE, iterations, rosenbrock, seeded_start
from optlab.cli import app
from optlab.errors import OptlabError
from optlab.report import write_report
from optlab.report.statistics import PairedEstimate

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny claims run through the command line (seconds), shared by the tests."""
    out = tmp_path_factory.mktemp("claims") / "out"
    result = runner.invoke(app, ["claims", "--out", str(out), "--scale", "tiny"])
    assert result.exit_code == 0, result.output
    for claim in CLAIMS:
        assert claim.id in result.output
    assert "8 measured, 0 reused" in result.output
    return out


def _records(out: Path) -> dict[str, dict]:
    return {r["result"]["claim"]: r for r in ResultsStore(out).records("claims")}


def test_every_claim_has_a_record_with_a_verdict_and_its_numbers(tiny_store: Path) -> None:
    records = _records(tiny_store)
    assert set(records) == {claim.id for claim in CLAIMS}
    for claim in CLAIMS:
        result = records[claim.id]["result"]
        assert result["verdict"] in VERDICTS
        assert result["statement"] == claim.statement and result["reason"]
        if claim.measure is None:
            assert result["verdict"] == "not checked"
            assert "not available offline" in result["reason"]
            continue
        assert result["measured"], claim.id
        assert len(result["values"]) == TINY.seeds, claim.id
        if result["verdict"] != "inconclusive":
            assert result["low"] <= result["mean"] <= result["high"]
        if result["reference"] is not None:
            assert len(result["reference"]) == len(result["values"])
    # what the measurements ran is stored beside the claims: runs, tuning, seed study, policy
    assert list((tiny_store / "runs").glob("*.json"))
    assert list((tiny_store / "halving").glob("*.json"))
    assert list((tiny_store / "claims-policies").glob("*.pt"))
    markdown = (tiny_store / "claims.md").read_text()
    html = (tiny_store / "claims.html").read_text()
    for claim in CLAIMS:
        assert claim.id in markdown and claim.id in html


def test_the_iteration_claims_count_on_the_reference_rules(tiny_store: Path) -> None:
    result = _records(tiny_store)["imo-iterations-rosenbrock"]["result"]
    value, gradient = rosenbrock()
    start = seeded_start("rosenbrock", 42)
    cap = TINY.iteration_cap
    imo = iterations("imo-soft-nesterov", value, gradient, start, ("grad", 1e-4), cap)
    assert result["details"]["imo_iterations"][0] == imo
    assert result["details"]["starts"][0] == list(start)
    assert result["claimed"]["imo"] == REPORT_TABLE["rosenbrock"]["imo"]


def test_a_rerun_reuses_every_record_and_run(tiny_store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_store, copy)
    before = sorted(p.name for p in (copy / "runs").glob("*.json"))
    outcome = run_claims(copy, TINY)
    assert (outcome.measured, outcome.reused) == (0, len(CLAIMS))
    assert sorted(p.name for p in (copy / "runs").glob("*.json")) == before


def test_optlab_report_shows_the_claims_section(tiny_store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_store, copy)
    paths = write_report(copy, tmp_path / "report")
    text = Path(paths["markdown"]).read_text()
    assert "The seeds' claims, checked" in text and "mamgd-table-1" in text


class Killed(RuntimeError):
    pass


def test_a_killed_run_continues_from_the_stored_claims(tmp_path: Path) -> None:
    """Measurement k raises (a kill); the rerun measures only the claims not yet stored."""
    calls: list[str] = []
    kill_at = 4

    def fake(claim_id: str, index: int, kill: bool):
        def measure(scale, store, progress) -> Measurement:
            if kill and index == kill_at:
                raise Killed(claim_id)
            calls.append(claim_id)
            return Measurement(values=[40.0 + index, 45.0, 50.0 - index], measured="fake")

        return measure

    def claims(kill: bool) -> list:
        return [
            c if c.measure is None else dataclasses.replace(c, measure=fake(c.id, i, kill))
            for i, c in enumerate(CLAIMS)
        ]

    with pytest.raises(Killed):
        run_claims(tmp_path, TINY, claims=claims(kill=True))
    first = list(calls)
    assert first == [c.id for c in CLAIMS[:kill_at]]
    assert len(list(ResultsStore(tmp_path).records("claims"))) == kill_at
    calls.clear()
    outcome = run_claims(tmp_path, TINY, claims=claims(kill=False))
    measured_rest = [c.id for c in CLAIMS[kill_at:] if c.measure is not None]
    assert calls == measured_rest
    assert (outcome.measured, outcome.reused) == (len(CLAIMS) - kill_at, kill_at)
    calls.clear()
    again = run_claims(tmp_path, TINY, claims=claims(kill=False))
    assert calls == [] and again.reused == len(CLAIMS)
    # another scale is another record: measured anew
    run_claims(tmp_path, dataclasses.replace(TINY, seeds=4), claims=claims(kill=False)[:1])
    assert calls == [CLAIMS[0].id]


def test_a_claim_on_data_from_disk_is_keyed_by_the_data(monkeypatch) -> None:
    claim = next(c for c in CLAIMS if c.id == "imo-accuracy")
    monkeypatch.setattr(problems, "data_fingerprint", lambda name, data_dir: "one")
    first = claim.config(TINY)
    monkeypatch.setattr(problems, "data_fingerprint", lambda name, data_dir: "other")
    assert claim.config(TINY) != first and first["data"] == "one"
    assert "data" not in CLAIMS[0].config(TINY)


def _estimate(low: float | None, high: float | None, reason: str = "") -> PairedEstimate:
    mean = None if low is None else (low + high) / 2
    return PairedEstimate(5, mean, low, high, "inconclusive", reason)


@pytest.mark.parametrize(
    ("criterion", "low", "high", "verdict"),
    [
        (Criterion(low=30.0), 35.0, 60.0, "supported"),
        (Criterion(low=30.0), 10.0, 29.0, "not supported"),
        (Criterion(low=30.0), 10.0, 30.0, "not supported"),
        (Criterion(low=30.0), 25.0, 40.0, "inconclusive"),
        (Criterion(high=0.0), -7.0, -1.0, "supported"),
        (Criterion(high=0.0), 0.5, 2.0, "not supported"),
        (Criterion(high=0.0), -1.0, 0.5, "inconclusive"),
        (Criterion(-2.0, 2.0), -0.5, 1.0, "supported"),
        (Criterion(-2.0, 2.0), 2.5, 4.0, "not supported"),
        (Criterion(-2.0, 2.0), -3.0, -2.5, "not supported"),
        (Criterion(-2.0, 2.0), 1.0, 3.0, "inconclusive"),
        (Criterion(-2.0, 2.0), -3.0, 3.0, "inconclusive"),
    ],
)
def test_verdicts_on_known_intervals(criterion, low, high, verdict) -> None:
    assert decide(_estimate(low, high), criterion)[0] == verdict


def test_no_interval_is_inconclusive_with_its_reason() -> None:
    verdict, reason = decide(_estimate(None, None, "too few seeds"), Criterion(low=0.0))
    assert (verdict, reason) == ("inconclusive", "too few seeds")


def test_criterion_text_and_validation() -> None:
    assert Criterion(low=30.0).text("%") == "> 30%"
    assert Criterion(high=0.0).text(" pt") == "< 0 pt"
    assert Criterion(-2.0, 2.0).text(" pt") == "between -2 pt and 2 pt"
    with pytest.raises(OptlabError, match="low < high"):
        Criterion(1.0, 1.0)


def test_evaluate_takes_the_bootstrap_interval_over_seeds() -> None:
    claim = next(c for c in CLAIMS if c.id == "imo-iterations-ill-conditioned")
    supported = evaluate(claim, Measurement(values=[60.0, 65.0, 70.0, 62.0, 68.0], measured="m"))
    assert supported["verdict"] == "supported" and supported["n"] == 5
    assert supported["low"] > 30.0 and math.isclose(supported["mean"], 65.0)
    refuted = evaluate(claim, Measurement(values=[10.0, 12.0, 11.0, 13.0], measured="m"))
    assert refuted["verdict"] == "not supported"
    accuracy = next(c for c in CLAIMS if c.id == "imo-accuracy")
    paired = evaluate(
        accuracy,
        Measurement(values=[80.0, 81.0, 79.5, 80.5], reference=[85.0, 85.5, 84.0, 86.0]),
    )
    assert paired["verdict"] == "supported" and paired["high"] < 0.0
    assert paired["claimed_value_in_interval"] is False  # published -6.8 pt, measured ~ -5
    few = evaluate(claim, Measurement(values=[60.0, 65.0], measured="m"))
    assert few["verdict"] == "inconclusive" and few["reason"] == "too few seeds"
    skipped = evaluate(accuracy, Measurement(not_checked="fmnist-mlp could not run: no data"))
    assert skipped["verdict"] == "not checked" and "no data" in skipped["reason"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--seeds", "0"], "--seeds must be an integer in [1, 1000], got 0"),
        (["--scale", "huge"], "--scale must be one of default, tiny, got 'huge'"),
    ],
)
def test_bad_arguments_fail_in_one_line(tmp_path: Path, arguments, message) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["claims", "--out", str(out), *arguments])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0] == f"optlab: error: {message}"
    assert not out.exists()


def test_an_out_that_is_a_file_fails_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "a-file"
    out.write_text("")
    result = runner.invoke(app, ["claims", "--out", str(out), "--scale", "tiny"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("optlab: error: ") and "not a folder" in lines[0]
