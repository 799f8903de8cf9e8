"""Suites: built-ins, TOML, and clear errors for invalid input."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from optlab import optim
from optlab.bench.suite import SuiteError, Tuning, builtin_suites, load_suite


def test_quick_suite_covers_analytic_convex_digits_and_mnist_5k_with_every_optimizer() -> None:
    quick = builtin_suites()["quick"]
    assert "digits-mlp" in quick.problems and "mnist-5k" in quick.problems
    assert "rosenbrock-2d" in quick.problems and "logistic" in quick.problems
    assert quick.optimizers == optim.names()
    assert len(quick.seeds) == 3 and quick.tuning.trials >= 6


def test_grid_points_stay_inside_an_awkward_range() -> None:
    grid = Tuning(trials=6, lr_range=(1e-4, 0.1234567)).grid()
    assert grid[0] == 1e-4 and grid[-1] == 0.1234567
    assert all(1e-4 <= lr <= 0.1234567 for lr in grid)


def test_grid_is_log_spaced_and_identical_for_everyone() -> None:
    grid = Tuning(trials=7, lr_range=(1e-4, 1.0)).grid()
    assert grid[0] == 1e-4 and grid[-1] == 1.0 and len(grid) == 7
    ratios = [b / a for a, b in itertools.pairwise(grid)]
    assert max(ratios) / min(ratios) < 1.001


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return str(path)


def test_toml_suite_round_trip(tmp_path: Path) -> None:
    suite = load_suite(
        _write(
            tmp_path,
            """
name = "mine"
problems = ["rosenbrock-2d", "beale"]
optimizers = ["adam", "imo"]
seeds = 2
[tuning]
trials = 6
lr_range = [1e-3, 0.5]
[steps]
beale = 123
[hyperparameters.imo]
step_form = "algorithm-box"
[lrs]
adam = 0.01
""",
        )
    )
    assert suite.name == "mine" and suite.seeds == (42, 43)
    assert suite.budget("beale") == 123
    assert suite.fixed_hyperparameters("imo") == {"step_form": "algorithm-box"}
    assert suite.untuned_lr("adam") == 0.01 and suite.untuned_lr("imo") == 0.1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('problems = ["nope"]', "unknown name 'nope' in problems; known:"),
        ('problems = ["beale"]\noptimizers = ["adamax"]', "unknown name 'adamax' in optimizers"),
        ('problems = ["beale"]\nseeds = [-1]', "seeds must be integers in [0, 2**63 - 1]"),
        ('problems = ["beale"]\nseeds = [99999999999999999999]', "seeds must be integers in"),
        ('problems = ["beale"]\n[tuning]\nenabled = "no"', "tuning.enabled must be true or false"),
        ('problems = ["beale"]\nhyperparameters = {adam = 3}', "[hyperparameters.adam] must be"),
        (
            'problems = ["beale"]\n[hyperparameters.adam]\nfused = true\nforeach = true',
            "hyperparameters.adam: adam: foreach=True and fused=True exclude each other",
        ),
        ('problems = ["beale"]\nseeds = 0', "seeds must be a count >= 1"),
        ('problems = ["beale"]\ncolour = 1', "unknown suite key 'colour'"),
        ('problems = ["beale"]\n[tuning]\ntrials = 3', "tuning.trials must be >= 6"),
        ('problems = ["beale"]\n[tuning]\nlr_range = [1, 0.1]', "tuning.lr_range"),
        ('problems = ["beale"]\n[tuning]\nsampler = "random"', "tuning.sampler"),
        ('problems = ["beale"]\n[hyperparameters.imo]\nmomentum = 2.0', "hyperparameters.imo"),
        ('problems = ["beale"]\n[lrs]\nadam = -1.0', "lrs.adam"),
        ('problems = ["beale"]\n[steps]\nbeale = 0', "steps.beale"),
        ("problems = [", "not valid TOML"),
        ('optimizers = ["adam"]', "a suite must give problems"),
    ],
)
def test_invalid_suites_give_one_clear_message(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SuiteError, match=re.escape(message)):
        load_suite(_write(tmp_path, text))


def test_unknown_suite_name_and_missing_file() -> None:
    with pytest.raises(SuiteError, match="unknown suite 'tiny'; built in: quick, standard, full"):
        load_suite("tiny")
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite("/nonexistent/suite.toml")
