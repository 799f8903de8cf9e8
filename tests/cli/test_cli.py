"""The command line: user errors are one line on stderr and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from optlab.cli import app

runner = CliRunner()


def _error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("optlab: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["bench", "--optimizers", "adamax"], "unknown name 'adamax' in optimizers"),
        (["bench", "--problems", "nope"], "unknown name 'nope' in problems"),
        (["bench", "--seeds", "-1"], "--seeds must be >= 1"),
        (["bench", "--suite", "tiny"], "unknown suite 'tiny'"),
        (["train", "--problem", "nope", "--optimizer", "adam"], "nope"),
        (["train", "--problem", "beale", "--optimizer", "adam", "--lr", "-1"], "lr"),
        (["train", "--problem", "mnist-mlp", "--optimizer", "adam"], "MNIST"),
        (["report", "/nonexistent/folder"], "is not a results folder"),
        (["bench", "--optimizers", "sgd", "--reference", "adam"], "--reference 'adam' is not"),
        (["bench", "--problems", "mnist-mlp"], "mnist-mlp needs the MNIST files"),
        (["train", "--problem", "beale", "--optimizer", "adam", "--steps", "0"], "--steps"),
        (["train", "--problem", "beale", "--optimizer", "adam", "--seed", "-3"], "--seed"),
    ],
)
def test_user_errors_exit_2_with_one_line(arguments: list[str], message: str) -> None:
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert message in _error_line(result)


def test_bad_toml_exits_2(tmp_path: Path) -> None:
    suite = tmp_path / "bad.toml"
    suite.write_text("problems = [")
    result = runner.invoke(app, ["bench", "--suite", str(suite), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "not valid TOML" in _error_line(result)


def test_train_prints_the_curve() -> None:
    result = runner.invoke(
        app, ["train", "--problem", "rosenbrock-2d", "--optimizer", "imo", "--lr", "0.01",
              "--steps", "200"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "imo on rosenbrock-2d" in result.output and "status ok" in result.output


def test_list_names_optimizers_and_problems() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "scaled-adam" in result.output and "rosenbrock-2d" in result.output


def test_bench_then_report_on_a_small_suite(tmp_path: Path) -> None:
    suite = tmp_path / "small.toml"
    suite.write_text(
        'problems = ["beale"]\noptimizers = ["adam", "sgd"]\nseeds = 2\n[steps]\nbeale = 100\n'
    )
    out = tmp_path / "results"
    result = runner.invoke(app, ["bench", "--suite", str(suite), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "16 runs ran, 0 reused" in result.output
    again = runner.invoke(app, ["bench", "--suite", str(suite), "--out", str(out)])
    assert "0 runs ran, 16 reused" in again.output
    assert (out / "report.md").exists() and (out / "report.html").exists()
    (out / "report.md").unlink()
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0 and (out / "report.md").exists()
    result = runner.invoke(app, ["report", str(out), "--reference", "sgd"])
    assert result.exit_code == 0, result.output
    assert "## Against the reference (sgd)" in (out / "report.md").read_text()
    result = runner.invoke(app, ["report", str(out), "--reference", "nope"])
    assert result.exit_code == 2 and "reference optimizer 'nope'" in _error_line(result)


def test_out_inside_a_file_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = runner.invoke(app, ["bench", "--problems", "beale", "--out", str(blocker / "sub")])
    assert result.exit_code == 2
    assert "cannot use" in _error_line(result)


def test_a_bench_reports_only_its_own_runs_in_a_shared_folder(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    for budget in (20, 200):
        suite = tmp_path / f"s{budget}.toml"
        suite.write_text(
            f'problems = ["beale"]\noptimizers = ["sgd"]\nseeds = 2\n[steps]\nbeale = {budget}\n'
        )
        result = runner.invoke(
            app, ["bench", "--suite", str(suite), "--out", str(out), "--no-tune", "--workers", "1"]
        )
        assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "2 reported runs" in report
    result = runner.invoke(app, ["report", str(out)])  # the whole folder: both, told apart
    report = (out / "report.md").read_text()
    assert "4 reported runs" in report and "sgd (budget=20)" in report


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--num-models", "0"], "members must be an integer >= 1"),
        (["--reduce-factor", "1.5"], "reduce_factor must be in (0, 1)"),
        (["--optimizer", "lbfgs"], "lbfgs cannot be vectorised"),
        (["--optimizer", "adamax"], "unknown optimizer 'adamax'"),
    ],
)
def test_multi_init_bad_input_exits_2(tmp_path: Path, arguments: list[str], message: str) -> None:
    base = ["multi-init", "--problem", "logistic", "--out", str(tmp_path)]
    result = runner.invoke(app, [*base, *arguments])
    assert result.exit_code == 2, result.output
    assert message in _error_line(result)


def test_multi_init_stores_its_run_and_reuses_it(tmp_path: Path) -> None:
    arguments = ["multi-init", "--problem", "logistic", "--num-models", "4", "--lr", "0.05",
                 "--steps-per-round", "10", "--epochs", "1", "--out", str(tmp_path)]  # fmt: skip
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "winner: init seed" in result.output
    assert len(list((tmp_path / "halving").glob("*.json"))) == 1
    again = runner.invoke(app, arguments)
    assert "reused" in again.output and again.output.count("winner") == 1
    report = runner.invoke(app, ["report", str(tmp_path)])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "report.md").read_text()
    assert "## Successive halving (multi-init)" in text and "| 1 | 4 |" in text
    figures = list((tmp_path / "figures").glob("logistic-adam-halving-*.png"))
    assert len(figures) == 1 and figures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_optlab_errors_are_one_line_and_a_bug_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain ValueError from inside the library is a bug, not invalid input: the command
    prints a hint to report it and lets the exception (its traceback) through: exit 1, not
    the user-error 2."""
    from optlab.bench import runner as bench_runner

    def broken(*args, **kwargs):
        raise ValueError("internal invariant broken")

    monkeypatch.setattr(bench_runner, "run_suite", broken)
    result = runner.invoke(
        app, ["bench", "--problems", "beale", "--optimizers", "adam", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, ValueError)
    assert "internal invariant broken" in str(result.exception)
    assert "this is a bug in optlab" in result.stderr
    assert "optlab: error:" not in result.stderr


def test_a_suite_file_that_turns_tuning_off_is_not_tuned(tmp_path: Path) -> None:
    """``[tuning] enabled = false`` holds unless ``--tune`` is given (the flag used to
    default to True and override it)."""
    suite = tmp_path / "untuned.toml"
    suite.write_text(
        'problems = ["beale"]\noptimizers = ["sgd"]\nseeds = 1\n'
        "[steps]\nbeale = 20\n[tuning]\nenabled = false\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["bench", "--suite", str(suite), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert not list((out / "tuning").glob("*.json"))  # no tuning record
    tuned = runner.invoke(
        app,
        ["bench", "--suite", str(suite), "--out", str(tmp_path / "t"), "--tune", "--workers", "1"],
    )
    assert tuned.exit_code == 0, tuned.output
    assert list((tmp_path / "t" / "tuning").glob("*.json"))  # --tune still turns it on
