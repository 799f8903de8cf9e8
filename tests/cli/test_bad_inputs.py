"""Bad input is one line naming the field, exit status 2, before any work starts
(issue 17, item 5): seeds and ranges a run would fail on late, learning rates the
parameters cannot hold, counts that exhaust memory, oversized policy configs, unusable
paths, repeated names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from optlab.cli import app

runner = CliRunner()
LONG = "x" * 300  # one name over every common file system's 255-byte limit


def _fails_in_one_line(arguments: list[str], message: str) -> str:
    result = runner.invoke(app, arguments)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, (result.exit_code, result.output)
    assert lines[0].startswith("optlab: error: ") and message in lines[0], lines[0]
    return lines[0]


def _no_runs(out: Path) -> None:
    assert not list((out / "runs").glob("*.json")) if (out / "runs").exists() else True


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[tuning]\nseed = 4294967296", "tuning.seed must be an integer in [0, 2**32 - 1]"),
        ("[tuning]\nlr_range = [1e-300, 1e300]", "tuning.lr_range must be [low, high]"),
        ("[tuning]\nlr_range = [1e-300, 1e38]", "repeated or non-finite grid points"),
        ("[tuning]\nlr_range = [1.0, 1.000001]", "repeated or non-finite grid points"),
        ("[tuning]\ntrials = 100000000", "tuning.trials must be <= 10,000"),
        ("seeds = 100000000", "seeds must be >= 1 and <= 10,000"),
        ("[lrs]\nadam = 1e300", "lrs.adam"),
        ('optimizers = ["adam", "adam"]', "optimizers names 'adam' twice"),
        ('problems = ["beale", "beale"]', "problems names 'beale' twice"),
    ],
)
def test_bad_suite_values_fail_before_any_run(tmp_path: Path, toml: str, message: str) -> None:
    suite = tmp_path / "suite.toml"
    if "problems" not in toml:
        toml = 'problems = ["beale"]\n' + toml
    if "optimizers" not in toml:
        toml = 'optimizers = ["adam"]\n' + toml
    suite.write_text(toml)
    out = tmp_path / "out"
    _fails_in_one_line(["bench", "--suite", str(suite), "--out", str(out)], message)
    _no_runs(out)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["bench", "--seeds", "100000000"], "--seeds must be >= 1 and <= 10,000"),
        (["bench", "--optimizers", "adam,adam", "--problems", "beale"], "'adam' twice"),
        (["train", "--problem", "beale", "--optimizer", "adam", "--lr", "1e300"], "lr must be"),
        (["train", "--problem", "beale", "--optimizer", "imo", "--lr", "1e300"], "lr must be"),
        (["multi-init", "--problem", "beale", "--lr", "1e300"], "lr must be"),
        (
            ["multi-init", "--problem", "beale", "--num-models", "100000000"],
            "members must be <= 100,000",
        ),
        (["bench", "--out", f"/tmp/{LONG}"], "results store has a name of 300 bytes"),
        (["report", f"/tmp/{LONG}"], "results folder has a name of 300 bytes"),
        (["bench", "--suite", f"/tmp/{LONG}.toml"], "--suite has a name of 305 bytes"),
        (["list", "--data-dir", f"/tmp/{LONG}"], "--data-dir has a name of 300 bytes"),
        (
            ["train", "--problem", "mnist-mlp", "--optimizer", "adam", "--data-dir", f"/{LONG}"],
            "--data-dir has a name",
        ),
        (["rl", "bench", "--policy", f"/tmp/{LONG}"], "cannot be read"),
    ],
)
def test_bad_options_fail_in_one_line(tmp_path: Path, arguments: list[str], message: str) -> None:
    if "--out" not in arguments and arguments[0] in ("bench", "multi-init"):
        arguments = [*arguments, "--out", str(tmp_path / "out")]
    _fails_in_one_line(arguments, message)
    _no_runs(tmp_path / "out")


def _policy(tmp_path: Path, **config: int) -> Path:
    from optlab.optim.learned import LearnedPolicy, save_policy

    path = save_policy(LearnedPolicy.fresh(), tmp_path / "policy.pt")
    if config:
        payload = torch.load(path, weights_only=True)
        payload["config"].update(config)
        torch.save(payload, path)
    return path


def test_rl_bench_counts_are_capped(tmp_path: Path) -> None:
    policy = str(_policy(tmp_path))
    out = str(tmp_path / "out")
    base = ["rl", "bench", "--policy", policy, "--out", out]
    _fails_in_one_line(
        [*base, "--instances", "100000000"], "instances must be an integer <= 100,000"
    )
    _fails_in_one_line([*base, "--seeds", "100000000"], "seeds must be an integer <= 10,000")
    _fails_in_one_line(
        ["rl", "train", "--num-problems", "100000000", "--out", str(tmp_path / "p.pt")],
        "num_problems must be an integer <= 100,000",
    )


def test_a_policy_config_asking_for_a_huge_network_is_refused_first(tmp_path: Path) -> None:
    from optlab.optim.learned import PolicyFileError, load_policy

    policy = _policy(tmp_path, hidden=5_000)  # 25M weights for the hidden layer alone
    with pytest.raises(PolicyFileError, match=r"hidden must be an integer >= 1 and <= 4,096"):
        load_policy(policy)
    policy = _policy(tmp_path, history_len=10**6)
    with pytest.raises(PolicyFileError, match=r"history_len must be an integer >= 1 and <= 1,000"):
        load_policy(policy)


def test_figures_as_a_file_fails_before_any_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "figures").write_text("a file where the report's figures go")
    _fails_in_one_line(
        ["bench", "--problems", "beale", "--optimizers", "adam", "--seeds", "1", "--out", str(out)],
        "figures exists and is not a folder",
    )
    _no_runs(out)


def test_a_read_only_store_fails_before_any_run(tmp_path: Path, monkeypatch) -> None:
    import os
    import tempfile

    out = tmp_path / "out"
    for kind in ("runs", "tuning", "halving"):
        (out / kind).mkdir(parents=True)
    if os.getuid() == 0:  # root writes anywhere: refuse file creation in the store instead
        real = tempfile.NamedTemporaryFile
        real_mkstemp = tempfile.mkstemp

        def refuse(dir: Path | str | None) -> None:
            if dir is not None and Path(dir).is_relative_to(out):
                raise PermissionError(13, "Permission denied")

        def named(*args, **kwargs):
            refuse(kwargs.get("dir"))
            return real(*args, **kwargs)

        def mkstemp(*args, **kwargs):
            refuse(kwargs.get("dir"))
            return real_mkstemp(*args, **kwargs)

        monkeypatch.setattr(tempfile, "NamedTemporaryFile", named)
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    else:
        for folder in (out, *(out / kind for kind in ("runs", "tuning", "halving"))):
            folder.chmod(0o555)
    arguments = ["--problems", "beale", "--optimizers", "adam", "--seeds", "1", "--out", str(out)]
    _fails_in_one_line(["bench", *arguments, "--no-tune"], "as a results store: Permission denied")
    _fails_in_one_line(
        ["multi-init", "--problem", "beale", "--num-models", "2", "--out", str(out)],
        "as a results store: Permission denied",
    )
