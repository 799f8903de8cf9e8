"""``optlab rl train`` / ``optlab rl bench``: one-line errors with exit 2, and a tiny run."""

from __future__ import annotations

from pathlib import Path

import pytest
from rl_policies import descent_policy
from typer.testing import CliRunner

from optlab.bench.store import ResultsStore
from optlab.cli import app
from optlab.optim.learned import save_policy

runner = CliRunner()


def _error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("optlab: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["rl", "train", "--num-problems", "0"], "num_problems must be an integer >= 1, got 0"),
        (["rl", "train", "--problem", "cubic"], "unknown problem 'cubic'"),
        (["rl", "train", "--timesteps", "-1"], "timesteps must be an integer >= 1"),
        (["rl", "train", "--lr", "-0.1"], "lr must be a finite number > 0"),
        (["rl", "bench", "--policy", "/nonexistent/p.pt"], "does not exist"),
    ],
)
def test_user_errors_exit_2_with_one_line(arguments: list[str], message: str) -> None:
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert message in _error_line(result)


def test_bench_rejects_a_corrupt_policy_and_a_bad_problem(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00\x01 definitely not a policy")
    result = runner.invoke(app, ["rl", "bench", "--policy", str(corrupt)])
    assert result.exit_code == 2
    assert "not readable" in _error_line(result)
    good = save_policy(descent_policy(), tmp_path / "good.pt")
    result = runner.invoke(app, ["rl", "bench", "--policy", str(good), "--problem", "cubic"])
    assert result.exit_code == 2
    assert "unknown problem 'cubic'" in _error_line(result)


def test_train_then_bench_end_to_end(tmp_path: Path) -> None:
    policy = tmp_path / "policy.pt"
    result = runner.invoke(
        app,
        ["rl", "train", "--problem", "quadratic", "--num-problems", "2", "--timesteps", "40",
         "--history-len", "3", "--out", str(policy)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert policy.is_file() and policy.with_name("policy.pt.json").is_file()
    out = tmp_path / "results"
    arguments = ["rl", "bench", "--policy", str(policy), "--problem", "quadratic",
                 "--instances", "1", "--seeds", "2", "--steps", "20", "--no-tune",
                 "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    report = (out / "rl-report.md").read_text()
    for name in ("learned", "adam", "sgd", "momentum", "lbfgs"):
        assert f"| {name} |" in report
    assert (out / "rl-figures" / "spd-quadratic-learned.png").is_file()
    frame = ResultsStore(out).runs_frame()
    learned = frame[frame["optimizer"].str.startswith("learned:")]
    assert len(learned) == 2 and set(learned["status"]) == {"ok"}
    assert all(h["sha256"] for h in learned["hyperparameters"])
    again = runner.invoke(app, arguments)  # a re-run reuses every stored run
    assert again.exit_code == 0
    assert len(ResultsStore(out)) == len(frame)


def test_train_refuses_an_unwritable_out_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("a file where a folder would be")
    result = runner.invoke(
        app, ["rl", "train", "--num-problems", "1", "--timesteps", "1", "--out",
              str(blocker / "p.pt")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "cannot be written" in _error_line(result)
