"""Performance profiles on hand-made times."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optlab.report.profile import performance_profile, profile_table, times_to_target
from optlab.report.tables import median_to_target

# a: fastest on p1 and p3, never reaches p2; b: 2x, 1x, 4x the fastest.
TIMES = {
    "p1": {"a": 10.0, "b": 20.0},
    "p2": {"a": None, "b": 5.0},
    "p3": {"a": 8.0, "b": 32.0},
}


def test_ratios_are_time_over_the_fastest() -> None:
    profile = performance_profile(TIMES)
    assert profile.optimizers == ("a", "b")
    np.testing.assert_array_equal(profile.ratios, [[1.0, 2.0], [math.inf, 1.0], [1.0, 4.0]])


def test_rho_counts_problems_within_tau() -> None:
    profile = performance_profile(TIMES)
    np.testing.assert_allclose(profile.rho("a", [1, 2, 4, 64]), [2 / 3, 2 / 3, 2 / 3, 2 / 3])
    rho_b = profile.rho("b", [1, 1.99, 2, 3.9, 4, 64]) * 3
    np.testing.assert_allclose(rho_b, [1, 1, 2, 2, 3, 3])
    taus, rho = profile.steps("b")
    np.testing.assert_allclose(taus, [1, 2, 4, 64])
    np.testing.assert_allclose(rho, [1 / 3, 2 / 3, 1, 1])


def test_area_is_the_mean_over_log2_tau() -> None:
    profile = performance_profile(TIMES)
    # b: rho = 1/3 on [0, 1), 2/3 on [1, 2), 1 on [2, 6] (log2 tau) -> (1/3 + 2/3 + 4) / 6.
    assert profile.area("b") == pytest.approx(5 / 6)
    assert profile.area("a") == pytest.approx(2 / 3)


def test_missing_unsolved_and_zero_times() -> None:
    profile = performance_profile(
        {"p": {"a": 4.0}, "q": {"a": math.inf, "b": math.nan}, "z": {"a": 0.0, "b": 3.0}},
        ["a", "b"],
    )
    assert profile.ratios[0].tolist() == [1.0, math.inf]  # b never ran on p
    assert profile.unsolved() == ["q"]
    assert profile.ratios[2].tolist() == [1.0, math.inf]
    assert profile.rho("a", [64]).tolist() == [pytest.approx(2 / 3)]


def test_empty_profile() -> None:
    profile = performance_profile({}, ["a"])
    assert profile.rho("a", [1, 2]).tolist() == [0.0, 0.0]
    assert profile.area("a") == 0.0


def test_profile_table_ranks_by_area() -> None:
    table = profile_table(performance_profile(TIMES))
    assert [row[0] for row in table.rows] == ["b", "a"]
    assert table.rows[0][1:] == ("0.33", "0.67", "1.00", "3/3", "0.833")
    assert table.rows[1][1:] == ("0.67", "0.67", "0.67", "2/3", "0.667")


def test_median_to_target_counts_unreached_as_infinite() -> None:
    assert median_to_target([10, 30, None]) == 30
    assert median_to_target([10, None, None]) is None
    assert median_to_target([10, 20]) == 15
    assert median_to_target([]) is None


def test_times_to_target_median_over_seeds(synthetic_store) -> None:
    from optlab.report.frames import load

    view = load(synthetic_store)
    times = times_to_target(view.runs, lambda run: run.evaluations_to_target)
    assert times["wild-quad"]["sgd"] is None
    assert times["digits-mlp"]["adam"] == 120
